package podrunner

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kratix-turnstile/turnstile/internal/harness/reexec"
)

// containerHelper is the copy of the program that builds a container's filesystem in a new
// mount namespace and execs its entrypoint there.
const containerHelper = "turnstile-harness-container"

func init() { reexec.Register(containerHelper, containerMain) }

// Mount is one bind mount into a container.
type Mount struct {
	Source   string
	Target   string
	ReadOnly bool
}

// sandboxSpec is everything the helper needs, passed as JSON in its only argument.
type sandboxSpec struct {
	// Root is an empty directory: the helper mounts a tmpfs on it and builds the container's
	// filesystem there, from Base (the image's filesystem) and Mounts.
	Root   string
	Base   string
	Mounts []Mount
	Argv   []string
	Env    []string
	Dir    string
	UID    int
	GID    int
}

// devices are the host devices a container sees; nothing else of the host's /dev.
var devices = []string{"/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"}

// command is the helper's command for spec.
func (s sandboxSpec) command() (*exec.Cmd, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	cmd := reexec.Command(containerHelper, string(data))
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd, nil
}

func containerMain() {
	var s sandboxSpec
	if len(os.Args) != 2 {
		fail(fmt.Errorf("want one argument, got %d", len(os.Args)-1))
	}
	if err := json.Unmarshal([]byte(os.Args[1]), &s); err != nil {
		fail(fmt.Errorf("reading the container spec: %w", err))
	}
	if err := s.enter(); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "container: %v\n", err)
	os.Exit(127)
}

// enter builds the container's root, chroots into it, drops to the container's user and execs
// its entrypoint. It only returns on error.
func (s sandboxSpec) enter() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	if err := unix.Mount("tmpfs", s.Root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("mounting the container's root: %w", err)
	}
	mounts := append([]Mount{}, s.Mounts...)
	for _, d := range devices {
		mounts = append(mounts, Mount{Source: d, Target: d})
	}
	// Each target maps to whether it is a file (the devices, a bound binary) or a directory.
	targets := map[string]bool{"/tmp": false}
	for _, m := range mounts {
		fi, err := os.Stat(m.Source)
		if err != nil {
			return fmt.Errorf("mounting %s: %w", m.Target, err)
		}
		targets[m.Target] = !fi.IsDir()
	}
	if err := populate(s.Root, s.Base, "/", targets); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", filepath.Join(s.Root, "tmp"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
		return fmt.Errorf("mounting /tmp: %w", err)
	}
	for _, m := range mounts {
		if err := bind(m.Source, filepath.Join(s.Root, m.Target), m.ReadOnly); err != nil {
			return fmt.Errorf("mounting %s: %w", m.Target, err)
		}
	}
	if err := unix.Chroot(s.Root); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	dir := s.Dir
	if dir == "" {
		dir = "/"
	}
	if err := os.Chdir(dir); err != nil {
		return fmt.Errorf("entering the working directory: %w", err)
	}
	if err := unix.Setgroups(nil); err != nil {
		return fmt.Errorf("dropping groups: %w", err)
	}
	if err := unix.Setgid(s.GID); err != nil {
		return fmt.Errorf("setting gid %d: %w", s.GID, err)
	}
	if err := unix.Setuid(s.UID); err != nil {
		return fmt.Errorf("setting uid %d: %w", s.UID, err)
	}
	// A change of credentials clears the parent-death signal; the runner relies on it.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("setting the parent-death signal: %w", err)
	}
	path := s.Argv[0]
	if !strings.Contains(path, "/") {
		if err := os.Setenv("PATH", lookupEnv(s.Env, "PATH")); err != nil {
			return err
		}
		found, err := exec.LookPath(path)
		if err != nil {
			return fmt.Errorf("finding %s in the image: %w", path, err)
		}
		path = found
	}
	if err := unix.Exec(path, s.Argv, s.Env); err != nil {
		return fmt.Errorf("running %s: %w", path, err)
	}
	return nil
}

func lookupEnv(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v
		}
	}
	return ""
}

// populate fills root (a tmpfs) from base so that every target exists, as an empty directory or
// file, and everything else of base is a read-only bind mount: the image stays untouched and
// mount points never have to be created inside it.
func populate(root, base, rel string, targets map[string]bool) error {
	children := map[string]bool{} // names under rel on the way to a target
	for t := range targets {
		if rest, ok := strings.CutPrefix(t, strings.TrimSuffix(rel, "/")+"/"); ok && rest != "" && t != rel {
			children[strings.SplitN(rest, "/", 2)[0]] = true
		}
	}
	entries, err := os.ReadDir(filepath.Join(base, rel))
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("reading the image's %s: %w", rel, err)
	}
	for _, e := range entries {
		if children[e.Name()] {
			continue
		}
		if err := mirror(filepath.Join(base, rel, e.Name()), filepath.Join(root, rel, e.Name())); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(children))
	for n := range children {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		sub := filepath.Join(rel, n)
		if fi, err := os.Lstat(filepath.Join(base, sub)); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("the image's %s is a symbolic link; mounts under it are not supported", sub)
		}
		isFile, isTarget := targets[sub]
		if isTarget && isFile {
			if err := touch(filepath.Join(root, sub)); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Join(root, sub), 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", sub, err)
		}
		if !isTarget {
			if err := populate(root, base, sub, targets); err != nil {
				return err
			}
		}
	}
	return nil
}

// mirror makes dst show src: a read-only bind of a directory or file, or the same symlink.
func mirror(src, dst string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(target, dst)
	case fi.IsDir():
		if err := os.Mkdir(dst, 0o755); err != nil {
			return err
		}
	case fi.Mode().IsRegular():
		if err := touch(dst); err != nil {
			return err
		}
	default:
		return nil
	}
	return bind(src, dst, true)
}

func touch(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// bind mounts src on dst, read-only if asked (a bind mount takes flags only on a remount).
func bind(src, dst string, readOnly bool) error {
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("binding %s: %w", src, err)
	}
	if readOnly {
		if err := unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("making %s read-only: %w", dst, err)
		}
	}
	return nil
}
