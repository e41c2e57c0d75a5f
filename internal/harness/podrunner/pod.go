package podrunner

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// serviceAccountDir is where a pod's token, CA and namespace are, as the kubelet projects them.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// allowedMountRoots are the only places a pipeline container may mount a volume: where Kratix's
// pipelines keep their files. Anything else would be a pod the runner was not built for.
var allowedMountRoots = []string{"/kratix", "/work-creator-files"}

// rejection is why a pod cannot run at all; it fails the pod with that reason.
type rejection struct{ reason, message string }

func (e *rejection) Error() string { return e.reason + ": " + e.message }

// preparedPod is a pod ready to run: its volumes and token on disk.
type preparedPod struct {
	pod     *corev1.Pod
	dir     string
	volumes map[string]string // volume name -> host directory
	saDir   string
}

func (r *Runner) runPod(ctx context.Context, pod *corev1.Pod) {
	key := pod.Namespace + "/" + pod.Name
	p, err := r.prepare(ctx, pod)
	if err != nil {
		r.finish(ctx, pod, failedBefore(err))
		return
	}
	if err := r.markRunning(ctx, pod); err != nil {
		r.logf("pod %s: %v", key, err)
	}
	result := podResult{phase: corev1.PodSucceeded}
	for _, c := range pod.Spec.InitContainers {
		st := r.runContainer(ctx, p, c)
		result.init = append(result.init, st)
		if ctx.Err() != nil {
			return // the pod is being deleted: there is no status left to write
		}
		if st.State.Terminated.ExitCode != 0 {
			result.phase = corev1.PodFailed
			result.message = fmt.Sprintf("init container %s exited %d", c.Name, st.State.Terminated.ExitCode)
			r.finish(ctx, pod, result)
			return
		}
	}
	statuses := make([]corev1.ContainerStatus, len(pod.Spec.Containers))
	done := make(chan struct{})
	for i, c := range pod.Spec.Containers {
		go func() {
			statuses[i] = r.runContainer(ctx, p, c)
			done <- struct{}{}
		}()
	}
	for range pod.Spec.Containers {
		<-done
	}
	if ctx.Err() != nil {
		return
	}
	result.main = statuses
	for _, st := range statuses {
		if st.State.Terminated.ExitCode != 0 {
			result.phase = corev1.PodFailed
			result.message = fmt.Sprintf("container %s exited %d", st.Name, st.State.Terminated.ExitCode)
		}
	}
	r.finish(ctx, pod, result)
}

// prepare checks that the runner can run the pod as asked, then lays out its volumes and token.
func (r *Runner) prepare(ctx context.Context, pod *corev1.Pod) (*preparedPod, error) {
	if err := r.admit(pod); err != nil {
		return nil, err
	}
	p := &preparedPod{pod: pod, dir: r.PodDir(pod.Namespace, pod.Name), volumes: map[string]string{}}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the pod's directory: %w", err)
	}
	for _, v := range pod.Spec.Volumes {
		dir := filepath.Join(p.dir, "volumes", v.Name)
		// Pipeline containers run as non-root users; an emptyDir is writable by all, as on a node.
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return nil, fmt.Errorf("creating volume %s: %w", v.Name, err)
		}
		if err := os.Chmod(dir, 0o777); err != nil {
			return nil, fmt.Errorf("creating volume %s: %w", v.Name, err)
		}
		if err := r.fillVolume(ctx, pod.Namespace, v, dir); err != nil {
			return nil, err
		}
		p.volumes[v.Name] = dir
	}
	p.saDir = filepath.Join(p.dir, "serviceaccount")
	return p, r.writeToken(ctx, pod, p.saDir)
}

// admit rejects, before anything runs, a pod naming an image the runner does not know or a
// mount it does not allow.
func (r *Runner) admit(pod *corev1.Pod) error {
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		if v.EmptyDir == nil && v.ConfigMap == nil && v.Secret == nil {
			return &rejection{"UnsupportedVolume", fmt.Sprintf("volume %s: only emptyDir, configMap and secret volumes are supported", v.Name)}
		}
		volumes[v.Name] = v
	}
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		if _, ok := r.Images[c.Image]; !ok {
			return &rejection{"UnknownImage", fmt.Sprintf("container %s: image %q is not one the harness can run", c.Name, c.Image)}
		}
		for _, m := range c.VolumeMounts {
			if _, ok := volumes[m.Name]; !ok {
				return &rejection{"MountRejected", fmt.Sprintf("container %s: volume %q is not in the pod", c.Name, m.Name)}
			}
			if m.SubPath != "" || m.SubPathExpr != "" {
				return &rejection{"MountRejected", fmt.Sprintf("container %s: mount %s uses subPath, which the harness does not support", c.Name, m.MountPath)}
			}
			if !allowedMount(m.MountPath) {
				return &rejection{"MountRejected", fmt.Sprintf("container %s: mount path %q is outside %s", c.Name, m.MountPath, strings.Join(allowedMountRoots, " and "))}
			}
		}
	}
	return nil
}

func allowedMount(p string) bool {
	if !path.IsAbs(p) || path.Clean(p) != p {
		return false
	}
	for _, root := range allowedMountRoots {
		if p == root || strings.HasPrefix(p, root+"/") {
			return true
		}
	}
	return false
}

// fillVolume writes a configMap or secret volume's files, honouring items.
func (r *Runner) fillVolume(ctx context.Context, namespace string, v corev1.Volume, dir string) error {
	var (
		data     map[string][]byte
		items    []corev1.KeyToPath
		optional bool
	)
	switch {
	case v.ConfigMap != nil:
		optional = ptr.Deref(v.ConfigMap.Optional, false)
		cm, err := r.Client.CoreV1().ConfigMaps(namespace).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
		if err != nil && (!optional || !apierrors.IsNotFound(err)) {
			return fmt.Errorf("reading configMap %s for volume %s: %w", v.ConfigMap.Name, v.Name, err)
		}
		data = map[string][]byte{}
		if cm != nil {
			for k, s := range cm.Data {
				data[k] = []byte(s)
			}
			for k, b := range cm.BinaryData {
				data[k] = b
			}
		}
		items = v.ConfigMap.Items
	case v.Secret != nil:
		optional = ptr.Deref(v.Secret.Optional, false)
		s, err := r.Client.CoreV1().Secrets(namespace).Get(ctx, v.Secret.SecretName, metav1.GetOptions{})
		if err != nil && (!optional || !apierrors.IsNotFound(err)) {
			return fmt.Errorf("reading secret %s for volume %s: %w", v.Secret.SecretName, v.Name, err)
		}
		data = map[string][]byte{}
		if s != nil {
			data = s.Data
		}
		items = v.Secret.Items
	default:
		return nil
	}
	if len(items) == 0 {
		for k := range data {
			items = append(items, corev1.KeyToPath{Key: k, Path: k})
		}
	}
	for _, it := range items {
		content, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return &rejection{"MissingKey", fmt.Sprintf("volume %s: key %q is missing", v.Name, it.Key)}
		}
		target := filepath.Join(dir, filepath.Clean("/"+it.Path))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(target, content, 0o644); err != nil {
			return fmt.Errorf("writing volume %s's %s: %w", v.Name, it.Path, err)
		}
	}
	return nil
}

// writeToken writes a token bound to the pod (TokenRequest), the apiserver's CA and the pod's
// namespace, as the kubelet projects them: the pod then has exactly the RBAC Kratix gave its
// ServiceAccount.
func (r *Runner) writeToken(ctx context.Context, pod *corev1.Pod, dir string) error {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	tr, err := r.Client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: ptr.To[int64](3600),
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("requesting a token for ServiceAccount %s/%s: %w", pod.Namespace, sa, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, content := range map[string][]byte{
		"token": []byte(tr.Status.Token), "ca.crt": r.CA, "namespace": []byte(pod.Namespace),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			return fmt.Errorf("writing the pod's %s: %w", name, err)
		}
	}
	return nil
}
