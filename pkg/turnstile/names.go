package turnstile

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Labels and annotations on Turnstile's Leases.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "turnstile"
	LabelPromise   = "turnstile.kratix.io/promise"
	LabelRole      = "turnstile.kratix.io/role"

	RoleSlot    = "slot"
	RoleTicket  = "ticket"
	RoleRollout = "rollout"

	// LabelOrder is, on a ticket, its place in the order the queue is served (wave, then
	// arrival) as one whole number, so that a waiter near the front can select just the tickets
	// ahead of it (a label selector compares whole numbers with < and >).
	LabelOrder = "turnstile.kratix.io/order"

	AnnotationUID     = "turnstile.kratix.io/holder-uid"
	AnnotationRequest = "turnstile.kratix.io/request"
	AnnotationVersion = "turnstile.kratix.io/version"
	AnnotationPhase   = "turnstile.kratix.io/phase"
	// AnnotationFailedAt is when the slot was marked Failed (RFC 3339 with fractions).
	AnnotationFailedAt = "turnstile.kratix.io/failed-at"
	AnnotationMessage  = "turnstile.kratix.io/message"
	AnnotationWave     = "turnstile.kratix.io/wave"
	// AnnotationBaseline is, on a held slot, the reading that showed the request unhealthy before
	// this attempt began, if it was: a failure it brings along is not the upgrade's.
	AnnotationBaseline = "turnstile.kratix.io/baseline"
	// On a slot, its last release: the wave and version of the request that released it, and
	// when (RFC 3339 with fractions), which a soak between waves is measured from.
	AnnotationReleasedWave    = "turnstile.kratix.io/released-wave"
	AnnotationReleasedVersion = "turnstile.kratix.io/released-version"
	AnnotationReleasedAt      = "turnstile.kratix.io/released-at"

	// On the rollout Lease.
	AnnotationTarget      = "turnstile.kratix.io/target-version"
	AnnotationStarted     = "turnstile.kratix.io/started"
	AnnotationPaused      = "turnstile.kratix.io/paused"
	AnnotationPauseReason = "turnstile.kratix.io/pause-reason"
	AnnotationAborted     = "turnstile.kratix.io/aborted-version"
	AnnotationPrevious    = "turnstile.kratix.io/previous-version"
	// AnnotationApprovalWaves lists the waves (comma-separated) that wait for an operator's
	// approval before their first request goes; AnnotationApproved those approved so far.
	AnnotationApprovalWaves = "turnstile.kratix.io/approval-waves"
	AnnotationApproved      = "turnstile.kratix.io/approved-waves"
	// AnnotationSlots is how many requests of the rollout may upgrade at once, resolved when it
	// began (a share of the fleet becomes a number then); AnnotationWaveSlots caps waves
	// further, as "WAVE=N" pairs separated by commas.
	AnnotationSlots     = "turnstile.kratix.io/slots"
	AnnotationWaveSlots = "turnstile.kratix.io/wave-slots"
	// The operator's windows (kubectl turnstile window): allow and deny windows, each
	// "CRON for DURATION in ZONE", separated by "; ", and a scheduled start (RFC 3339).
	AnnotationAllowWindows = "turnstile.kratix.io/allow-windows"
	AnnotationDenyWindows  = "turnstile.kratix.io/deny-windows"
	AnnotationNotBefore    = "turnstile.kratix.io/not-before"
	// AnnotationBy names who last paused, resumed, aborted, approved or skipped, and when.
	AnnotationBy = "turnstile.kratix.io/changed-by"
)

// WaveKey is the label or annotation on a resource request that orders it before (lower) or
// after (higher) other requests, whatever their arrival.
const WaveKey = "turnstile.kratix.io/wave"

// WaveOf reads a request's wave from its WaveKey label, or else annotation; ok is false when it
// has neither, and err says what is wrong with a value that is not a whole number, 0 or more.
func WaveOf(labels, annotations map[string]string) (wave int, ok bool, err error) {
	v, ok := labels[WaveKey]
	if !ok {
		v, ok = annotations[WaveKey]
	}
	if !ok {
		return 0, false, nil
	}
	wave, err = strconv.Atoi(v)
	if err != nil || wave < 0 {
		return 0, true, fmt.Errorf("%s=%q: want a whole number, 0 or more (lower waves go first)", WaveKey, v)
	}
	return wave, true, nil
}

// Phases of a slot's holder, kept in AnnotationPhase.
const (
	PhaseUpgrading = "Upgrading"
	PhaseFailed    = "Failed"
)

// Request is the resource request that waits for, holds and releases a slot.
type Request struct {
	// GroupVersionResource addresses the request's kind: Group, Version and the CRD's plural.
	schema.GroupVersionResource
	Kind      string
	Namespace string
	Name      string
	UID       types.UID
	// Wave orders requests before arrival does: lower waves go first.
	Wave int
}

// Identity is the holder identity written to Leases: group/kind/namespace/name. It is the same
// for every run of the request's workflow.
func (r Request) Identity() string {
	return strings.Join([]string{r.Group, r.Kind, r.Namespace, r.Name}, "/")
}

// Key is namespace/name, the way operators name a request.
func (r Request) Key() string { return r.Namespace + "/" + r.Name }

func (r Request) String() string { return r.Key() }

// SlotName is the name of a Promise's slot Lease i.
func SlotName(promise string, i int) string { return fmt.Sprintf("turnstile-%s-slot-%d", promise, i) }

// TicketName is the name of the ticket Lease that queues a request.
func TicketName(promise string, r Request) string {
	sum := sha256.Sum256([]byte(r.Identity()))
	return fmt.Sprintf("turnstile-%s-q-%s", promise, hex.EncodeToString(sum[:])[:12])
}

// RolloutName is the name of a Promise's rollout Lease.
func RolloutName(promise string) string { return "turnstile-" + promise }

// Ordinal is "1st", "2nd", "3rd", "4th", …, for queue positions in messages.
func Ordinal(n int) string {
	suffix := "th"
	switch {
	case n%100 >= 11 && n%100 <= 13:
	case n%10 == 1:
		suffix = "st"
	case n%10 == 2:
		suffix = "nd"
	case n%10 == 3:
		suffix = "rd"
	}
	return fmt.Sprintf("%d%s", n, suffix)
}

// orderedWaves bounds the waves a ticket's order label covers: wave·10¹⁶ plus the arrival in
// microseconds since 1970 must fit a label selector's int64. A ticket of a later wave has no
// label; every waiter near the front selects the tickets without one too.
const orderedWaves = 900

// orderKey is the order label of a ticket of wave that arrived at arrival; ok is false for one
// without (a wave beyond orderedWaves). Tickets served earlier never have a larger key: ties
// (the same microsecond) are broken by holder, which a waiter allows for by selecting its own
// key too.
func orderKey(wave int, arrival time.Time) (int64, bool) {
	if wave < 0 || wave >= orderedWaves || arrival.UnixMicro() < 0 {
		return 0, false
	}
	return int64(wave)*1e16 + arrival.UnixMicro(), true
}
