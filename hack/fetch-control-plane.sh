#!/usr/bin/env bash
# The fast path to the control plane, for machines with internet: downloads the prebuilt
# binaries that match the pins in hack/versions.sh instead of building them, the way the
# ecosystem gets them. etcd and kube-apiserver come through controller-runtime's setup-envtest
# (pinned by hack/envtest/go.mod; the envtest archives controller-tools publishes, checked
# against its index's sha512); kube-controller-manager, which envtest does not ship, from the
# Kubernetes release itself (dl.k8s.io, checked against its published sha256). A binary is kept
# only when it says it is the pinned version. provision-control-plane.sh builds whatever this
# did not bring.
#
# Usage: hack/fetch-control-plane.sh DIR
#   Puts the binaries it got into DIR and prints their names on stdout, one a line; says what it
#   does on stderr. Nothing reachable, or nothing matching, is not an error: it prints nothing.
#   K8S_RELEASE_URL (default https://dl.k8s.io/release) and ENVTEST_INDEX (default: setup-envtest's)
#   point it at a mirror.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hack/versions.sh
source "$here/versions.sh"
# shellcheck source=hack/ticking.sh
source "$here/ticking.sh"
TICKING_PREFIX="control plane"

if [[ $# -ne 1 || -z "$1" ]]; then
  echo "usage: fetch-control-plane.sh DIR" >&2
  exit 2
fi
dir=$1
mkdir -p "$dir"
say() { echo "control plane: $*" >&2; }

work=$(mktemp -d)
# setup-envtest leaves its binaries' directory read-only.
trap 'kill $(jobs -p) 2>/dev/null || true; chmod -R u+w "$work" 2>/dev/null || true; rm -rf "$work"' EXIT

arch=$(GOTOOLCHAIN=local GOWORK=off go env GOARCH)
release=${K8S_RELEASE_URL:-https://dl.k8s.io/release}/$K8S_VERSION/bin/linux/$arch

# says BINARY VERSION: the first line of BINARY --version has VERSION as a word. (The whole
# output is read: a pipe into head could cut a binary off mid-write, and pipefail would count it.)
says() {
  local out words w
  out=$("$1" --version 2>/dev/null) || return 1
  out=${out%%$'\n'*}
  read -ra words <<<"${out//,/ }"
  for w in "${words[@]}"; do
    [[ "$w" == "$2" ]] && return 0
  done
  return 1
}

# take NAME FILE WANT: keeps FILE as DIR/NAME when it says it is WANT.
take() {
  if ! says "$2" "$3"; then
    say "the downloaded $1 is not $3 ($("$2" --version 2>&1 | sed -n 1p || true)): building it instead"
    return 0
  fi
  install -m 0755 "$2" "$dir/$1"
  say "$1 $3: downloaded, prebuilt"
  echo "$1"
}

# fetch URL FILE: downloads URL to FILE; curl's complaint, if any, is in FILE.err.
fetch() { curl -fsSL --connect-timeout 10 --retry 2 --max-time "${3:-900}" -o "$2" "$1" 2>"$2.err"; }

# A short probe first: without internet, fall back at once, before compiling setup-envtest. Only
# an HTTP error (curl's 22) says the release is there but lacks the file; setup-envtest may still
# have the rest. Anything else (no name, no route, no answer, a proxy's refusal) is no internet.
say "looking for prebuilt binaries at ${release%%/"$K8S_VERSION"/*}"
probe=0
ticking "looking for prebuilt binaries" fetch "$release/kube-controller-manager.sha256" "$work/kcm.sha256" 20 || probe=$?
case $probe in
  0)
    say "downloading kube-controller-manager $K8S_VERSION from $release"
    if ticking "downloading kube-controller-manager" fetch "$release/kube-controller-manager" "$work/kube-controller-manager"; then
      read -r want _ <"$work/kcm.sha256" || true
      got=$(sha256sum "$work/kube-controller-manager" | cut -d' ' -f1)
      if [[ ! "$want" =~ ^[0-9a-f]{64}$ ]]; then
        say "$release/kube-controller-manager.sha256 holds no sha256: building kube-controller-manager instead"
      elif [[ "$got" == "$want" ]]; then
        chmod +x "$work/kube-controller-manager"
        take kube-controller-manager "$work/kube-controller-manager" "$K8S_VERSION"
      else
        say "kube-controller-manager from $release has sha256 $got, the release says $want: building it instead"
      fi
    else
      say "could not download kube-controller-manager from $release ($(tail -1 "$work/kube-controller-manager.err")): building it instead"
    fi
    ;;
  22)
    say "no kube-controller-manager at $release ($(tail -1 "$work/kcm.sha256.err")): building it instead"
    ;;
  *)
    say "${release%%/"$K8S_VERSION"/*} cannot be reached ($(tail -1 "$work/kcm.sha256.err")): building every binary from the Go module proxy"
    exit 0
    ;;
esac

# envtest_use runs setup-envtest, printing where it put the binaries; what it says goes to a file.
envtest_use() {
  local index=()
  if [[ -n "${ENVTEST_INDEX:-}" ]]; then
    index=(--index "$ENVTEST_INDEX")
  fi
  (cd "$here/envtest" && GOTOOLCHAIN=local GOFLAGS=-mod=readonly GOWORK=off \
    go tool setup-envtest use "${K8S_VERSION#v}" --bin-dir "$work/envtest" -p path ${index[@]+"${index[@]}"}) 2>"$work/envtest.err"
}
say "fetching etcd and kube-apiserver for $K8S_VERSION with setup-envtest"
if path=$(ticking "fetching etcd and kube-apiserver with setup-envtest" envtest_use); then
  take kube-apiserver "$path/kube-apiserver" "$K8S_VERSION"
  take etcd "$path/etcd" "${ETCD_VERSION#v}"
else
  say "setup-envtest could not fetch $K8S_VERSION ($(grep -v '^exit status' "$work/envtest.err" | tail -1)): building etcd and kube-apiserver instead"
fi
