package harness

import (
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kratix-turnstile/turnstile/internal/harness/podrunner"
	"github.com/kratix-turnstile/turnstile/pkg/image"
)

func TestImageCache(t *testing.T) {
	module, cacheDir := t.TempDir(), t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(module, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ca := filepath.Join(module, "ca.pem")
	write("go.mod", "module example.com/m\n")
	write("main.go", "package main\n")
	write("ca.pem", "ca")
	spec, p := image.Spec{Name: "stage", Main: "./"}, v1.Platform{OS: "linux", Architecture: "amd64"}
	keyOf := func() string {
		t.Helper()
		c, err := newImageCache(cacheDir, module)
		if err != nil {
			t.Fatal(err)
		}
		key, err := c.key(spec, p, "dev", ca)
		if err != nil {
			t.Fatal(err)
		}
		return key
	}

	c, _ := newImageCache(cacheDir, module)
	key := keyOf()
	if _, ok := c.get(key); ok {
		t.Fatal("an empty cache has the image")
	}
	img, err := c.put(key, podrunner.Image{Entrypoint: []string{"/turnstile"}, UID: 65532}, func(root string) error {
		if err := os.MkdirAll(root, 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(root, "turnstile"), []byte("binary"), 0o755)
	})
	if err != nil || img.Root != filepath.Join(key, "root") || img.UID != 65532 || img.Entrypoint[0] != "/turnstile" {
		t.Fatalf("put() = %+v, %v", img, err)
	}
	if again, ok := c.get(key); !ok || again.Root != img.Root {
		t.Fatalf("get() after put = %+v, %v", again, ok)
	}
	write("main_test.go", "package main\n")
	if keyOf() != key {
		t.Error("a test file changed the key: tests go into no image")
	}
	write("main.go", "package main\n\nfunc main() {}\n")
	changed := keyOf()
	if changed == key {
		t.Fatal("a changed source kept the key")
	}
	if _, err := c.put(changed, podrunner.Image{}, func(root string) error { return os.MkdirAll(root, 0o755) }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(key); !os.IsNotExist(err) {
		t.Errorf("the older entry of the image stayed: %v", err)
	}
}
