// Package gitsync stands in for the GitOps agent (Flux, Argo CD) of a Kratix Destination in the
// end-to-end harness: it reads what Kratix committed for the Destination to a git state store
// (a bare repository on disk), applies it to the Destination's cluster with server-side apply,
// and deletes what a later commit removed.
package gitsync

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
)

// FieldManager owns what the stand-in applies.
const FieldManager = "turnstile-destination-sync"

// Syncer applies one Destination's directory of a state-store repository to a cluster.
type Syncer struct {
	// Repo is the bare repository Kratix's GitStateStore writes to.
	Repo string
	// Path is the Destination's directory in it (the Destination's name, or its spec.path).
	Path string
	// Client and Mapper reach the Destination's cluster.
	Client dynamic.Interface
	Mapper meta.ResettableRESTMapper

	commit  string
	applied map[string]object
}

// object is one applied object, by what it takes to delete it.
type object struct {
	mapping   *meta.RESTMapping
	namespace string
	name      string
}

// Result says what one sync did.
type Result struct {
	Commit  string
	Applied int
	Pruned  int
}

// Once syncs the newest commit, if it is new: applies every object under Path and deletes the
// objects an earlier sync applied that are gone.
func (s *Syncer) Once(ctx context.Context) (Result, error) {
	commit, err := s.git(ctx, "rev-parse", "--verify", "--quiet", "HEAD")
	if err != nil || commit == "" {
		return Result{}, nil // nothing committed yet
	}
	commit = strings.TrimSpace(commit)
	if commit == s.commit {
		return Result{Commit: commit}, nil
	}
	docs, err := s.documents(ctx, commit)
	if err != nil {
		return Result{}, err
	}
	res := Result{Commit: commit}
	seen := map[string]object{}
	for _, u := range docs {
		o, err := s.apply(ctx, u)
		if err != nil {
			return res, err
		}
		seen[key(o)] = o
		res.Applied++
	}
	for k, o := range s.applied {
		if _, ok := seen[k]; ok {
			continue
		}
		err := s.Client.Resource(o.mapping.Resource).Namespace(o.namespace).Delete(ctx, o.name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return res, fmt.Errorf("pruning %s %s/%s: %w", o.mapping.GroupVersionKind.Kind, o.namespace, o.name, err)
		}
		res.Pruned++
	}
	s.commit, s.applied = commit, seen
	return res, nil
}

func key(o object) string {
	return o.mapping.Resource.String() + "/" + o.namespace + "/" + o.name
}

func (s *Syncer) git(ctx context.Context, args ...string) (string, error) {
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "git", append([]string{"--git-dir", s.Repo}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out.String(), nil
}

// documents reads every YAML document under Path at commit, Namespaces and CRDs first.
func (s *Syncer) documents(ctx context.Context, commit string) ([]*unstructured.Unstructured, error) {
	if _, err := s.git(ctx, "cat-file", "-e", commit+":"+s.Path); err != nil {
		return nil, nil // the Destination has nothing yet
	}
	archive, err := s.git(ctx, "archive", "--format=tar", commit, s.Path)
	if err != nil {
		return nil, err
	}
	var docs []*unstructured.Unstructured
	tr := tar.NewReader(strings.NewReader(archive))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading commit %s: %w", commit, err)
		}
		if ext := path.Ext(hdr.Name); hdr.Typeflag != tar.TypeReg || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(tr, 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("reading %s: %w", hdr.Name, err)
			}
			if len(u.Object) > 0 {
				docs = append(docs, u)
			}
		}
	}
	first := map[string]int{"Namespace": 0, "CustomResourceDefinition": 1}
	rank := func(u *unstructured.Unstructured) int {
		if r, ok := first[u.GetKind()]; ok {
			return r
		}
		return 2
	}
	sort.SliceStable(docs, func(i, j int) bool { return rank(docs[i]) < rank(docs[j]) })
	return docs, nil
}

// apply server-side-applies one object, resolving its kind afresh when the kind is new (a CRD
// applied a moment ago).
func (s *Syncer) apply(ctx context.Context, u *unstructured.Unstructured) (object, error) {
	gvk := u.GroupVersionKind()
	mapping, err := s.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		s.Mapper.Reset()
		if mapping, err = s.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			return object{}, fmt.Errorf("finding the resource of %s: %w", gvk, err)
		}
	}
	ns := u.GetNamespace()
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace && ns == "" {
		ns = "default"
		u.SetNamespace(ns)
	}
	data, err := u.MarshalJSON()
	if err != nil {
		return object{}, err
	}
	_, err = s.Client.Resource(mapping.Resource).Namespace(ns).Patch(ctx, u.GetName(), types.ApplyPatchType, data,
		metav1.PatchOptions{FieldManager: FieldManager, Force: ptr.To(true)})
	if err != nil {
		return object{}, fmt.Errorf("applying %s %s/%s: %w", gvk.Kind, ns, u.GetName(), err)
	}
	if mapping.Scope.Name() != meta.RESTScopeNameNamespace {
		ns = ""
	}
	return object{mapping: mapping, namespace: ns, name: u.GetName()}, nil
}

// Run syncs every interval until ctx ends. A failed sync (a kind the cluster does not serve
// yet) is tried again at the next tick; report, if set, hears of every sync that did something
// or failed.
func (s *Syncer) Run(ctx context.Context, interval time.Duration, report func(Result, error)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		res, err := s.Once(ctx)
		if report != nil && ctx.Err() == nil && (err != nil || res.Applied > 0 || res.Pruned > 0) {
			report(res, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
