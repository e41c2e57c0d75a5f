#!/usr/bin/env bash
# Prints the version images and binaries are tagged with: git describe, as a semver-ish tag.
# Never "latest". Outside a git checkout, or before the first tag, it is v0.0.0-<commit>.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
desc=$(git describe --tags --always --dirty 2>/dev/null || echo unknown)
case "$desc" in
  v[0-9]*) echo "$desc" ;;
  *) echo "v0.0.0-$desc" ;;
esac
