package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
	"github.com/kratix-turnstile/turnstile/test/testbin"
)

// stageWaiter is one request of the fleet whose acquire is the real stage binary, run as
// Kratix runs its pod: what one waiting pod costs is measured on it.
type stageWaiter struct {
	bin, dir, kubeconfig string
	// peakRSS is the most resident memory (VmHWM) of any run, in KiB; cpu the CPU time of all.
	peakRSS atomic.Int64
	cpu     time.Duration
}

func newStageWaiter() (*stageWaiter, error) {
	dir, err := os.MkdirTemp("", "fleet-stage-")
	if err != nil {
		return nil, err
	}
	bin, err := testbin.Build(dir, "github.com/kratix-turnstile/turnstile/cmd/turnstile")
	if err != nil {
		return nil, err
	}
	kubeconfig, err := cp.KubeconfigFile(dir)
	if err != nil {
		return nil, err
	}
	return &stageWaiter{bin: bin, dir: dir, kubeconfig: kubeconfig}, nil
}

// acquire runs the acquire stage once, to its end. handedBack says it asked to be run again.
func (s *stageWaiter) acquire(ctx context.Context, f *fleet, req turnstile.Request) (handedBack bool, err error) {
	kratix := filepath.Join(s.dir, "kratix")
	_ = os.RemoveAll(kratix)
	for _, d := range []string{"input", "output", "metadata"} {
		if err := os.MkdirAll(filepath.Join(kratix, d), 0o755); err != nil {
			return false, err
		}
	}
	live, err := f.dyn.Resource(databases).Namespace(req.Namespace).Get(ctx, req.Name, metav1.GetOptions{})
	if err != nil {
		return false, err
	}
	data, err := yaml.Marshal(live.Object)
	if err != nil {
		return false, err
	}
	if err := os.WriteFile(filepath.Join(kratix, "input", "object.yaml"), data, 0o644); err != nil {
		return false, err
	}
	cmd := exec.CommandContext(ctx, s.bin, "acquire")
	cmd.Env = []string{
		"KRATIX_WORKFLOW_ACTION=configure", "KRATIX_WORKFLOW_TYPE=resource", "KRATIX_PROMISE_NAME=fleet",
		"KRATIX_PIPELINE_NAME=turnstile-acquire", "KRATIX_OBJECT_GROUP=" + databases.Group, "KRATIX_OBJECT_VERSION=" + databases.Version,
		"KRATIX_OBJECT_KIND=Database", "KRATIX_OBJECT_NAME=" + req.Name, "KRATIX_OBJECT_NAMESPACE=" + req.Namespace,
		"KRATIX_CRD_PLURAL=" + databases.Resource, "KRATIX_CLUSTER_SCOPED=false", "KUBECONFIG=" + s.kubeconfig,
		"TURNSTILE_KRATIX_DIR=" + kratix, "TURNSTILE_SLOT_NAMESPACE=" + f.ns, "TURNSTILE_TARGET_VERSION=v2",
		"TURNSTILE_SLOTS=" + strconv.Itoa(f.slots), "TURNSTILE_WAIT=" + f.mode.wait.String(),
		"TURNSTILE_RETRY_AFTER=" + max(f.mode.retryAfter, time.Second).String(), "TURNSTILE_WAVE_GRACE=0", "HOME=" + s.dir,
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return false, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			s.cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			if err != nil {
				return false, fmt.Errorf("the acquire stage for %s: %w: %s", req.Name, err, out.String())
			}
			_, statErr := os.Stat(filepath.Join(kratix, "metadata", "workflow-control.yaml"))
			return statErr == nil, nil
		case <-tick.C:
			if kb := vmHWM(cmd.Process.Pid); kb > s.peakRSS.Load() {
				s.peakRSS.Store(kb)
			}
		}
	}
}

// vmHWM is a process's peak resident memory in KiB, 0 if it cannot be read.
func vmHWM(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}

func (s *stageWaiter) close() { _ = os.RemoveAll(s.dir) }
