package e2e

import (
	"context"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kratix-turnstile/turnstile/internal/harness"
	"github.com/kratix-turnstile/turnstile/test/patience"
)

var _ = ginkgo.Describe("the pipeline runner", func() {
	// pod is a pipeline-like pod the runner picks up (Kratix's label), with one container.
	pod := func(name string, c corev1.Container) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app.kubernetes.io/managed-by": "Kratix"}},
			Spec: corev1.PodSpec{
				RestartPolicy:      corev1.RestartPolicyNever,
				ServiceAccountName: "default",
				Containers:         []corev1.Container{c},
				Volumes:            []corev1.Volume{{Name: "shared", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			},
		}
	}
	stage := harness.ImageRef("stage")

	ginkgo.DescribeTable("fails, without running it, a pod it cannot run as asked",
		func(ctx context.Context, name string, c corev1.Container, reason, message string) {
			p, err := h.Client.CoreV1().Pods("default").Create(ctx, pod(name, c), metav1.CreateOptions{})
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			ginkgo.DeferCleanup(func(ctx context.Context) error {
				return h.Client.CoreV1().Pods("default").Delete(ctx, p.Name, metav1.DeleteOptions{})
			})
			gomega.Eventually(func(g gomega.Gomega) corev1.PodStatus {
				live, err := h.Client.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{})
				g.Expect(err).NotTo(gomega.HaveOccurred())
				return live.Status
			}).WithTimeout(patience.Scale(30 * time.Second)).Should(gomega.And(
				gomega.HaveField("Phase", corev1.PodFailed),
				gomega.HaveField("Reason", reason),
				gomega.HaveField("Message", gomega.ContainSubstring(message)),
			))
			_, err = h.Runner.ContainerLog("default", p.Name, c.Name)
			gomega.Expect(err).To(gomega.HaveOccurred(), "nothing ran, so there is no log")
		},
		ginkgo.Entry("an image the harness does not know", "unknown-image",
			corev1.Container{Name: "main", Image: "docker.io/library/busybox:1.36"},
			"UnknownImage", `container main: image "docker.io/library/busybox:1.36" is not one the harness can run`),
		ginkgo.Entry("a mount outside /kratix and /work-creator-files", "host-mount",
			corev1.Container{Name: "main", Image: stage, VolumeMounts: []corev1.VolumeMount{{Name: "shared", MountPath: "/etc"}}},
			"MountRejected", `container main: mount path "/etc" is outside /kratix and /work-creator-files`),
		ginkgo.Entry("a mount path that climbs out", "climbing-mount",
			corev1.Container{Name: "main", Image: stage, VolumeMounts: []corev1.VolumeMount{{Name: "shared", MountPath: "/kratix/../etc"}}},
			"MountRejected", `mount path "/kratix/../etc" is outside`),
	)

	ginkgo.It("runs a container from its image's filesystem and records its exit code and log", func(ctx context.Context) {
		c := corev1.Container{Name: "main", Image: stage, Args: []string{"no-such-stage"}}
		p, err := h.Client.CoreV1().Pods("default").Create(ctx, pod("bad-args", c), metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		ginkgo.DeferCleanup(func(ctx context.Context) error {
			return h.Client.CoreV1().Pods("default").Delete(ctx, p.Name, metav1.DeleteOptions{})
		})
		gomega.Eventually(func(g gomega.Gomega) []corev1.ContainerStatus {
			live, err := h.Client.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{})
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(live.Status.Phase).To(gomega.Equal(corev1.PodFailed))
			return live.Status.ContainerStatuses
		}).WithTimeout(patience.Scale(30 * time.Second)).Should(gomega.ConsistOf(
			gomega.HaveField("State.Terminated.ExitCode", gomega.Not(gomega.BeZero()))))
		log, err := h.Runner.ContainerLog("default", p.Name, "main")
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(log).To(gomega.ContainSubstring("no-such-stage"), "the stage binary ran and named the bad argument")
	})
})
