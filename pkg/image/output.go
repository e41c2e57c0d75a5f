package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Built is one built image: its spec's name, its reference and its index.
type Built struct {
	Name  string
	Ref   name.Tag
	Index v1.ImageIndex
}

// ForPlatform is the built image for one platform.
func (b Built) ForPlatform(p v1.Platform) (v1.Image, error) {
	m, err := b.Index.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading the index of %s: %w", b.Ref, err)
	}
	for _, d := range m.Manifests {
		if d.Platform != nil && d.Platform.Satisfies(p) {
			return b.Index.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("%s has no image for %s", b.Ref, p.String())
}

// WriteLayout writes the images into an OCI image layout at dir, each index annotated with its
// reference. The layout is written beside dir and moved into place, so dir is never half-written.
func WriteLayout(dir string, images []Built) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".oci-")
	if err != nil {
		return fmt.Errorf("writing OCI layout %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("writing OCI layout %s: %w", dir, err)
	}
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return fmt.Errorf("writing OCI layout %s: %w", dir, err)
	}
	for _, img := range images {
		err := p.AppendIndex(img.Index, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": img.Ref.String()}))
		if err != nil {
			return fmt.Errorf("writing %s into OCI layout %s: %w", img.Ref, dir, err)
		}
	}
	return replaceDir(tmp, dir)
}

func replaceDir(from, to string) error {
	old := to + ".old"
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("replacing %s: %w", to, err)
	}
	if err := os.Rename(to, old); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("replacing %s: %w", to, err)
	}
	if err := os.Rename(from, to); err != nil {
		return fmt.Errorf("replacing %s: %w", to, err)
	}
	return os.RemoveAll(old)
}

// WriteArchive writes one platform's images into a docker-archive tarball, the format
// `kind load image-archive` takes.
func WriteArchive(path string, p v1.Platform, images []Built) error {
	refs := map[name.Reference]v1.Image{}
	for _, b := range images {
		img, err := b.ForPlatform(p)
		if err != nil {
			return err
		}
		refs[b.Ref] = img
	}
	tmp := path + ".tmp"
	if err := tarball.MultiRefWriteToFile(tmp, refs); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing image archive %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing image archive %s: %w", path, err)
	}
	return nil
}

// Push pushes an image index to a registry, with credentials from the usual places (docker
// config, credential helpers). Registries on localhost are reached over plain HTTP.
func Push(ctx context.Context, ref name.Reference, idx v1.ImageIndex, opts ...remote.Option) error {
	opts = append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, opts...)
	if err := remote.WriteIndex(ref, idx, opts...); err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	return nil
}
