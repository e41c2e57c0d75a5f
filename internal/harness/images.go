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
	"github.com/kratix-turnstile/turnstile/internal/imagefs"
	"github.com/kratix-turnstile/turnstile/pkg/image"
)

// AdapterImage is the image the harness tells Kratix its pipeline adapter is (PIPELINE_ADAPTER_IMG).
const AdapterImage = "ghcr.io/syntasso/kratix-platform-pipeline-adapter:harness"

// pipelineImages are the images the example Promise's pipelines name: built as `make images`
// builds them, for this machine's platform, and run from their unpacked filesystems.
var pipelineImages = []string{"stage", "webapp-configure"}

// buildImages builds the pipeline images, or takes them from cache when nothing that goes into
// them changed; the pipeline adapter maps to the work-creator binary in kratixDir, built with
// the control plane. during says what a long step does while it runs.
func buildImages(ctx context.Context, module, kratixDir, dir, cacheDir, repo, tag string, during func(string, func() error) error,
	say func(string, ...any)) (map[string]podrunner.Image, error) {
	specs, err := image.LoadSpecs(image.SpecDirsUnder(module)...)
	if err != nil {
		return nil, err
	}
	cache, err := newImageCache(cacheDir, module)
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
		ref := fmt.Sprintf("%s/%s:%s", repo, s.Name, tag) // as ImageRef
		key, err := cache.key(s, platform, tag, b.CABundle)
		if err != nil {
			return nil, err
		}
		if img, ok := cache.get(key); ok {
			say("image %s unchanged since it was built: taken from %s", s.Name, key)
			images[ref] = img
			continue
		}
		var idx v1.ImageIndex
		if err := during("building image "+s.Name+" for "+platform.Architecture, func() (err error) {
			idx, err = b.Build(ctx, s)
			return err
		}); err != nil {
			return nil, err
		}
		img, err := image.Built{Name: s.Name, Index: idx}.ForPlatform(platform)
		if err != nil {
			return nil, err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("reading %s's config: %w", ref, err)
		}
		uid, gid, err := podrunner.ParseUser(cf.Config.User)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		run := podrunner.Image{Entrypoint: cf.Config.Entrypoint, Cmd: cf.Config.Cmd,
			Env: cf.Config.Env, WorkingDir: cf.Config.WorkingDir, UID: uid, GID: gid}
		if images[ref], err = cache.put(key, run, func(root string) error {
			if err := imagefs.Unpack(img, root); err != nil {
				return fmt.Errorf("unpacking %s: %w", ref, err)
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	if len(images) != len(pipelineImages) {
		return nil, fmt.Errorf("building the pipeline images: found %d of %v in %v", len(images), pipelineImages, image.SpecDirs)
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
