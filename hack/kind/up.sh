#!/usr/bin/env bash
# Creates the kind cluster from kind-config.yaml and installs Kratix the way Kratix's quick start
# does: one installer Job that brings cert-manager, Kratix, MinIO (the state store) and Flux, and
# registers the cluster as a Destination. Needs docker, kind and kubectl, and the internet.
#
# Environment:
#   RECREATE=true       delete the cluster first if it exists
#   KRATIX_INSTALLER    the installer manifest (default: Kratix's latest quick-start installer)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cluster=$(sed -n 's/^name: *//p' "$root/kind-config.yaml")
installer=${KRATIX_INSTALLER:-https://github.com/syntasso/kratix/releases/download/latest/kratix-quick-start-installer.yaml}

for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || { echo "kind-up: $tool is not installed (see README: Trying it on kind)" >&2; exit 1; }
done

if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  if [[ "${RECREATE:-false}" == "true" ]]; then
    kind delete cluster --name "$cluster"
  else
    echo "kind-up: cluster $cluster exists (RECREATE=true to start over)"
  fi
fi
if ! kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  kind create cluster --config "$root/kind-config.yaml"
fi

context="kind-$cluster"
kubectl --context "$context" apply -f "$installer"
echo "kind-up: waiting for Kratix's quick-start installer (up to 10 minutes)"
kubectl --context "$context" -n kratix-platform-system wait --for=condition=complete job/kratix-quick-start-installer --timeout=10m
kubectl --context "$context" -n kratix-platform-system wait --for=condition=available deployment --all --timeout=5m
echo "kind-up: Kratix is running in $context; next: make kind-load"
