package controlplane

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a child process whose output goes to a log file, killed with its parent.
type Process struct {
	cmd  *exec.Cmd
	done chan error
	// Log is the file its output goes to.
	Log string
}

// StartProcess starts cmd in a process group of its own, its output to a new file at logPath.
func StartProcess(cmd *exec.Cmd, logPath string) (*Process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating log %s: %w", logPath, err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Pdeathsig: a test binary that dies without cleaning up must not leave this running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", filepath.Base(cmd.Path), err)
	}
	p := &Process{cmd: cmd, done: make(chan error, 1), Log: logPath}
	go func() {
		p.done <- cmd.Wait()
		logFile.Close()
	}()
	return p, nil
}

// Exited reports whether the process has ended, without waiting.
func (p *Process) Exited() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *Process) Stop(grace time.Duration) error {
	if p.Exited() {
		return nil
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		if err := <-p.done; err != nil && !isSignalExit(err) {
			return fmt.Errorf("stopping %s: %w", filepath.Base(p.cmd.Path), err)
		}
		return nil
	}
}

func isSignalExit(err error) bool {
	var exitErr *exec.ExitError
	return errors.As(err, &exitErr) && !exitErr.Exited()
}

// killedWithUs returns a path that runs the binary at bin with the kernel told to kill it when
// the process that started it ends (setpriv --pdeathsig), as StartProcess does for its own:
// envtest starts etcd and kube-apiserver without, so a test binary that panicked or was killed
// would leave them running. Where that cannot run (no setpriv, one too old for --pdeathsig, a
// temporary dir mounted noexec) it says so once and is bin itself.
func killedWithUs(bin, dir string) string {
	guard.Do(func() { guard.setpriv, guard.err = probeSetpriv() })
	if guard.err != nil {
		guard.warn.Do(func() {
			fmt.Fprintf(os.Stderr, "control plane: %v: etcd and kube-apiserver would outlive a killed test binary\n", guard.err)
		})
		return bin
	}
	path := filepath.Join(dir, filepath.Base(bin))
	script := fmt.Sprintf("#!/bin/sh\nexec %s --pdeathsig KILL %s \"$@\"\n", shellQuote(guard.setpriv), shellQuote(bin))
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		return bin
	}
	return path
}

// guard is what probeSetpriv found, once a process.
var guard struct {
	sync.Once
	warn    sync.Once
	setpriv string
	err     error
}

// probeSetpriv finds setpriv and checks a wrapper like killedWithUs's runs here.
func probeSetpriv() (string, error) {
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		return "", errors.New("no setpriv (util-linux)")
	}
	dir, err := os.MkdirTemp("", "turnstile-setpriv-")
	if err != nil {
		return "", fmt.Errorf("probing setpriv: %w", err)
	}
	defer os.RemoveAll(dir)
	probe := filepath.Join(dir, "probe")
	script := fmt.Sprintf("#!/bin/sh\nexec %s --pdeathsig KILL true\n", shellQuote(setpriv))
	if err := os.WriteFile(probe, []byte(script), 0o755); err != nil {
		return "", fmt.Errorf("probing setpriv: %w", err)
	}
	if out, err := exec.Command(probe).CombinedOutput(); err != nil {
		return "", fmt.Errorf("setpriv --pdeathsig does not run here (%s): %w", strings.TrimSpace(string(out)), err)
	}
	return setpriv, nil
}

// shellQuote quotes s for sh, whatever it holds.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
