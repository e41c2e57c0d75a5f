package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kratix-turnstile/turnstile/internal/harness/podrunner"
	"github.com/kratix-turnstile/turnstile/pkg/image"
)

// AdapterImage is the image the harness tells Kratix its pipeline adapter is (PIPELINE_ADAPTER_IMG).
const AdapterImage = "ghcr.io/syntasso/kratix-platform-pipeline-adapter:harness"

// pipelineImages are the images the example Promise's pipelines name: built as `make images`
// builds them, for this machine's platform, and run from their unpacked filesystems.
var pipelineImages = []string{"stage", "webapp-configure"}

// buildImages builds the pipeline images and unpacks each into dir; the pipeline adapter maps
// to the work-creator binary in kratixDir, built with the control plane.
func buildImages(ctx context.Context, module, kratixDir, dir, repo, tag string, during func(string, func() error) error) (map[string]podrunner.Image, error) {
	specs, err := image.LoadSpecs(image.SpecDirsUnder(module)...)
	if err != nil {
		return nil, err
	}
	platform := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	b := &image.Builder{ModuleDir: module, Version: tag, Created: time.Unix(0, 0).UTC(),
		Platforms: []v1.Platform{platform}, CABundle: "/etc/ssl/certs/ca-certificates.crt"}
	images := map[string]podrunner.Image{}
	for _, s := range specs {
		if !slices.Contains(pipelineImages, s.Name) {
			continue
		}
		var idx v1.ImageIndex
		if err := during("building image "+s.Name+" for "+platform.Architecture, func() (err error) {
			idx, err = b.Build(ctx, s)
			return err
		}); err != nil {
			return nil, err
		}
		ref := fmt.Sprintf("%s/%s:%s", repo, s.Name, tag) // as ImageRef
		img, err := image.Built{Name: s.Name, Index: idx}.ForPlatform(platform)
		if err != nil {
			return nil, err
		}
		root := filepath.Join(dir, s.Name)
		if err := image.Unpack(img, root); err != nil {
			return nil, fmt.Errorf("unpacking %s: %w", ref, err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("reading %s's config: %w", ref, err)
		}
		uid, gid, err := podrunner.ParseUser(cf.Config.User)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		images[ref] = podrunner.Image{Root: root, Entrypoint: cf.Config.Entrypoint, Cmd: cf.Config.Cmd,
			Env: cf.Config.Env, WorkingDir: cf.Config.WorkingDir, UID: uid, GID: gid}
	}
	if len(images) != len(pipelineImages) {
		return nil, fmt.Errorf("building the pipeline images: found %d of %v in images/", len(images), pipelineImages)
	}
	adapterRoot := filepath.Join(dir, "pipeline-adapter")
	if err := os.MkdirAll(adapterRoot, 0o755); err != nil {
		return nil, err
	}
	images[AdapterImage] = podrunner.Image{
		Root:  adapterRoot,
		Binds: []podrunner.Mount{{Source: filepath.Join(kratixDir, "pipeline-adapter"), Target: "/bin/pipeline-adapter", ReadOnly: true}},
		UID:   image.NonRoot, GID: image.NonRoot,
	}
	return images, nil
}

// ImageRef is the reference the harness gives one of Turnstile's images, e.g. "stage".
func ImageRef(name string) string {
	return fmt.Sprintf("%s/%s:%s", image.DefaultRepository, name, ImageTag)
}
