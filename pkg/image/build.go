package image

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// VersionVar is the variable the binaries' version is stamped into.
const VersionVar = "github.com/kratix-turnstile/turnstile/pkg/version.Version"

// Builder builds images from specs.
type Builder struct {
	// ModuleDir is the root of the Go module that holds the main packages.
	ModuleDir string
	// Version is stamped into the binaries and the labels. Required; never "latest".
	Version string
	// Revision is the source revision, for the labels.
	Revision string
	// Created is the images' creation time, and every file's mtime: fixed, so builds reproduce.
	Created time.Time
	// Platforms to build, e.g. linux/amd64 and linux/arm64.
	Platforms []v1.Platform
	// CABundle is the CA certificates file copied into the images.
	CABundle string
	// Source is the repository URL for the labels.
	Source string
}

// Validate checks the builder's settings.
func (b *Builder) Validate() error {
	switch {
	case b.Version == "" || b.Version == "latest":
		return fmt.Errorf("image version %q: give a real version (from git describe), never latest", b.Version)
	case len(b.Platforms) == 0:
		return fmt.Errorf("no platforms to build")
	}
	for _, p := range b.Platforms {
		if p.OS != "linux" || p.Architecture == "" {
			return fmt.Errorf("platform %s: only linux/<arch> images are built", p.String())
		}
	}
	return nil
}

// Build builds one image for every platform and returns them as an OCI image index.
func (b *Builder) Build(ctx context.Context, spec Spec) (v1.ImageIndex, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(b.CABundle)
	if err != nil {
		return nil, fmt.Errorf("reading the CA bundle: %w", err)
	}
	base, err := layer(baseFiles(ca), b.Created)
	if err != nil {
		return nil, err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range b.Platforms {
		bin, err := b.compile(ctx, spec, p)
		if err != nil {
			return nil, err
		}
		img, err := b.assemble(spec, p, base, bin)
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	return idx, nil
}

// compile cross-compiles the spec's main package into a static binary.
func (b *Builder) compile(ctx context.Context, spec Spec, p v1.Platform) ([]byte, error) {
	out, err := os.MkdirTemp("", "turnstile-image-")
	if err != nil {
		return nil, fmt.Errorf("building %s for %s: %w", spec.Name, p.String(), err)
	}
	defer os.RemoveAll(out)
	bin := filepath.Join(out, spec.Binary)
	if err := Compile(ctx, b.ModuleDir, spec, p, b.Version, bin); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("building %s for %s: %w", spec.Main, p.String(), err)
	}
	return data, nil
}

// Compile builds the spec's main package for a platform into out, exactly as its image has it:
// static, trimmed, stamped with version. Tests that run the binaries outside an image build
// them with this too, so every build of a binary shares Go's build cache with the images'.
func Compile(ctx context.Context, moduleDir string, spec Spec, p v1.Platform, version, out string) error {
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w -X " + VersionVar + "=" + version, "-o", out}
	if spec.GCFlags != "" {
		args = append(args, "-gcflags", spec.GCFlags)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, spec.Main)...)
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building %s for %s: %w: %s", spec.Main, p.String(), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// assemble puts the base layer and the binary's layer on an empty image and writes its config.
func (b *Builder) assemble(spec Spec, p v1.Platform, base v1.Layer, binary []byte) (v1.Image, error) {
	app, err := layer(binaryFiles(spec, binary), b.Created)
	if err != nil {
		return nil, err
	}
	created := v1.Time{Time: b.Created}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, MediaType: types.OCILayer, History: v1.History{
			Created: created, CreatedBy: "turnstile-image", Comment: "users, groups and CA certificates"}},
		mutate.Addendum{Layer: app, MediaType: types.OCILayer, History: v1.History{
			Created: created, CreatedBy: "turnstile-image", Comment: "go build " + spec.Main}},
	)
	if err != nil {
		return nil, fmt.Errorf("assembling %s for %s: %w", spec.Name, p.String(), err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("assembling %s for %s: %w", spec.Name, p.String(), err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = created
	cf.Author = "Turnstile"
	cf.Config.Entrypoint = []string{spec.Entrypoint()}
	cf.Config.User = fmt.Sprintf("%d:%d", NonRoot, NonRoot)
	cf.Config.WorkingDir = "/home/nonroot"
	cf.Config.Env = []string{"PATH=/usr/local/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "HOME=/home/nonroot"}
	cf.Config.Labels = b.labels(spec)
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("assembling %s for %s: %w", spec.Name, p.String(), err)
	}
	return img, nil
}

func (b *Builder) labels(spec Spec) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":       spec.Title,
		"org.opencontainers.image.description": spec.Description,
		"org.opencontainers.image.version":     b.Version,
		"org.opencontainers.image.created":     b.Created.UTC().Format(time.RFC3339),
	}
	if b.Revision != "" {
		l["org.opencontainers.image.revision"] = b.Revision
	}
	if b.Source != "" {
		l["org.opencontainers.image.source"] = b.Source
	}
	return l
}
