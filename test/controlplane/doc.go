// Package controlplane runs a real Kubernetes control plane for Turnstile's integration and
// end-to-end tests: etcd and kube-apiserver through controller-runtime's envtest, with RBAC
// authorization on, and optionally kube-controller-manager for the tests that need namespaces'
// default ServiceAccounts, garbage collection or the Job controller.
//
// The binaries are built from the Go module proxy by hack/provision-control-plane.sh into a
// cache outside the checkout; KUBEBUILDER_ASSETS points at them (make test sets it). Nothing
// here downloads anything.
//
// A Ginkgo suite starts one control plane for all its specs with ForSuite; plain Go code uses
// Start and Stop. Helpers give an admin client, clients and kubeconfigs that act as a
// ServiceAccount (impersonated, or with a real TokenRequest token for child processes), and a
// fresh namespace per spec.
package controlplane
