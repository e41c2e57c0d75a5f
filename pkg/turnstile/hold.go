package turnstile

import (
	"context"
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// The platform-wide hold ("stop the line"): one Lease in the slot namespace that every
// Promise's acquire there watches with its own Leases, and honours as it honours a pause.
const (
	HoldName = "turnstile-platform-hold"
	RoleHold = "hold"
	// AllPromises is the promise label of Leases about every Promise. No Promise can have it:
	// Promise names are lower-case.
	AllPromises = "ALL"
)

// Hold is the platform-wide hold: while Active, no Promise's request takes a slot; upgrades
// under way finish.
type Hold struct {
	Active    bool
	Reason    string
	ChangedBy string
	// rv is the hold Lease's version as read: a waiter far back in the queue looks again when
	// it changes.
	rv string
}

func holdFrom(l *coordinationv1.Lease) Hold {
	a := l.Annotations
	return Hold{Active: a[AnnotationPaused] == "true", Reason: a[AnnotationPauseReason], ChangedBy: a[AnnotationBy], rv: l.ResourceVersion}
}

// Selector selects a Promise's Leases and the platform's hold.
func Selector(promise string) labels.Selector {
	r, err := labels.NewRequirement(LabelPromise, selection.In, []string{promise, AllPromises})
	if err != nil {
		// Only an invalid Promise name gets here, which New refuses.
		return nothing
	}
	return labels.NewSelector().Add(*r)
}

// nothing selects no Lease, on the apiserver too: labels.Nothing() would be sent as the empty
// selector, which selects them all.
var nothing = func() labels.Selector {
	has, _ := labels.NewRequirement(LabelManagedBy, selection.Exists, nil)
	lacks, _ := labels.NewRequirement(LabelManagedBy, selection.DoesNotExist, nil)
	return labels.NewSelector().Add(*has, *lacks)
}()

// Platform is a Turnstile for the slot namespace's platform-wide records only: the hold.
func Platform(cfg Config) (*Turnstile, error) {
	cfg.Promise = "platform"
	t, err := New(cfg)
	if err != nil {
		return nil, err
	}
	t.cfg.Promise = AllPromises
	return t, nil
}

func (t *Turnstile) updateHold(ctx context.Context, change func(*coordinationv1.Lease) error) error {
	lbl := map[string]string{LabelManagedBy: ManagedBy, LabelPromise: AllPromises, LabelRole: RoleHold}
	// The hold is nobody's: no Promise owns it, and it outlives them all.
	_, err := t.updateRecord(ctx, HoldName, lbl, func(*coordinationv1.Lease) {}, "the platform-wide hold in "+t.cfg.Namespace, change)
	return err
}

// HoldAll stops every Promise's rollout in the slot namespace granting slots, until ReleaseHold.
func (t *Turnstile) HoldAll(ctx context.Context, reason, by string) error {
	return t.updateHold(ctx, t.pausing(reason, by))
}

// ReleaseHold lifts the platform-wide hold. It is an error to lift a hold that is not there.
func (t *Turnstile) ReleaseHold(ctx context.Context, by string) error {
	return t.updateHold(ctx, t.resuming(fmt.Errorf("no platform-wide hold in %s to lift", t.cfg.Namespace), by))
}

// ReadHold reads the platform-wide hold.
func (t *Turnstile) ReadHold(ctx context.Context) (Hold, error) {
	l, err := t.leases.Get(ctx, HoldName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err) && !isNamespaceNotFound(err):
		return Hold{}, nil
	case err != nil:
		return Hold{}, t.writeError("reading the platform-wide hold", err)
	}
	return holdFrom(l), nil
}
