package harness

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kratix-turnstile/turnstile/internal/harness/podrunner"
	"github.com/kratix-turnstile/turnstile/pkg/image"
)

// imageCache keeps the unpacked pipeline images between runs, each under a key of everything
// that goes into it (the module's sources, its spec, the platform, the tag and the CA bundle):
// a second `make demo` on an unchanged tree builds none. Containers see an image's files
// read-only, so a cached one is used in place.
type imageCache struct {
	dir     string
	sources string // the hash of the module's Go sources
}

func newImageCache(dir, module string) (*imageCache, error) {
	h := sha256.New()
	err := filepath.WalkDir(module, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != module && (strings.HasPrefix(name, ".") || name == "out" || name == "bin" || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if name != "go.mod" && name != "go.sum" && (!strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go")) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(module, path)
		fmt.Fprintf(h, "%s %d\n", rel, len(data))
		h.Write(data)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hashing the module's sources for the image cache: %w", err)
	}
	return &imageCache{dir: dir, sources: hex.EncodeToString(h.Sum(nil))}, nil
}

// key is where an image of spec, for platform and tag, with the CA bundle, is kept.
func (c *imageCache) key(s image.Spec, p v1.Platform, tag, caBundle string) (string, error) {
	ca, err := os.ReadFile(caBundle)
	if err != nil {
		return "", fmt.Errorf("reading the CA bundle for the images: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%+v\n%s\n%s\n", c.sources, s, p.String(), tag)
	h.Write(ca)
	return filepath.Join(c.dir, s.Name, hex.EncodeToString(h.Sum(nil))[:16]), nil
}

// get is the image kept at key, if there is one.
func (c *imageCache) get(key string) (podrunner.Image, bool) {
	data, err := os.ReadFile(filepath.Join(key, "image.json"))
	if err != nil {
		return podrunner.Image{}, false
	}
	var img podrunner.Image
	if json.Unmarshal(data, &img) != nil {
		return podrunner.Image{}, false
	}
	img.Root = filepath.Join(key, "root")
	return img, true
}

// put keeps an image at key: unpack writes its files into the directory it is given, and the
// whole entry appears at once, so a run that stops half-way leaves nothing a later one would
// take as good. Older entries of the same image go: one per image stays.
func (c *imageCache) put(key string, img podrunner.Image, unpack func(root string) error) (podrunner.Image, error) {
	entries := filepath.Dir(key) // this image's
	if err := os.MkdirAll(entries, 0o755); err != nil {
		return podrunner.Image{}, fmt.Errorf("creating the image cache: %w", err)
	}
	tmp, err := os.MkdirTemp(entries, ".new-")
	if err != nil {
		return podrunner.Image{}, fmt.Errorf("creating the image cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := unpack(filepath.Join(tmp, "root")); err != nil {
		return podrunner.Image{}, err
	}
	img.Root = ""
	data, err := json.Marshal(img)
	if err != nil {
		return podrunner.Image{}, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "image.json"), data, 0o644); err != nil {
		return podrunner.Image{}, fmt.Errorf("writing the image cache: %w", err)
	}
	renameErr := os.Rename(tmp, key)
	// When the rename fails, another run may have kept the same image meanwhile: theirs is as good.
	cached, ok := c.get(key)
	if !ok {
		return podrunner.Image{}, fmt.Errorf("keeping the image in %s: %w", key, cmp.Or(renameErr, errors.New("it cannot be read back")))
	}
	others, _ := os.ReadDir(entries)
	for _, o := range others {
		if o.Name() != filepath.Base(key) && !strings.HasPrefix(o.Name(), ".") { // ".new-": another run's, in the making
			_ = os.RemoveAll(filepath.Join(entries, o.Name()))
		}
	}
	return cached, nil
}
