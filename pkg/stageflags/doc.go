// Package stageflags defines the flags of the slot stages (acquire and await): their names,
// defaults, bounds and checks, and the TURNSTILE_* variables that stand in for them. The stages
// parse a pod's arguments with them, and kubectl turnstile plan parses a Promise's pipelines
// with the very same definitions, without linking the stages' pipeline code.
package stageflags
