package image

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// compressedSize is what pulling the image downloads: its compressed layers.
func compressedSize(img v1.Image) (int64, error) {
	layers, err := img.Layers()
	if err != nil {
		return 0, err
	}
	var total int64
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// BenchmarkImageSize prints each image's compressed size for linux/amd64 beside Kratix's own
// pipeline adapter (work-creator), gzipped, from the control-plane cache. Target: stage <= 10 MB.
func BenchmarkImageSize(b *testing.B) {
	specs, err := LoadSpecs("../../images")
	if err != nil {
		b.Fatal(err)
	}
	builder := testBuilder()
	builder.Platforms = []v1.Platform{amd64}
	for b.Loop() {
		for _, s := range specs {
			idx, err := builder.Build(context.Background(), s)
			if err != nil {
				b.Fatal(err)
			}
			img, err := Built{Name: s.Name, Index: idx}.ForPlatform(amd64)
			if err != nil {
				b.Fatal(err)
			}
			size, err := compressedSize(img)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(size)/1e6, s.Name+"-MB")
			fmt.Printf("image %s (linux/amd64): %.2f MB compressed\n", s.Name, float64(size)/1e6)
		}
		adapter := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "pipeline-adapter")
		data, err := os.ReadFile(adapter)
		if err != nil {
			fmt.Printf("Kratix pipeline-adapter: not built (%v); run make control-plane\n", err)
			continue
		}
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		if _, err := zw.Write(data); err != nil {
			b.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(gz.Len())/1e6, "kratix-pipeline-adapter-MB")
		fmt.Printf("Kratix pipeline-adapter binary (work-creator, stripped): %.2f MB gzipped, %.2f MB on disk\n", float64(gz.Len())/1e6, float64(len(data))/1e6)
	}
}
