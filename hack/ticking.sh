#!/usr/bin/env bash
# ticking WHAT CMD...: runs CMD, saying on stderr every 4s that WHAT is still going, so that a
# long step is never quiet for 5s: "$TICKING_PREFIX: still WHAT (8s)". The ticker stops with CMD,
# or, before its next line, when the calling script is gone (interrupted, or killed without its
# traps). Sourced, it defines ticking; run, it runs it: hack/ticking.sh PREFIX WHAT CMD... (for
# the Makefile).
ticking() {
  local what=$1 started=$SECONDS ticker status=0
  shift
  # Its stdout goes nowhere: a sleep it leaves behind must not hold a caller's $(...) open.
  (
    nap=""
    trap 'kill "$nap" 2>/dev/null; exit 0' TERM
    while true; do
      sleep 4 & nap=$!
      wait "$nap"
      kill -0 "$$" 2>/dev/null || exit 0
      echo "${TICKING_PREFIX:-turnstile}: still $what ($((SECONDS - started))s)" >&2 || exit 0
    done
  ) >/dev/null &
  ticker=$!
  "$@" || status=$?
  kill "$ticker" 2>/dev/null || true
  wait "$ticker" 2>/dev/null || true
  return "$status"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  if [[ $# -lt 3 ]]; then
    echo "usage: ticking.sh PREFIX WHAT CMD..." >&2
    exit 2
  fi
  TICKING_PREFIX=$1
  echo "$1: $2" >&2
  shift
  ticking "$@"
fi
