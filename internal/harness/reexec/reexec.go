// Package reexec runs parts of the harness as fresh copies of the running program, for work
// that must happen between fork and exec (entering namespaces, mounting, chrooting), which Go
// cannot do in-process.
package reexec

import (
	"os"
	"os/exec"
)

var registered = map[string]func(){}

// Register names fn; Command(name) starts a copy of this program that runs fn. Call it from an
// init function, before Init runs.
func Register(name string, fn func()) {
	if _, dup := registered[name]; dup {
		panic("reexec: " + name + " registered twice")
	}
	registered[name] = fn
}

// Init runs the registered function this process was started for and reports whether it did.
// A program that uses Command calls it first thing in main (or TestMain) and returns when it
// is true.
func Init() bool {
	fn, ok := registered[os.Args[0]]
	if ok {
		fn()
	}
	return ok
}

// Command is a command that runs the function registered as name, with args as os.Args[1:].
func Command(name string, args ...string) *exec.Cmd {
	return &exec.Cmd{Path: "/proc/self/exe", Args: append([]string{name}, args...)}
}
