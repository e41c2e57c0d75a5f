package podrunner

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// podResult is how a pod ended.
type podResult struct {
	phase   corev1.PodPhase
	reason  string
	message string
	init    []corev1.ContainerStatus
	main    []corev1.ContainerStatus
}

// failedBefore is the result of a pod that could not start: rejected, or its volumes or token
// could not be laid out.
func failedBefore(err error) podResult {
	res := podResult{phase: corev1.PodFailed, reason: "HarnessError", message: err.Error()}
	var rej *rejection
	if errors.As(err, &rej) {
		res.reason, res.message = rej.reason, rej.message
	}
	return res
}

// markRunning records that the pod's containers have started, as a kubelet would.
func (r *Runner) markRunning(ctx context.Context, pod *corev1.Pod) error {
	return r.updateStatus(ctx, pod, func(st *corev1.PodStatus) {
		st.Phase = corev1.PodRunning
		st.StartTime = &metav1.Time{Time: metav1.Now().Time}
		st.HostIP, st.PodIP = "127.0.0.1", "127.0.0.1"
	})
}

// finish writes the pod's final phase and its containers' terminated states, which is what
// the Job controller counts.
func (r *Runner) finish(ctx context.Context, pod *corev1.Pod, res podResult) {
	err := r.updateStatus(ctx, pod, func(st *corev1.PodStatus) {
		st.Phase, st.Reason, st.Message = res.phase, res.reason, res.message
		st.InitContainerStatuses, st.ContainerStatuses = res.init, res.main
		if st.StartTime == nil {
			st.StartTime = &metav1.Time{Time: metav1.Now().Time}
		}
		st.Conditions = []corev1.PodCondition{{
			Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "PodCompleted", LastTransitionTime: metav1.Now(),
		}}
	})
	line := fmt.Sprintf("pod %s/%s: %s", pod.Namespace, pod.Name, res.phase)
	switch {
	case res.reason != "":
		line += fmt.Sprintf(" (%s: %s)", res.reason, res.message)
	case res.message != "":
		line += " (" + res.message + ")"
	}
	if err != nil {
		line += fmt.Sprintf("; writing its status: %v", err)
	}
	r.logf("%s", line)
}

func (r *Runner) updateStatus(ctx context.Context, pod *corev1.Pod, mutate func(*corev1.PodStatus)) error {
	pods := r.Client.CoreV1().Pods(pod.Namespace)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		live, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if live.UID != pod.UID {
			return fmt.Errorf("pod %s/%s was replaced", pod.Namespace, pod.Name)
		}
		mutate(&live.Status)
		_, err = pods.UpdateStatus(ctx, live, metav1.UpdateOptions{})
		return err
	})
}
