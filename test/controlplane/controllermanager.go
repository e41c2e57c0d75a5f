package controlplane

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// startControllerManager runs kube-controller-manager against the apiserver and waits until it
// is doing its job: the default ServiceAccount appears in the default namespace.
func (c *ControlPlane) startControllerManager(assets string) error {
	kubeconfig, err := c.KubeconfigFile(c.scratch)
	if err != nil {
		return err
	}
	ca, err := writeFile(c.scratch, "serving-ca.crt", c.ServingCA())
	if err != nil {
		return err
	}
	saKey := filepath.Join(c.env.ControlPlane.GetAPIServer().CertDir, "sa-signer.key")
	if _, err := os.Stat(saKey); err != nil {
		return fmt.Errorf("finding the apiserver's service-account signing key: %w", err)
	}
	c.kcm, err = StartProcess(exec.Command(filepath.Join(assets, "kube-controller-manager"),
		"--kubeconfig="+kubeconfig,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port=0",
		"--service-account-private-key-file="+saKey,
		"--root-ca-file="+ca,
		"--use-service-account-credentials=false",
		"--controllers=*",
	), filepath.Join(c.scratch, "kube-controller-manager.log"))
	if err != nil {
		return err
	}
	client := c.Client()
	err = wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 60*time.Second, true,
		func(ctx context.Context) (bool, error) {
			if c.kcm.Exited() {
				return false, fmt.Errorf("kube-controller-manager exited; see %s", c.kcm.Log)
			}
			_, err := client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return err == nil, err
		})
	if err != nil {
		return fmt.Errorf("waiting for kube-controller-manager to create the default ServiceAccount: %w", err)
	}
	return nil
}
