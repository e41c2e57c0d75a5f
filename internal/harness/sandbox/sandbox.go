// Package sandbox runs an end-to-end harness in network, mount and PID namespaces of its own.
// Kratix's webhook port (9443, fixed), the apps' port 80 and /etc/hosts are then the harness's
// own, so two harnesses never collide and the host is never touched; its scratch files live on
// a tmpfs that disappears with it; and no process outlives it, because when the harness's first
// process ends the kernel kills every process in its PID namespace. It needs root.
package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// scratchEnv holds, inside the sandbox, the directory the scratch tmpfs is mounted on.
const scratchEnv = "TURNSTILE_SANDBOX_SCRATCH"

// Run runs fn inside a sandbox and returns its exit code. The calling process runs a copy of
// itself, with the same arguments, in new namespaces and waits for it; the copy sets the
// sandbox up and calls fn.
func Run(fn func() int) int {
	if dir := os.Getenv(scratchEnv); dir != "" {
		if err := setUp(dir); err != nil {
			fmt.Fprintf(os.Stderr, "sandbox: %v\n", err)
			return 1
		}
		return fn()
	}
	code, err := runInside()
	if err != nil {
		fmt.Fprintf(os.Stderr, "sandbox: %v\n", err)
		return 1
	}
	return code
}

// Inside reports whether this process runs in a sandbox.
func Inside() bool { return os.Getenv(scratchEnv) != "" }

// HostsFile is the sandbox's /etc/hosts, which the harness may rewrite (in place: it is
// bind-mounted, so replacing the file would detach it).
func HostsFile() string { return filepath.Join(os.Getenv(scratchEnv), "hosts") }

func runInside() (int, error) {
	if os.Geteuid() != 0 {
		return 0, errors.New("the end-to-end harness needs root: it runs Kratix's pipelines in mount namespaces and chroots (CI runs as root; locally, use sudo)")
	}
	scratch, err := os.MkdirTemp("", "turnstile-harness-")
	if err != nil {
		return 0, fmt.Errorf("creating the sandbox's mount point: %w", err)
	}
	// The tmpfs on it lives in the sandbox's mount namespace only: here it is an empty directory.
	defer os.Remove(scratch)
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), scratchEnv+"="+scratch)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID,
		Pdeathsig:  syscall.SIGKILL,
	}
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting the harness in new namespaces: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case sig := <-signals:
			// The copy cleans up on its own signal handling; a terminal's Ctrl-C reaches it too.
			_ = cmd.Process.Signal(sig)
		case err := <-done:
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				if code := exit.ExitCode(); code >= 0 {
					return code, nil
				}
				return 1, fmt.Errorf("the harness was killed: %s", exit.String())
			}
			return 0, err
		}
	}
}

// setUp makes the new namespaces usable: mounts private, a tmpfs for scratch files (TMPDIR),
// loopback up, and an /etc/hosts of the sandbox's own.
func setUp(scratch string) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	if err := unix.Mount("tmpfs", scratch, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("mounting the scratch tmpfs on %s: %w", scratch, err)
	}
	if err := os.Setenv("TMPDIR", scratch); err != nil {
		return err
	}
	if err := loopbackUp(); err != nil {
		return err
	}
	hosts := HostsFile()
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n::1 localhost\n"), 0o644); err != nil {
		return fmt.Errorf("writing the sandbox's hosts file: %w", err)
	}
	if err := unix.Mount(hosts, "/etc/hosts", "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("mounting the sandbox's hosts file on /etc/hosts: %w", err)
	}
	return nil
}

// loopbackUp brings lo up: a new network namespace starts with it down.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bringing loopback up: %w", err)
	}
	defer unix.Close(fd) //nolint:errcheck // a socket used for one ioctl
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bringing loopback up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("reading loopback's flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing loopback up: %w", err)
	}
	return nil
}
