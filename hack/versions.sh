# shellcheck shell=bash disable=SC2034
# (Sourced: the variables are used by the sourcing script.)
# Versions and cache locations shared by the hack/ scripts and the Makefile. Sourced, not run.
# The pins themselves live in hack/k8s/go.mod and hack/etcd/go.mod; these must agree with them.
K8S_VERSION=v1.37.1
ETCD_VERSION=v3.6.16
TURNSTILE_CACHE=${TURNSTILE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/turnstile}
CONTROL_PLANE_DIR=$TURNSTILE_CACHE/k8s-$K8S_VERSION-etcd-$ETCD_VERSION
# Current Kratix (workflow-control, PromiseRevisions, ResourceBindings), which the Go module proxy
# does not serve: built from its source at this commit. The checksum is of the source's files (path
# and sha256 of each, sorted), so a tarball from GitHub and one made with `git archive` agree.
KRATIX_CURRENT_COMMIT=ae170e22e974e45bb7cfda00986057e01b3ccfde
KRATIX_CURRENT_SOURCE_SHA256=99675f696847c19f1ff9796bb221f21ec713e610d911a3bdcfdd437754cbd4da
# Where the script looks for the source tarball before fetching it (CI puts it there).
KRATIX_CURRENT_TARBALL=$TURNSTILE_CACHE/src/kratix-${KRATIX_CURRENT_COMMIT:0:12}.tar.gz
KRATIX_CURRENT_DIR=$CONTROL_PLANE_DIR/kratix-${KRATIX_CURRENT_COMMIT:0:12}
