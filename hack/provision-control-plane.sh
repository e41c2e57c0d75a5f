#!/usr/bin/env bash
# Provisions the control plane that integration and end-to-end tests run against: builds
# etcd, kube-apiserver and kube-controller-manager, from the Go module proxy, at the
# versions pinned by hack/etcd/go.mod and hack/k8s/go.mod; the Kratix that kratix-go pins
# (its manager and its pipeline adapter, 2025), pinned by hack/kratix/go.mod; and current
# Kratix (manager, pipeline adapter and CRDs) from its source at KRATIX_CURRENT_COMMIT
# (hack/versions.sh), which the proxy does not serve. The source is taken from
# KRATIX_CURRENT_TARBALL when it is there (CI puts it there), else fetched from GitHub; either
# way its files must match KRATIX_CURRENT_SOURCE_SHA256.
#
# Where there is internet, etcd, kube-apiserver and kube-controller-manager are downloaded
# prebuilt instead, at the same versions (hack/fetch-control-plane.sh); TURNSTILE_CONTROL_PLANE=build
# builds them anyway. The binaries go to a cache outside the checkout, keyed by version, so a
# machine pays once: running it again with the same pins does nothing, whichever way they came
# (remove the cache's directory to provision afresh).
#
# Usage: hack/provision-control-plane.sh [--print-dir]
#   --print-dir  print the binaries' directory and exit, building nothing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hack/versions.sh
source "$here/versions.sh"
# shellcheck source=hack/ticking.sh
source "$here/ticking.sh"
TICKING_PREFIX="control plane"

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$CONTROL_PLANE_DIR"
  exit 0
elif [[ $# -gt 0 ]]; then
  echo "provision-control-plane: unknown argument ${1}" >&2
  exit 2
fi

# Where etcd, kube-apiserver and kube-controller-manager come from: auto downloads the prebuilt
# ones where there is internet (hack/fetch-control-plane.sh) and builds what it could not get;
# build builds them all from the Go module proxy, as CI does.
origin=${TURNSTILE_CONTROL_PLANE:-auto}
if [[ "$origin" != auto && "$origin" != build ]]; then
  echo "provision-control-plane: TURNSTILE_CONTROL_PLANE=$origin: want auto or build" >&2
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
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$scratch"' EXIT

build() { # build MODULE_DIR PACKAGE OUTPUT [LDFLAGS]
  local started=$SECONDS
  echo "control plane: building $3 (from $2)"
  (cd "$1" && GOFLAGS=-mod=readonly CGO_ENABLED=0 GOTOOLCHAIN=local GOWORK=off \
    ticking "building $3" go build -trimpath -ldflags="-s -w ${4:-}" -o "$scratch/$(basename "$3")" "$2")
  mv -f "$scratch/$(basename "$3")" "$CONTROL_PLANE_DIR/$3"
  echo "control plane: built $3 in $((SECONDS - started))s"
}

if ! stamped "$CONTROL_PLANE_DIR" "$stamp_want"; then
  fetched=""
  if [[ "$origin" == auto ]]; then
    fetched=$("$here/fetch-control-plane.sh" "$scratch/fetched") || {
      echo "control plane: the download stopped short: building every binary instead"
      fetched=""
    }
  fi
  k8s_version_flags="-X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitTreeState=clean"
  # or_build NAME MODULE_DIR PACKAGE [LDFLAGS]: the downloaded NAME, else built.
  or_build() {
    if grep -qxF "$1" <<<"$fetched"; then
      mv -f "$scratch/fetched/$1" "$CONTROL_PLANE_DIR/$1"
    else
      build "$2" "$3" "$1" "${4:-}"
    fi
  }
  or_build etcd "$here/etcd" go.etcd.io/etcd/server/v3
  or_build kube-apiserver "$here/k8s" k8s.io/kubernetes/cmd/kube-apiserver "$k8s_version_flags"
  or_build kube-controller-manager "$here/k8s" k8s.io/kubernetes/cmd/kube-controller-manager "$k8s_version_flags"
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
    if ! ticking "fetching Kratix's source" curl -fsSL --connect-timeout 10 --retry 3 --max-time 900 -o "$tarball" "$url"; then
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
  if [[ "$tarball" != "$KRATIX_CURRENT_TARBALL" ]]; then
    # Kept, checked, where a machine without internet would be given it: provisioning afresh
    # (a new cache directory, the tests' own) needs no download.
    mkdir -p "$(dirname "$KRATIX_CURRENT_TARBALL")"
    cp "$tarball" "$KRATIX_CURRENT_TARBALL.tmp"
    mv -f "$KRATIX_CURRENT_TARBALL.tmp" "$KRATIX_CURRENT_TARBALL"
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
