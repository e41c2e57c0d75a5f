SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

GO ?= go
# The control plane (etcd, kube-apiserver, kube-controller-manager) is built into a cache
# outside the checkout; envtest finds it through KUBEBUILDER_ASSETS.
CONTROL_PLANE_DIR := $(shell hack/provision-control-plane.sh --print-dir)
export KUBEBUILDER_ASSETS := $(CONTROL_PLANE_DIR)
GOLANGCI_LINT_VERSION ?= v2.7.2
# Images are tagged with the version from git, never latest.
VERSION ?= $(shell hack/version.sh)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
# Builds reproduce: every timestamp in an image is the last commit's time.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH
IMAGES_OUT ?= out/images
# The platform whose docker archive kind loads: the machine's own.
KIND_PLATFORM ?= linux/$(shell $(GO) env GOARCH)
# Push target for `make images-push`, e.g. localhost:5001/turnstile.
REGISTRY ?=
BENCH ?= .
# The benchmarks are harnesses that take their own samples and report medians: one run each.
BENCHTIME ?= 1x

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
		/^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
		/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Main

# The Kratix the demo runs: current (workflow-control, as users run it) or pinned (the 2025 one).
KRATIX ?= current

.PHONY: demo
demo: control-plane ## Run the local progressive-rollout demo: real Kratix on this machine, no Docker (root). KRATIX=pinned: the 2025 Kratix.
	@hack/ticking.sh demo "building bin/turnstile-demo" $(GO) build -o bin/turnstile-demo ./cmd/turnstile-demo
	bin/turnstile-demo --kratix $(KRATIX)

# go test stops a package after 10 minutes by default. On a cold, loaded 2-core machine the
# end-to-end suite (three rollouts through Kratix's pipelines) and the image tests can take
# longer than that: the bound is a guard against a hang, not a target (speed lives in `make bench`).
TEST_TIMEOUT ?= 60m
TEST_IMAGES_OUT ?= out/test-images

.PHONY: test
test: control-plane test-images ## Run unit, integration and end-to-end tests against a real control plane and real Kratix.
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

# The tests build images and binaries in several packages, in parallel. Built once here first,
# one after another, every later build of the same binary is a link out of Go's build cache
# instead of a compile racing another for the same two cores.
.PHONY: test-images
test-images:
	@echo "test-images: building every image for linux/amd64 and linux/arm64 once, for the tests (minutes on a cold cache)"
	@CGO_ENABLED=0 hack/ticking.sh test-images "building bin/turnstile-image" $(GO) build -trimpath -o bin/turnstile-image ./cmd/turnstile-image
	@bin/turnstile-image --version v0.0.0-test --out $(TEST_IMAGES_OUT) --archive-platform "" >/dev/null
	@echo "test-images: done"

.PHONY: test-busy
test-busy: ## Run `make test` with a competing busy loop on every core (COLD=1: from an empty Go build cache too).
	hack/busy.sh $(MAKE) test

# The fleet run on real Kratix (Turnstile's share of a rollout of FLEET requests): root, like
# the demo, and about 15 minutes; FLEET=0 skips it.
FLEET ?= 50

.PHONY: bench
bench: control-plane ## Run the benchmarks and print their figures (asserts nothing about time), then the fleet run on real Kratix (FLEET=0 skips it).
	$(GO) test -count=1 -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) ./...
	@if [ "$(FLEET)" != 0 ]; then \
		hack/ticking.sh bench "building bin/turnstile-demo" $(GO) build -o bin/turnstile-demo ./cmd/turnstile-demo && \
		bin/turnstile-demo --kratix $(KRATIX) --fleet $(FLEET); fi

##@ Images and kind (kind targets need docker, kind and kubectl; CI cannot run them)

.PHONY: images
images: ## Build the stage and agent images (OCI layout + docker archive) with go-containerregistry.
	$(GO) run ./cmd/turnstile-image --version $(VERSION) --revision "$(REVISION)" --out $(IMAGES_OUT) \
		--archive-platform $(KIND_PLATFORM)

.PHONY: images-push
images-push: ## Build the images and push them to $(REGISTRY).
	@test -n "$(REGISTRY)" || { echo "images-push: set REGISTRY, e.g. make images-push REGISTRY=localhost:5001/turnstile" >&2; exit 2; }
	$(GO) run ./cmd/turnstile-image --version $(VERSION) --revision "$(REVISION)" --out $(IMAGES_OUT) \
		--archive-platform $(KIND_PLATFORM) --push $(REGISTRY)

.PHONY: kind-up
kind-up: ## Create the kind cluster and install Kratix as its quick start does (RECREATE=true to start over).
	hack/kind/up.sh

.PHONY: kind-load
kind-load: images ## Build the images and load them into the kind cluster.
	hack/kind/load.sh $(IMAGES_OUT)/turnstile-$(VERSION)-$(notdir $(KIND_PLATFORM)).tar

.PHONY: kind-demo
kind-demo: kind-load build ## On the kind cluster: publish the example Promise, upgrade it, watch the rollout.
	VERSION=$(VERSION) PLUGIN=$(CURDIR)/bin/kubectl-turnstile hack/kind/demo.sh

##@ Development

.PHONY: build
build: ## Build Turnstile's binaries into bin/ (the demo has its own target).
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/turnstile ./cmd/turnstile-agent ./cmd/kubectl-turnstile ./cmd/turnstile-image

.PHONY: lint
lint: ## Check formatting, go vet, and golangci-lint when it installs from the Go proxy.
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted" >&2; exit 1; fi
	$(GO) vet ./...
	@if [ -x bin/golangci-lint ] || GOBIN=$(CURDIR)/bin $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION); then \
		bin/golangci-lint run ./...; \
	else echo "golangci-lint $(GOLANGCI_LINT_VERSION) did not install from the Go proxy; skipped" >&2; fi

.PHONY: control-plane
control-plane: ## Build (or, with internet, download) etcd, kube-apiserver and kube-controller-manager, and build Kratix, into the cache (once).
	@hack/provision-control-plane.sh

.PHONY: clean
clean: ## Remove build outputs in the checkout (the control-plane cache stays).
	rm -rf bin/ out/
