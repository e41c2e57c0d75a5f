package harness

import (
	"context"
	"sort"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kratix-turnstile/turnstile/pkg/rollout"
)

// Upgrade is one request's upgrade to a version, as seen from its status.
type Upgrade struct {
	Name string
	// Began is when it was first seen holding a slot for the version; Done when it was first
	// seen Upgraded. Zero until then.
	Began, Done time.Time
	// Paused is how long it was seen Failed (the rollout paused on it); Reason the message then.
	Paused time.Duration
	Reason string
}

// Tracker samples the example Promise's requests during a rollout: who upgraded in which order,
// how long each took, and how many were ever upgrading at once.
type Tracker struct {
	Version string

	mu          sync.Mutex
	upgrades    map[string]*Upgrade
	maxInFlight int
	lastFailed  map[string]time.Time
}

// Track samples every 200 ms until ctx ends. A version of "" tracks every version at once: its
// MaxInFlight counts upgrades of any version, as the slots do.
func (h *Harness) Track(ctx context.Context, version string) *Tracker {
	t := &Tracker{Version: version, upgrades: map[string]*Upgrade{}, lastFailed: map[string]time.Time{}}
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			if list, err := h.Dynamic.Resource(WebApps).Namespace("").List(ctx, metav1.ListOptions{}); err == nil {
				t.observe(time.Now(), list.Items)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return t
}

func (t *Tracker) observe(now time.Time, items []unstructured.Unstructured) {
	t.mu.Lock()
	defer t.mu.Unlock()
	inFlight := 0
	for _, u := range items {
		st, _ := u.Object["status"].(map[string]any)
		s, ok := rollout.StatusFrom(st)
		if !ok || (t.Version != "" && s.Version != t.Version) {
			continue
		}
		up := t.upgrades[u.GetName()]
		if up == nil {
			up = &Upgrade{Name: u.GetName()}
			t.upgrades[u.GetName()] = up
		}
		switch s.Phase {
		case rollout.PhaseUpgrading, rollout.PhaseVerifying, rollout.PhaseFailed:
			inFlight++
			if up.Began.IsZero() {
				up.Began = now
			}
		case rollout.PhaseUpgraded:
			if up.Began.IsZero() {
				up.Began = now
			}
			if up.Done.IsZero() {
				up.Done = now
			}
		}
		if prev, failing := t.lastFailed[up.Name]; failing {
			up.Paused += now.Sub(prev)
			delete(t.lastFailed, up.Name)
		}
		if s.Phase == rollout.PhaseFailed {
			t.lastFailed[up.Name] = now
			up.Reason = s.Message
		}
	}
	t.maxInFlight = max(t.maxInFlight, inFlight)
}

// MaxInFlight is the most requests seen upgrading to the version at once.
func (t *Tracker) MaxInFlight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.maxInFlight
}

// Upgrades are the requests seen upgrading, in the order they finished (unfinished last).
func (t *Tracker) Upgrades() []Upgrade {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Upgrade, 0, len(t.upgrades))
	for _, u := range t.upgrades {
		if !u.Began.IsZero() {
			out = append(out, *u)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Done.IsZero() != b.Done.IsZero() {
			return !a.Done.IsZero()
		}
		if !a.Done.Equal(b.Done) {
			return a.Done.Before(b.Done)
		}
		return a.Began.Before(b.Began)
	})
	return out
}

// First is the request seen beginning its upgrade first, "" before any has.
func (t *Tracker) First() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	first := ""
	for name, u := range t.upgrades {
		if !u.Began.IsZero() && (first == "" || u.Began.Before(t.upgrades[first].Began)) {
			first = name
		}
	}
	return first
}

// Ahead lists the requests among names whose app is not on version: while the rollout is
// paused, the requests behind the one it stopped at must all still be on the old version,
// however many there are (none, when Kratix re-ran the paused one last).
func Ahead(version string, apps map[string]string, names []string) []string {
	var out []string
	for _, n := range names {
		if apps[n] != version {
			out = append(out, n+"="+apps[n])
		}
	}
	return out
}
