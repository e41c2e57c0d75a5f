package image

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kratix-turnstile/turnstile/internal/imagefs"
)

const testVersion = "v0.0.0-test"

var (
	amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = v1.Platform{OS: "linux", Architecture: "arm64"}
)

// testBuilder builds for both platforms with fixed inputs.
func testBuilder() *Builder {
	root, _ := filepath.Abs("../..")
	return &Builder{ModuleDir: root, Version: testVersion, Revision: "abc123", Created: time.Unix(1700000000, 0).UTC(),
		Platforms: []v1.Platform{amd64, arm64}, CABundle: "/etc/ssl/certs/ca-certificates.crt", Source: "https://example.com/turnstile"}
}

// shipped builds the images declared in images/ once for all the tests in this package.
var shipped = sync.OnceValues(func() ([]Built, error) {
	specs, err := LoadSpecs("../../images")
	if err != nil {
		return nil, err
	}
	b := testBuilder()
	var out []Built
	for _, s := range specs {
		idx, err := b.Build(context.Background(), s)
		if err != nil {
			return nil, err
		}
		ref, err := name.NewTag("example.com/turnstile/" + s.Name + ":" + testVersion)
		if err != nil {
			return nil, err
		}
		out = append(out, Built{Name: s.Name, Ref: ref, Index: idx})
	}
	return out, nil
})

func shippedImages(t *testing.T) []Built {
	t.Helper()
	built, err := shipped()
	if err != nil {
		t.Fatal(err)
	}
	return built
}

// files lists the paths in an image's flattened filesystem.
func files(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out["/"+strings.TrimSuffix(hdr.Name, "/")] = hdr
	}
}

func TestPushedImagesPullBackAsBuilt(t *testing.T) {
	server := httptest.NewServer(registry.New())
	defer server.Close()
	host := strings.TrimPrefix(server.URL, "http://")
	ctx := context.Background()
	for _, b := range shippedImages(t) {
		t.Run(b.Name, func(t *testing.T) {
			ref, err := name.NewTag(host + "/turnstile/" + b.Name + ":" + testVersion)
			if err != nil {
				t.Fatal(err)
			}
			if err := Push(ctx, ref, b.Index); err != nil {
				t.Fatal(err)
			}
			idx, err := remote.Index(ref, remote.WithContext(ctx))
			if err != nil {
				t.Fatal(err)
			}
			manifest, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			var archs []string
			for _, d := range manifest.Manifests {
				archs = append(archs, d.Platform.String())
			}
			if strings.Join(archs, ",") != "linux/amd64,linux/arm64" {
				t.Errorf("index platforms = %v, want linux/amd64 and linux/arm64", archs)
			}
			pulled := Built{Name: b.Name, Index: idx}
			for _, p := range []v1.Platform{amd64, arm64} {
				img, err := pulled.ForPlatform(p)
				if err != nil {
					t.Fatal(err)
				}
				cf, err := img.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				if cf.Architecture != p.Architecture || cf.Config.User != "65532:65532" {
					t.Errorf("%s: architecture %q user %q", p.String(), cf.Architecture, cf.Config.User)
				}
				spec, err := loadSpec("../../images/" + b.Name + ".yaml")
				if err != nil {
					t.Fatal(err)
				}
				entry := spec.Entrypoint()
				if len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != entry {
					t.Errorf("%s: entrypoint %v, want [%s]", p.String(), cf.Config.Entrypoint, entry)
				}
				for _, label := range []string{"org.opencontainers.image.version", "org.opencontainers.image.revision", "org.opencontainers.image.source", "org.opencontainers.image.title"} {
					if cf.Config.Labels[label] == "" {
						t.Errorf("%s: no label %s", p.String(), label)
					}
				}
				fs := files(t, img)
				for _, shell := range []string{"/bin/sh", "/bin/bash", "/bin/busybox", "/usr/bin/sh"} {
					if _, ok := fs[shell]; ok {
						t.Errorf("%s: the image has a shell at %s", p.String(), shell)
					}
				}
				for _, want := range []string{entry, "/etc/passwd", "/etc/group", "/etc/ssl/certs/ca-certificates.crt"} {
					if _, ok := fs[want]; !ok {
						t.Errorf("%s: the image lacks %s", p.String(), want)
					}
				}
			}
		})
	}
}

func TestBuildsAreReproducible(t *testing.T) {
	first := shippedImages(t)[0]
	spec, err := loadSpec("../../images/" + first.Name + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	again, err := testBuilder().Build(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := first.Index.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("two builds of %s from the same inputs: %s and %s", first.Name, d1, d2)
	}
}

// TestStageImageRuns unpacks the amd64 stage image and runs its entrypoint inside it, chrooted
// and as the image's user: the shipped image, not just the binary, is what runs.
func TestStageImageRuns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	var stage Built
	for _, b := range shippedImages(t) {
		if b.Name == "stage" {
			stage = b
		}
	}
	img, err := stage.ForPlatform(amd64)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := imagefs.Unpack(img, root); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/local/bin/turnstile", "version")
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: NonRoot, Gid: NonRoot}}
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/local/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("running the stage image's entrypoint: %v: %s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != testVersion {
		t.Errorf("turnstile version = %q, want %q", got, testVersion)
	}
}

func TestWriteLayoutAndArchive(t *testing.T) {
	out := t.TempDir()
	built := shippedImages(t)
	if err := WriteLayout(filepath.Join(out, "oci"), built); err != nil {
		t.Fatal(err)
	}
	if err := WriteLayout(filepath.Join(out, "oci"), built); err != nil {
		t.Fatalf("rewriting the layout: %v", err)
	}
	archive := filepath.Join(out, "images.tar")
	if err := WriteArchive(archive, amd64, built); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(out)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "images.tar,oci" {
		t.Errorf("output dir holds %v, want only images.tar and oci", names)
	}
	manifest, err := os.ReadFile(filepath.Join(out, "oci", "index.json"))
	if err != nil || !strings.Contains(string(manifest), "example.com/turnstile/stage:"+testVersion) {
		t.Errorf("index.json does not name the stage image: %v %s", err, manifest)
	}
}

func TestLoadSpecsRejectsBadSpecs(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"bad name", "name: Stage\nmain: ./cmd/x\nbinary: x\n", `name "Stage" must be a DNS label`},
		{"bad main", "name: s\nmain: cmd/x\nbinary: x\n", `main "cmd/x" must be a package path`},
		{"bad binary", "name: s\nmain: ./cmd/x\nbinary: bin/x\n", `binary "bin/x" must be a plain file name`},
		{"unknown field", "name: s\nmain: ./cmd/x\nbinary: x\nshell: bash\n", `unknown field "shell"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "s.yaml"), []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadSpecs(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "s.yaml") {
				t.Fatalf("LoadSpecs() error = %v, want it to name s.yaml and contain %q", err, tt.want)
			}
		})
	}
}

func TestCommandRejectsBadInput(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"no version", nil, "", `image version ""`},
		{"latest", []string{"--version=latest"}, "", "never latest"},
		{"bad platform", []string{"--version=v1", "--platforms=linux/"}, "", "platform"},
		{"windows", []string{"--version=v1", "--platforms=windows/amd64"}, "", "only linux/<arch> images"},
		{"bad epoch", []string{"--version=v1"}, "yesterday", `SOURCE_DATE_EPOCH="yesterday"`},
		{"unknown flag", []string{"--tag=v1"}, "", "unknown flag: --tag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SOURCE_DATE_EPOCH", tt.env)
			var stdout, stderr strings.Builder
			out := t.TempDir()
			code := Main(context.Background(), append(tt.args, "--out="+out), &stdout, &stderr)
			if code == 0 || !strings.Contains(stderr.String(), tt.want) || strings.Count(stderr.String(), "\n") != 1 {
				t.Fatalf("exit %d, stderr %q: want one line containing %q", code, stderr.String(), tt.want)
			}
			if entries, _ := os.ReadDir(out); len(entries) != 0 {
				t.Errorf("output dir holds %d entries after a failure", len(entries))
			}
		})
	}
}
