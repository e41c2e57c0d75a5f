#!/usr/bin/env bash
# The progressive-rollout demo on kind: installs the health agent, publishes the example webapp
# Promise (v1) with five requests, upgrades it to v2, and follows the rollout one request at a
# time. chat's v2 comes up unhealthy, so the rollout pauses on it; the script then heals chat
# and the rollout completes. Run `make kind-up kind-load` first (make kind-demo does).
#
# Environment: VERSION (image tag, default hack/version.sh), IMAGE_REPO, PLUGIN (kubectl-turnstile).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cluster=$(sed -n 's/^name: *//p' "$root/kind-config.yaml")
context="kind-$cluster"
version=${VERSION:-$("$root/hack/version.sh")}
repo=${IMAGE_REPO:-ghcr.io/kratix-turnstile}
plugin=${PLUGIN:-$root/bin/kubectl-turnstile}
k() { kubectl --context "$context" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

for tool in kind kubectl; do
  command -v "$tool" >/dev/null || { echo "kind-demo: $tool is not installed" >&2; exit 1; }
done
[[ -x "$plugin" ]] || { echo "kind-demo: $plugin is missing: run make build" >&2; exit 1; }
kind get clusters 2>/dev/null | grep -qx "$cluster" || { echo "kind-demo: no kind cluster $cluster: run make kind-up" >&2; exit 1; }

scratch=$(mktemp -d)
dashboard=
trap '[[ -z "$dashboard" ]] || kill "$dashboard" 2>/dev/null; rm -rf "$scratch"' EXIT

promise() { # promise APP_VERSION: the example Promise, rendered
  sed -e "s#__IMAGE_REPO__#$repo#g" -e "s#__IMAGE_TAG__#$version#g" \
    -e "s#__WEBAPP_VERSION__#$1#g" -e "s#__TURNSTILE_WAIT__#60s#g" "$root/promises/webapp/promise.yaml"
}

say "Installing turnstile-agent ($repo/agent:$version)"
k kustomize "$root/config/agent" | sed "s#$repo/agent:v[^ ]*#$repo/agent:$version#" | k apply -f -
k apply -k "$root/config/agent-platform"
# The platform and the Destination are the same cluster here: the agent's platform kubeconfig
# holds its platform ServiceAccount's token.
token=$(k -n kratix-platform-system create token turnstile-agent --duration=24h)
k -n default get configmap kube-root-ca.crt -o jsonpath='{.data.ca\.crt}' > "$scratch/ca.crt"
KUBECONFIG="$scratch/platform.kubeconfig" kubectl config set-cluster platform --server=https://kubernetes.default.svc \
  --certificate-authority="$scratch/ca.crt" --embed-certs >/dev/null
KUBECONFIG="$scratch/platform.kubeconfig" kubectl config set-credentials agent --token="$token" >/dev/null
KUBECONFIG="$scratch/platform.kubeconfig" kubectl config set-context platform --cluster=platform --user=agent >/dev/null
KUBECONFIG="$scratch/platform.kubeconfig" kubectl config use-context platform >/dev/null
k -n turnstile-system create secret generic turnstile-agent-platform --from-file=kubeconfig="$scratch/platform.kubeconfig" \
  --dry-run=client -o yaml | k apply -f -
k -n turnstile-system rollout status deployment/turnstile-agent --timeout=3m

say "Installing the observer ($repo/observer:$version): rollout metrics and page in the cluster"
k kustomize "$root/config/observer" | sed "s#$repo/observer:v[^ ]*#$repo/observer:$version#" | k apply -f -
k apply -f "$root/promises/webapp/observer-role.yaml"
k -n turnstile-system rollout status deployment/turnstile-observer --timeout=3m
echo "in the cluster: kubectl -n turnstile-system port-forward svc/turnstile-observer 3100"
# The same page from this machine, with your kubeconfig, for the length of the demo.
"$plugin" --context "$context" dashboard --port 3101 >"$scratch/dashboard.log" 2>&1 &
dashboard=$!
echo "watch the rollout live: http://127.0.0.1:3101/"

say "Publishing the webapp Promise at v1, with five requests"
promise v1 | k apply -f -
k wait --for=condition=established crd/webapps.example.turnstile.kratix.io --timeout=2m
k apply -f "$root/promises/webapp/requests.yaml"
for app in shop blog chat mail wiki; do
  k wait "webapp/$app" --for=jsonpath='{.status.turnstile.phase}'=Upgraded --timeout=5m
done
k get webapps

say "Upgrading the Promise to v2: Kratix re-runs every request; Turnstile lets them through one at a time"
promise v2 | k apply -f -
set +e
"$plugin" --context "$context" status webapp -n default -w --timeout=15m
outcome=$?
set -e
if [[ $outcome -eq 1 ]]; then
  say "The rollout paused on chat, whose v2 is unhealthy: its status says why"
  k get webapp chat -o jsonpath='{.status.turnstile.message}{"\n"}'
  say "Healing chat: its spec no longer breaks v2; Kratix re-runs it and the rollout goes on"
  k patch webapp chat --type merge -p '{"spec":{"brokenIn":""}}'
  "$plugin" --context "$context" status webapp -n default -w --timeout=15m
fi

say "Summary: the upgrade order"
k get webapps -o custom-columns='NAME:.metadata.name,PHASE:.status.turnstile.phase,VERSION:.status.turnstile.version,UPGRADED:.status.turnstile.since' \
  --sort-by=.status.turnstile.since
