// Package imagefs unpacks an image's filesystem, for running its entrypoint chrooted: the local
// platform's pod runner does, and the image tests, to run the shipped image rather than its binary.
package imagefs

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// Unpack writes an image's flattened filesystem under root, for running its entrypoint chrooted
// there: the shipped image, not just its binary. It is for images turnstile-image builds, which
// hold no links: a link could lead a later entry's write out of root, so links are refused, as
// are entries that would land outside root. Run as root, it keeps the files' owners.
func Unpack(img v1.Image, root string) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("unpacking the image: %w", err)
		}
		name := filepath.Clean("/" + hdr.Name)
		path := filepath.Join(root, name)
		if !strings.HasPrefix(path, filepath.Clean(root)+string(filepath.Separator)) && path != filepath.Clean(root) {
			return fmt.Errorf("unpacking the image: %q is outside the root", hdr.Name)
		}
		mode := os.FileMode(hdr.Mode).Perm()
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(path, mode|0o700)
		case tar.TypeReg:
			err = writeFile(path, tr, mode)
		case tar.TypeSymlink, tar.TypeLink:
			return fmt.Errorf("unpacking the image: %s is a link, which images built by turnstile-image never hold", hdr.Name)
		default:
			continue // devices and the like have no place in these images
		}
		if err == nil && os.Geteuid() == 0 {
			// Only root can give files their owners, and the image's users need them: the
			// nonroot user's home is 0700, and its own.
			err = os.Lchown(path, hdr.Uid, hdr.Gid)
		}
		if err == nil {
			err = os.Chmod(path, mode) // the umask must not decide what the image says
		}
		if err != nil {
			return fmt.Errorf("unpacking %s: %w", hdr.Name, err)
		}
	}
}

func writeFile(path string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
