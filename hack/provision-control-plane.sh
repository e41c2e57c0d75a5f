#!/usr/bin/env bash
# Builds the control plane that integration and end-to-end tests run against:
# etcd, kube-apiserver and kube-controller-manager, from the Go module proxy, at the
# versions pinned by hack/etcd/go.mod and hack/k8s/go.mod; the Kratix that kratix-go pins
# (its manager and its pipeline adapter, 2025), pinned by hack/kratix/go.mod; and current
# Kratix (manager, pipeline adapter and CRDs) from its source at KRATIX_CURRENT_COMMIT
# (hack/versions.sh), which the proxy does not serve. The source is taken from
# KRATIX_CURRENT_TARBALL when it is there (CI puts it there), else fetched from GitHub; either
# way its files must match KRATIX_CURRENT_SOURCE_SHA256.
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
current_stamp_want="kratix=$KRATIX_CURRENT_COMMIT source=$KRATIX_CURRENT_SOURCE_SHA256"
stamped() { [[ -f "$1/.stamp" && "$(cat "$1/.stamp")" == "$2" ]]; }
if stamped "$CONTROL_PLANE_DIR" "$stamp_want" && stamped "$KRATIX_CURRENT_DIR" "$current_stamp_want"; then
  echo "control plane: cached in $CONTROL_PLANE_DIR"
  exit 0
fi

mkdir -p "$CONTROL_PLANE_DIR"
# Build into a scratch dir and move each binary in whole, so an interrupted build never
# leaves a half-written binary that a later run would take as good.
scratch=$(mktemp -d "$CONTROL_PLANE_DIR/.build.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$scratch"' EXIT

build() { # build MODULE_DIR PACKAGE OUTPUT [LDFLAGS]
  local started=$SECONDS ticker
  echo "control plane: building $3 (from $2)"
  # A build takes minutes on a cold machine: say so every 5s rather than go quiet.
  # It stops when told, or when this script is gone (killed without its EXIT trap).
  (
    nap=""
    trap 'kill "$nap" 2>/dev/null; exit 0' TERM
    while kill -0 "$$" 2>/dev/null; do
      sleep 5 & nap=$!
      wait "$nap"
      echo "control plane: still building $3 ($((SECONDS - started))s)" || exit 0
    done
  ) &
  ticker=$!
  if ! (cd "$1" && GOFLAGS=-mod=readonly CGO_ENABLED=0 GOTOOLCHAIN=local \
    go build -trimpath -ldflags="-s -w ${4:-}" -o "$scratch/$(basename "$3")" "$2"); then
    kill "$ticker" 2>/dev/null || true
    wait "$ticker" || true
    return 1
  fi
  kill "$ticker" 2>/dev/null || true
  wait "$ticker" || true
  mv -f "$scratch/$(basename "$3")" "$CONTROL_PLANE_DIR/$3"
  echo "control plane: built $3 in $((SECONDS - started))s"
}

if ! stamped "$CONTROL_PLANE_DIR" "$stamp_want"; then
  k8s_version_flags="-X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitTreeState=clean"
  build "$here/etcd" go.etcd.io/etcd/server/v3 etcd
  build "$here/k8s" k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver "$k8s_version_flags"
  build "$here/k8s" k8s.io/kubernetes/cmd/kube-controller-manager kube-controller-manager "$k8s_version_flags"
  build "$here/kratix" github.com/syntasso/kratix/cmd kratix-manager
  build "$here/kratix" github.com/syntasso/kratix/work-creator pipeline-adapter
  echo "$stamp_want" > "$CONTROL_PLANE_DIR/.stamp"
fi

# source_sum prints the checksum of a source tree's files, whatever archive they came in.
source_sum() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1); }

if ! stamped "$KRATIX_CURRENT_DIR" "$current_stamp_want"; then
  tarball=$KRATIX_CURRENT_TARBALL
  if [[ ! -f "$tarball" ]]; then
    url="https://github.com/syntasso/kratix/archive/$KRATIX_CURRENT_COMMIT.tar.gz"
    echo "control plane: fetching Kratix ${KRATIX_CURRENT_COMMIT:0:12} from $url"
    tarball=$scratch/kratix.tar.gz
    if ! curl -fsSL --retry 3 -o "$tarball" "$url"; then
      echo "provision-control-plane: could not fetch Kratix's source from $url; put that tarball at $KRATIX_CURRENT_TARBALL and run again" >&2
      exit 1
    fi
  fi
  src=$scratch/kratix-src
  mkdir -p "$src"
  got=unreadable
  if tar -xzf "$tarball" -C "$src" --strip-components=1; then
    got=$(source_sum "$src")
  fi
  if [[ "$got" != "$KRATIX_CURRENT_SOURCE_SHA256" ]]; then
    echo "provision-control-plane: the Kratix source in $tarball has checksum $got, want $KRATIX_CURRENT_SOURCE_SHA256 (commit ${KRATIX_CURRENT_COMMIT:0:12}); remove it to fetch it again" >&2
    exit 1
  fi
  rel=${KRATIX_CURRENT_DIR#"$CONTROL_PLANE_DIR"/}
  mkdir -p "$KRATIX_CURRENT_DIR/crds"
  build "$src" ./cmd "$rel/kratix-manager"
  build "$src" ./work-creator "$rel/pipeline-adapter"
  # Its CRDs as they are: config/crd/kustomization.yaml would add a conversion webhook that
  # nothing serves out of cluster.
  cp "$src"/config/crd/bases/*.yaml "$KRATIX_CURRENT_DIR/crds/"
  echo "$current_stamp_want" > "$KRATIX_CURRENT_DIR/.stamp"
fi

echo "control plane: ready in $CONTROL_PLANE_DIR"
