#!/usr/bin/env bash
# Runs a command while a busy loop competes for every core, as on a CI machine shared with other
# builds: proves that the test suite passes on a loaded machine, not only on an idle one.
# COLD=1 also starts from an empty Go build cache (removed afterwards). Prints the time taken.
set -euo pipefail
[[ $# -gt 0 ]] || { echo "usage: hack/busy.sh COMMAND [ARG...]" >&2; exit 2; }

loops=()
cache=""
# Called by the trap below, which shellcheck does not follow.
# shellcheck disable=SC2317
cleanup() {
  if [[ ${#loops[@]} -gt 0 ]]; then kill "${loops[@]}" 2>/dev/null || true; fi
  if [[ -n "$cache" ]]; then rm -rf "$cache"; fi
}
trap cleanup EXIT INT TERM

cores=$(nproc)
for _ in $(seq "$cores"); do
  bash -c 'while :; do :; done' &
  loops+=("$!")
done
if [[ "${COLD:-}" == 1 ]]; then
  cache=$(mktemp -d)
  export GOCACHE="$cache"
fi
echo "busy: $cores busy loop(s) running${cache:+, Go build cache empty ($cache)}: $*"
start=$(date +%s)
status=0
"$@" || status=$?
echo "busy: '$*' exited $status after $(( $(date +%s) - start ))s under load"
exit "$status"
