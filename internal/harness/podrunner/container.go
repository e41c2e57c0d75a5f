package podrunner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// stopGrace is how long a container has between SIGTERM and SIGKILL when its pod is deleted.
const stopGrace = 5 * time.Second

// runContainer runs one container to its end and says how it ended.
func (r *Runner) runContainer(ctx context.Context, p *preparedPod, c corev1.Container) corev1.ContainerStatus {
	img := r.Images[c.Image]
	st := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image}
	started := time.Now()
	code, err := r.exec(ctx, p, c, img)
	term := &corev1.ContainerStateTerminated{
		ExitCode: int32(code), StartedAt: metav1.NewTime(started), FinishedAt: metav1.Now(), Reason: "Completed",
	}
	if code != 0 {
		term.Reason = "Error"
	}
	if err != nil {
		term.Message = err.Error()
	}
	if code != 0 && term.Message == "" {
		if log, readErr := os.ReadFile(r.logPath(p, c.Name)); readErr == nil {
			term.Message = tail(string(log), 1024)
		}
	}
	st.State.Terminated = term
	r.logf("pod %s/%s: %s exited %d after %s", p.pod.Namespace, p.pod.Name, c.Name, code, time.Since(started).Round(time.Millisecond))
	return st
}

func (r *Runner) logPath(p *preparedPod, container string) string {
	return filepath.Join(p.dir, container+".log")
}

// exec runs the container's process and returns its exit code; err says why it could not run.
func (r *Runner) exec(ctx context.Context, p *preparedPod, c corev1.Container, img Image) (int, error) {
	spec, err := r.sandboxSpec(p, c, img)
	if err != nil {
		return 128, err
	}
	if err := os.MkdirAll(spec.Root, 0o755); err != nil {
		return 128, fmt.Errorf("creating the container's root: %w", err)
	}
	log, err := os.Create(r.logPath(p, c.Name))
	if err != nil {
		return 128, fmt.Errorf("creating the container's log: %w", err)
	}
	defer log.Close()
	cmd, err := spec.command()
	if err != nil {
		return 128, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return 128, fmt.Errorf("starting the container: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case err = <-done:
		case <-time.After(stopGrace):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			err = <-done
		}
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exit) && exit.Exited():
		return exit.ExitCode(), nil
	case errors.As(err, &exit):
		return 137, fmt.Errorf("killed: %s", exit.String())
	default:
		return 128, err
	}
}

// sandboxSpec is the container as the helper runs it: the kubelet's rules for command, args,
// env and user, applied to the image.
func (r *Runner) sandboxSpec(p *preparedPod, c corev1.Container, img Image) (sandboxSpec, error) {
	env, err := r.environment(p.pod, c, img)
	if err != nil {
		return sandboxSpec{}, err
	}
	spec := sandboxSpec{
		Root: filepath.Join(p.dir, "roots", c.Name),
		Base: img.Root,
		Argv: argv(c, img),
		Env:  env,
		Dir:  c.WorkingDir,
		UID:  img.UID,
		GID:  img.GID,
	}
	if len(spec.Argv) == 0 {
		return sandboxSpec{}, fmt.Errorf("container %s has no command and its image no entrypoint", c.Name)
	}
	if spec.Dir == "" {
		spec.Dir = img.WorkingDir
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			spec.UID = int(*sc.RunAsUser)
		}
		if sc.RunAsGroup != nil {
			spec.GID = int(*sc.RunAsGroup)
		}
	}
	spec.Mounts = append(spec.Mounts, img.Binds...)
	spec.Mounts = append(spec.Mounts, Mount{Source: p.saDir, Target: serviceAccountDir, ReadOnly: true})
	for _, m := range c.VolumeMounts {
		spec.Mounts = append(spec.Mounts, Mount{Source: p.volumes[m.Name], Target: m.MountPath, ReadOnly: m.ReadOnly})
	}
	return spec, nil
}

// argv follows the kubelet: command replaces the entrypoint, args replace the image's cmd.
func argv(c corev1.Container, img Image) []string {
	switch {
	case len(c.Command) > 0:
		return append(append([]string{}, c.Command...), c.Args...)
	case len(c.Args) > 0:
		return append(append([]string{}, img.Entrypoint...), c.Args...)
	default:
		return append(append([]string{}, img.Entrypoint...), img.Cmd...)
	}
}

// environment is the image's env, the in-cluster service variables, then the container's env.
func (r *Runner) environment(pod *corev1.Pod, c corev1.Container, img Image) ([]string, error) {
	host, port, err := r.serviceHostPort()
	if err != nil {
		return nil, err
	}
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	env = append(env, img.Env...)
	env = append(env, "HOSTNAME="+pod.Name, "KUBERNETES_SERVICE_HOST="+host, "KUBERNETES_SERVICE_PORT="+port)
	for _, e := range c.Env {
		value := e.Value
		if e.ValueFrom != nil {
			if value, err = fieldValue(pod, e); err != nil {
				return nil, fmt.Errorf("container %s: %w", c.Name, err)
			}
		}
		env = append(env, e.Name+"="+value)
	}
	return env, nil
}

// fieldValue resolves the downward-API fields pipelines use.
func fieldValue(pod *corev1.Pod, e corev1.EnvVar) (string, error) {
	if e.ValueFrom.FieldRef == nil {
		return "", fmt.Errorf("env %s: only fieldRef is supported in valueFrom", e.Name)
	}
	switch e.ValueFrom.FieldRef.FieldPath {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	}
	// Current Kratix sets its trace context from the pod's annotations; a kubelet gives "" for
	// one that is absent, as here.
	for prefix, values := range map[string]map[string]string{"metadata.annotations": pod.Annotations, "metadata.labels": pod.Labels} {
		if key, ok := subscript(e.ValueFrom.FieldRef.FieldPath, prefix); ok {
			return values[key], nil
		}
	}
	return "", fmt.Errorf("env %s: field %s is not supported", e.Name, e.ValueFrom.FieldRef.FieldPath)
}

// subscript reads KEY from a field path PREFIX['KEY'].
func subscript(path, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, prefix+"['")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, "']")
}

// ParseUser reads an image config's user, "uid" or "uid:gid" (numeric only: no /etc/passwd lookup).
func ParseUser(user string) (uid, gid int, err error) {
	if user == "" {
		return 0, 0, nil
	}
	u, g, hasGroup := strings.Cut(user, ":")
	if uid, err = strconv.Atoi(u); err != nil {
		return 0, 0, fmt.Errorf("image user %q: want a numeric uid[:gid]", user)
	}
	gid = uid
	if hasGroup {
		if gid, err = strconv.Atoi(g); err != nil {
			return 0, 0, fmt.Errorf("image user %q: want a numeric uid[:gid]", user)
		}
	}
	return uid, gid, nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}
