// Package kratix runs the real Kratix manager out of cluster for the end-to-end harness, and
// gives it a Destination backed by a git state store on disk.
package kratix

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/kratix-turnstile/turnstile/test/controlplane"
)

// SystemNamespace is Kratix's namespace, where promise-level work and Turnstile's leases live.
const SystemNamespace = "kratix-platform-system"

// Manager is a running kratix-manager.
type Manager struct {
	proc  *controlplane.Process
	certs string
}

// ManagerOptions say how to run the manager.
type ManagerOptions struct {
	// Binary is the kratix-manager built by hack/provision-control-plane.sh.
	Binary string
	// Kubeconfig is an admin kubeconfig file for the platform.
	Kubeconfig string
	// AdapterImage is PIPELINE_ADAPTER_IMG: the image Kratix names for its own containers.
	AdapterImage string
	// Dir holds the manager's TMPDIR, certificates, git config and log.
	Dir string
	// StateStores whose URL is not file:// are mapped onto their repositories by the git
	// config the manager's git runs with.
	StateStores []StateStore
}

// StartManager starts the manager and waits until it is ready.
//
// Kratix's git writer removes the whole of its TMPDIR after every write (it deletes the parent
// of os.MkdirTemp), and its webhook server reads its certificates from under TMPDIR. So the
// manager gets a TMPDIR of its own, and the certificates are bind-mounted read-only there: the
// removal cannot reach them. This needs a private mount namespace (the sandbox's).
func StartManager(ctx context.Context, client kubernetes.Interface, o ManagerOptions) (*Manager, error) {
	if err := ensureNamespace(ctx, client, SystemNamespace); err != nil {
		return nil, err
	}
	tmp := filepath.Join(o.Dir, "tmp")
	certs := filepath.Join(o.Dir, "certs")
	mountPoint := filepath.Join(tmp, "k8s-webhook-server", "serving-certs")
	for _, d := range []string{certs, mountPoint} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("creating %s: %w", d, err)
		}
	}
	if err := writeServingCert(certs); err != nil {
		return nil, err
	}
	if err := unix.Mount(certs, mountPoint, "", unix.MS_BIND, ""); err != nil {
		return nil, fmt.Errorf("mounting the manager's webhook certificates: %w", err)
	}
	m := &Manager{certs: mountPoint}
	if err := unix.Mount("", mountPoint, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		m.Stop()
		return nil, fmt.Errorf("making the manager's webhook certificates read-only: %w", err)
	}
	ports, err := freePorts(3)
	if err != nil {
		m.Stop()
		return nil, err
	}
	cmd := exec.Command(o.Binary,
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", ports[0]),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", ports[1]),
		fmt.Sprintf("--pprof-bind-address=127.0.0.1:%d", ports[2]),
		"--metrics-secure=false",
	)
	gitConfig, err := writeGitConfig(o.Dir, o.StateStores)
	if err != nil {
		m.Stop()
		return nil, err
	}
	// Kratix runs git with HOME=/dev/null, so the config is named by GIT_CONFIG_GLOBAL, which
	// its git inherits.
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "KUBECONFIG="+o.Kubeconfig, "PIPELINE_ADAPTER_IMG="+o.AdapterImage,
		"GIT_CONFIG_GLOBAL="+gitConfig)
	if m.proc, err = controlplane.StartProcess(cmd, filepath.Join(o.Dir, "kratix-manager.log")); err != nil {
		m.Stop()
		return nil, err
	}
	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[1])
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if m.proc.Exited() {
			return false, fmt.Errorf("kratix-manager exited; see %s", m.proc.Log)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, readyz, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		m.Stop()
		return nil, fmt.Errorf("waiting for kratix-manager to be ready: %w", err)
	}
	return m, nil
}

// Stop stops the manager and unmounts its certificates.
func (m *Manager) Stop() {
	if m.proc != nil {
		_ = m.proc.Stop(10 * time.Second)
	}
	_ = unix.Unmount(m.certs, unix.MNT_DETACH)
}

// writeGitConfig writes a git config that rewrites each store's URL to its repository.
func writeGitConfig(dir string, stores []StateStore) (string, error) {
	var b strings.Builder
	for _, s := range stores {
		if !strings.HasPrefix(s.URL, "file://") {
			fmt.Fprintf(&b, "[url %q]\n\tinsteadOf = %s\n", "file://"+s.Repo, s.URL)
		}
	}
	path := filepath.Join(dir, "gitconfig")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return "", fmt.Errorf("writing the manager's git config: %w", err)
	}
	return path, nil
}

func ensureNamespace(ctx context.Context, client kubernetes.Interface, name string) error {
	_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}

// writeServingCert writes a self-signed tls.crt and tls.key for the manager's webhook server,
// which serves nothing here (no webhook is registered) but will not start without them.
func writeServingCert(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generating the webhook key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(48 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("signing the webhook certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding the webhook key: %w", err)
	}
	files := map[string][]byte{
		"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"tls.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return fmt.Errorf("writing the webhook %s: %w", name, err)
		}
	}
	return nil
}

// freePorts are loopback ports free at the time of asking.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
