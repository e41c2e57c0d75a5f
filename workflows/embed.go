// Package workflows holds Turnstile's Kratix pipelines for a Promise, as a template: the YAML a
// Promise author copies by hand, and what `kubectl turnstile wrap` inserts. One file, one owner.
package workflows

import _ "embed"

// Resource is resource-workflows.yaml: the turnstile-acquire and turnstile-await configure
// pipelines and the turnstile-release delete pipeline, with ${PROMISE_GROUP},
// ${PROMISE_PLURAL} and ${STAGE_IMAGE} to fill in.
//
//go:embed resource-workflows.yaml
var Resource string
