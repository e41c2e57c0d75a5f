package turnstile

import (
	"context"
	"fmt"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"

	"github.com/kratix-turnstile/turnstile/pkg/window"
)

// windowSeparator joins windows in an annotation: no cron expression holds it.
const windowSeparator = "; "

// WindowsFrom reads the operator's windows from the rollout record's annotations.
func WindowsFrom(a map[string]string) (window.Calendar, error) {
	var c window.Calendar
	var err error
	if c.Allow, err = window.ParseAll(splitWindows(a[AnnotationAllowWindows])); err != nil {
		return window.Calendar{}, fmt.Errorf("%s: %w", AnnotationAllowWindows, err)
	}
	if c.Deny, err = window.ParseAll(splitWindows(a[AnnotationDenyWindows])); err != nil {
		return window.Calendar{}, fmt.Errorf("%s: %w", AnnotationDenyWindows, err)
	}
	if v := a[AnnotationNotBefore]; v != "" {
		if c.NotBefore, err = time.Parse(time.RFC3339, v); err != nil {
			return window.Calendar{}, fmt.Errorf("%s %q: want an RFC 3339 time", AnnotationNotBefore, v)
		}
	}
	return c, nil
}

func splitWindows(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	return strings.Split(s, windowSeparator)
}

// Windows is what SetWindows writes: the kinds whose Set flag is on are replaced (an empty
// value removes them), the others kept.
type Windows struct {
	Allow, Deny               []string
	NotBefore                 time.Time
	SetAllow, SetDeny, SetNot bool
}

// SetWindows replaces the operator's windows of the kinds given on the rollout record. Each
// window is checked first: a bad one writes nothing.
func (t *Turnstile) SetWindows(ctx context.Context, w Windows, by string) error {
	for _, specs := range [][]string{w.Allow, w.Deny} {
		if _, err := window.ParseAll(specs); err != nil {
			return err
		}
		for _, s := range specs {
			if strings.Contains(s, ";") {
				return fmt.Errorf("window %q: a window holds no \";\"", s)
			}
		}
	}
	_, err := t.updateRollout(ctx, func(l *coordinationv1.Lease) error {
		set := func(on bool, key, value string) {
			switch {
			case !on:
			case value == "":
				delete(l.Annotations, key)
			default:
				l.Annotations[key] = value
			}
		}
		set(w.SetAllow, AnnotationAllowWindows, strings.Join(w.Allow, windowSeparator))
		set(w.SetDeny, AnnotationDenyWindows, strings.Join(w.Deny, windowSeparator))
		notBefore := ""
		if !w.NotBefore.IsZero() {
			notBefore = w.NotBefore.UTC().Format(time.RFC3339)
		}
		set(w.SetNot, AnnotationNotBefore, notBefore)
		t.changedBy(l, by)
		return nil
	})
	return err
}
