# shellcheck shell=bash disable=SC2034
# (Sourced: the variables are used by the sourcing script.)
# Versions and cache locations shared by the hack/ scripts and the Makefile. Sourced, not run.
# The pins themselves live in hack/k8s/go.mod and hack/etcd/go.mod; these must agree with them.
K8S_VERSION=v1.37.1
ETCD_VERSION=v3.6.16
TURNSTILE_CACHE=${TURNSTILE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/turnstile}
CONTROL_PLANE_DIR=$TURNSTILE_CACHE/k8s-$K8S_VERSION-etcd-$ETCD_VERSION
