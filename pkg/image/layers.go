package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// NonRoot is the user and group the images run as (distroless's "nonroot").
const NonRoot = 65532

// file is one entry of a layer.
type file struct {
	path  string // absolute, as in the image
	mode  int64
	owner int    // uid and gid
	data  []byte // nil for a directory
}

// layer tars files in a fixed order with fixed owners and times, so the same files always give
// the same digest, and compresses it as hard as gzip goes: the images are pulled far more often
// than built.
func layer(files []file, mtime time.Time) (v1.Layer, error) {
	sort.Slice(files, func(i, j int) bool { return files[i].path < files[j].path })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.path[1:], Mode: f.mode, Uid: f.owner, Gid: f.owner, ModTime: mtime,
			Format: tar.FormatPAX, Typeflag: tar.TypeReg, Size: int64(len(f.data))}
		if f.data == nil {
			hdr.Typeflag, hdr.Name, hdr.Size = tar.TypeDir, f.path[1:]+"/", 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("writing %s into a layer: %w", f.path, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("writing %s into a layer: %w", f.path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("closing a layer: %w", err)
	}
	// Compress once, here: given compressed bytes, ggcr only decompresses (quickly) when it needs
	// the diff ID, where given a tar it would compress it again on every read.
	var compressed bytes.Buffer
	zw, err := gzip.NewWriterLevel(&compressed, gzip.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("compressing a layer: %w", err)
	}
	if _, err := zw.Write(buf.Bytes()); err != nil {
		return nil, fmt.Errorf("compressing a layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compressing a layer: %w", err)
	}
	data := compressed.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// baseFiles are what every image has besides its binary: the users and a CA bundle.
func baseFiles(caBundle []byte) []file {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", NonRoot, NonRoot)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", NonRoot)
	return []file{
		{path: "/etc", mode: 0o755},
		{path: "/etc/passwd", mode: 0o644, data: []byte(passwd)},
		{path: "/etc/group", mode: 0o644, data: []byte(group)},
		{path: "/etc/ssl", mode: 0o755},
		{path: "/etc/ssl/certs", mode: 0o755},
		{path: "/etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: caBundle},
		{path: "/home", mode: 0o755},
		{path: "/home/nonroot", mode: 0o700, owner: NonRoot},
		{path: "/tmp", mode: 0o1777},
	}
}

func binaryFiles(spec Spec, binary []byte) []file {
	return []file{
		{path: "/usr", mode: 0o755},
		{path: "/usr/local", mode: 0o755},
		{path: "/usr/local/bin", mode: 0o755},
		{path: spec.Entrypoint(), mode: 0o755, data: binary},
	}
}
