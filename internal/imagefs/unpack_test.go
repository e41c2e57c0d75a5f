package imagefs

import (
	"archive/tar"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestUnpackRefusesLinks(t *testing.T) {
	tests := []struct {
		name string
		hdr  tar.Header
		want string
	}{
		{"a link", tar.Header{Name: "etc", Typeflag: tar.TypeSymlink, Linkname: "/etc"}, "is a link"},
		{"a hard link", tar.Header{Name: "x", Typeflag: tar.TypeLink, Linkname: "y"}, "is a link"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			hdr := tt.hdr
			if err := tw.WriteHeader(&hdr); err != nil {
				t.Fatal(err)
			}
			if err := tw.Close(); err != nil {
				t.Fatal(err)
			}
			data := buf.Bytes()
			l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
			if err != nil {
				t.Fatal(err)
			}
			img, err := mutate.AppendLayers(empty.Image, l)
			if err != nil {
				t.Fatal(err)
			}
			if err := Unpack(img, t.TempDir()); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Unpack() error = %v, want %q", err, tt.want)
			}
		})
	}
}
