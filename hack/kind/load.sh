#!/usr/bin/env bash
# Loads Turnstile's images into the kind cluster from the docker archive `make images` wrote.
# Usage: hack/kind/load.sh ARCHIVE
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cluster=$(sed -n 's/^name: *//p' "$root/kind-config.yaml")
archive=${1:?usage: hack/kind/load.sh ARCHIVE}

[[ -f "$archive" ]] || { echo "kind-load: $archive does not exist: run make images" >&2; exit 1; }
command -v kind >/dev/null || { echo "kind-load: kind is not installed (see README: Trying it on kind)" >&2; exit 1; }
kind load image-archive "$archive" --name "$cluster"
echo "kind-load: loaded $(basename "$archive") into $cluster"
