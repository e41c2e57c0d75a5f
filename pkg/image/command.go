package image

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/pflag"

	"github.com/kratix-turnstile/turnstile/pkg/program"
)

// DefaultRepository is where Turnstile's images are published; it also names the images in the
// OCI layout and the kind archive.
const DefaultRepository = "ghcr.io/kratix-turnstile"

// SpecDirs are where the images are declared, from the module's root: Turnstile's own, then the
// example Promise's.
var SpecDirs = []string{"images", "examples/webapp/images"}

// SpecDirsUnder is SpecDirs under the module's root.
func SpecDirsUnder(root string) []string {
	out := make([]string, len(SpecDirs))
	for i, d := range SpecDirs {
		out[i] = filepath.Join(root, d)
	}
	return out
}

// Main runs the turnstile-image command and returns its exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return program.Exit(stderr, "turnstile-image", run(ctx, args, stdout, stderr))
}

// run builds the images, writing what it built on stdout and, while it builds, what it is at
// on progress.
func run(ctx context.Context, args []string, stdout, progress io.Writer) error {
	fs := pflag.NewFlagSet("turnstile-image", pflag.ContinueOnError)
	fs.SetOutput(stdout)
	var (
		specsDirs = fs.StringSlice("images", SpecDirs, "directories of image specs (*.yaml): Turnstile's, and the example Promise's")
		out       = fs.String("out", "out/images", "output directory: an OCI layout in oci/ and a docker archive per --archive-platform")
		version   = fs.String("version", "", "image tag and binary version, e.g. from git describe (required; never latest)")
		revision  = fs.String("revision", "", "source revision for the image labels")
		repo      = fs.String("repo", DefaultRepository, "repository the images are named under")
		platforms = fs.StringSlice("platforms", []string{"linux/amd64", "linux/arm64"}, "platforms of the multi-arch index")
		archive   = fs.StringSlice("archive-platform", []string{"linux/amd64"}, "platforms to write docker archives for (kind load image-archive)")
		push      = fs.String("push", "", "also push to this repository, e.g. localhost:5001/turnstile")
		caBundle  = fs.String("ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "CA certificates copied into the images")
		source    = fs.String("source", "https://github.com/kratix-turnstile/turnstile", "source repository URL for the labels")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	created, err := sourceDateEpoch(os.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		return err
	}
	b := &Builder{Version: *version, Revision: *revision, Created: created, CABundle: *caBundle, Source: *source}
	if b.ModuleDir, err = os.Getwd(); err != nil {
		return err
	}
	if b.Platforms, err = parsePlatforms(*platforms); err != nil {
		return err
	}
	archives, err := parsePlatforms(*archive)
	if err != nil {
		return err
	}
	if err := b.Validate(); err != nil {
		return err
	}
	specs, err := LoadSpecs(*specsDirs...)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", *out, err)
	}
	var built []Built
	for _, s := range specs {
		started := time.Now()
		ref, err := name.NewTag(fmt.Sprintf("%s/%s:%s", *repo, s.Name, *version))
		if err != nil {
			return fmt.Errorf("naming image %s: %w", s.Name, err)
		}
		var idx v1.ImageIndex
		if err := program.During(progress, "turnstile-image", fmt.Sprintf("building %s for %s", s.Name, strings.Join(*platforms, ", ")), func() (err error) {
			idx, err = b.Build(ctx, s)
			return err
		}); err != nil {
			return err
		}
		digest, err := idx.Digest()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "built %s@%s (%s) in %s\n", ref, digest, strings.Join(*platforms, ", "), time.Since(started).Round(time.Second))
		built = append(built, Built{Name: s.Name, Ref: ref, Index: idx})
	}
	layoutDir := filepath.Join(*out, "oci")
	if err := WriteLayout(layoutDir, built); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote OCI layout %s\n", layoutDir)
	for _, p := range archives {
		path := filepath.Join(*out, fmt.Sprintf("turnstile-%s-%s.tar", *version, p.Architecture))
		if err := WriteArchive(path, p, built); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s (kind load image-archive %s)\n", path, path)
	}
	if *push != "" {
		for _, b := range built {
			ref, err := name.NewTag(fmt.Sprintf("%s/%s:%s", strings.TrimSuffix(*push, "/"), b.Name, *version))
			if err != nil {
				return fmt.Errorf("naming the push target under %q: %w", *push, err)
			}
			if err := Push(ctx, ref, b.Index); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "pushed %s\n", ref)
		}
	}
	return nil
}

// sourceDateEpoch is the reproducible build time: $SOURCE_DATE_EPOCH, or the Unix epoch.
func sourceDateEpoch(v string) (time.Time, error) {
	if v == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	secs, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since the Unix epoch", v)
	}
	return time.Unix(secs, 0).UTC(), nil
}

func parsePlatforms(values []string) ([]v1.Platform, error) {
	var out []v1.Platform
	for _, v := range values {
		p, err := v1.ParsePlatform(v)
		if err != nil {
			return nil, fmt.Errorf("platform %q: %w", v, err)
		}
		out = append(out, *p)
	}
	return out, nil
}
