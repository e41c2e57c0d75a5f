package kratix

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

var (
	gitStateStores = schema.GroupVersionResource{Group: "platform.kratix.io", Version: "v1alpha1", Resource: "gitstatestores"}
	destinations   = schema.GroupVersionResource{Group: "platform.kratix.io", Version: "v1alpha1", Resource: "destinations"}
)

// StateStore is a bare git repository on disk and the URL Kratix is given for it.
type StateStore struct {
	Repo string
	// URL is file://Repo, or, for a Kratix that takes only https and ssh, an https URL that the
	// manager's git config rewrites to the repository (ManagerOptions.StateStores).
	URL string
}

// Destination is a Kratix Destination whose state store is a bare git repository on disk.
type Destination struct {
	Name string
	// Repo is the bare repository; Kratix writes the Destination's files under Name in it.
	Repo string
}

// CreateDestination creates the store's bare repository, a GitStateStore for it (with the
// basic-auth secret Kratix insists on, holding nothing secret), and a Destination on it.
func CreateDestination(ctx context.Context, client kubernetes.Interface, dyn dynamic.Interface, name string, store StateStore) (Destination, error) {
	repo := store.Repo
	if err := initRepo(ctx, repo); err != nil {
		return Destination{}, err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-git", Namespace: "default"},
		StringData: map[string]string{"username": "kratix", "password": "unused"},
	}
	if _, err := client.CoreV1().Secrets("default").Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		return Destination{}, fmt.Errorf("creating the state store's secret: %w", err)
	}
	gitStore := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "platform.kratix.io/v1alpha1", "kind": "GitStateStore",
		"metadata": map[string]any{"name": name},
		"spec": map[string]any{
			"url": store.URL, "branch": "main", "authMethod": "basicAuth",
			"secretRef": map[string]any{"name": secret.Name, "namespace": secret.Namespace},
		},
	}}
	if _, err := dyn.Resource(gitStateStores).Create(ctx, gitStore, metav1.CreateOptions{}); err != nil {
		return Destination{}, fmt.Errorf("creating GitStateStore %s: %w", name, err)
	}
	dest := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "platform.kratix.io/v1alpha1", "kind": "Destination",
		"metadata": map[string]any{"name": name, "labels": map[string]any{"environment": "dev"}},
		"spec": map[string]any{
			"path":          name,
			"stateStoreRef": map[string]any{"name": name, "kind": "GitStateStore"},
		},
	}}
	if _, err := dyn.Resource(destinations).Create(ctx, dest, metav1.CreateOptions{}); err != nil {
		return Destination{}, fmt.Errorf("creating Destination %s: %w", name, err)
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := dyn.Resource(destinations).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		conds, _, _ := unstructured.NestedSlice(d.Object, "status", "conditions")
		for _, c := range conds {
			if m, _ := c.(map[string]any); m["type"] == "Ready" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return Destination{}, fmt.Errorf("waiting for Destination %s to be Ready: %w", name, err)
	}
	return Destination{Name: name, Repo: repo}, nil
}

// initRepo creates a bare repository with one empty commit on main: Kratix clones the branch,
// and cannot clone a repository with no commits.
func initRepo(ctx context.Context, repo string) error {
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Env = append(cmd.Environ(), "GIT_AUTHOR_NAME=turnstile-harness", "GIT_AUTHOR_EMAIL=harness@turnstile.invalid",
			"GIT_COMMITTER_NAME=turnstile-harness", "GIT_COMMITTER_EMAIL=harness@turnstile.invalid")
		out, err := cmd.Output()
		if err != nil {
			var stderr string
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				stderr = strings.TrimSpace(string(exit.Stderr))
			}
			return "", fmt.Errorf("creating the state store repository %s: git %s: %w: %s", repo, args[0], err, stderr)
		}
		return strings.TrimSpace(string(out)), nil
	}
	if _, err := git("init", "--quiet", "--bare", "--initial-branch=main", repo); err != nil {
		return err
	}
	emptyTree, err := git("--git-dir", repo, "hash-object", "-t", "tree", "-w", "--stdin")
	if err != nil {
		return err
	}
	commit, err := git("--git-dir", repo, "commit-tree", emptyTree, "-m", "An empty state store")
	if err != nil {
		return err
	}
	_, err = git("--git-dir", repo, "update-ref", "refs/heads/main", commit)
	return err
}
