#!/usr/bin/env bash
# Builds the control plane that integration and end-to-end tests run against:
# etcd, kube-apiserver and kube-controller-manager, from the Go module proxy, at the
# versions pinned by hack/etcd/go.mod and hack/k8s/go.mod; and the Kratix that kratix-go pins
# (its manager and its pipeline adapter), pinned by hack/kratix/go.mod.
#
# The binaries go to a cache outside the checkout, keyed by version, so a machine pays the
# build once (about 8 minutes cold on 2 cores; seconds with a warm Go build cache). Running it again
# with the same pins does nothing.
#
# Usage: hack/provision-control-plane.sh [--print-dir]
#   --print-dir  print the binaries' directory and exit, building nothing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hack/versions.sh
source "$here/versions.sh"

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$CONTROL_PLANE_DIR"
  exit 0
elif [[ $# -gt 0 ]]; then
  echo "provision-control-plane: unknown argument ${1}" >&2
  exit 2
fi

# The stamp names the pins and the checksums they resolved to: a changed go.sum rebuilds.
stamp_want=$(cat "$here/k8s/go.sum" "$here/etcd/go.sum" "$here/kratix/go.sum" | sha256sum | cut -c1-16)
stamp_want="k8s=$K8S_VERSION etcd=$ETCD_VERSION sums=$stamp_want"
if [[ -f "$CONTROL_PLANE_DIR/.stamp" && "$(cat "$CONTROL_PLANE_DIR/.stamp")" == "$stamp_want" ]]; then
  echo "control plane: cached in $CONTROL_PLANE_DIR"
  exit 0
fi

mkdir -p "$CONTROL_PLANE_DIR"
# Build into a scratch dir and move each binary in whole, so an interrupted build never
# leaves a half-written binary that a later run would take as good.
scratch=$(mktemp -d "$CONTROL_PLANE_DIR/.build.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

build() { # build MODULE_DIR PACKAGE OUTPUT [LDFLAGS]
  local started=$SECONDS
  echo "control plane: building $3 (from $2)"
  (cd "$here/$1" && GOFLAGS=-mod=readonly CGO_ENABLED=0 GOTOOLCHAIN=local \
    go build -trimpath -ldflags="-s -w ${4:-}" -o "$scratch/$3" "$2")
  mv -f "$scratch/$3" "$CONTROL_PLANE_DIR/$3"
  echo "control plane: built $3 in $((SECONDS - started))s"
}

k8s_version_flags="-X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitTreeState=clean"
build etcd go.etcd.io/etcd/server/v3 etcd
build k8s k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver "$k8s_version_flags"
build k8s k8s.io/kubernetes/cmd/kube-controller-manager kube-controller-manager "$k8s_version_flags"
build kratix github.com/syntasso/kratix/cmd kratix-manager
build kratix github.com/syntasso/kratix/work-creator pipeline-adapter

echo "$stamp_want" > "$CONTROL_PLANE_DIR/.stamp"
echo "control plane: ready in $CONTROL_PLANE_DIR"
