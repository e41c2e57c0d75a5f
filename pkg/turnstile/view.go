package turnstile

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"

	"github.com/kratix-turnstile/turnstile/pkg/rollout"
	"github.com/kratix-turnstile/turnstile/pkg/window"
)

// Slot is what one slot Lease says.
type Slot struct {
	Index int
	Name  string
	// Lease is nil until the slot is first taken.
	Lease *coordinationv1.Lease
	// Holder is the holder request's Identity; empty when the slot is free.
	Holder      string
	HolderUID   types.UID
	Request     string
	Phase       string
	Message     string
	Version     string
	Wave        int
	AcquireTime time.Time
	RenewTime   time.Time
	Duration    time.Duration
	// Released is the slot's last release, kept while later holders come and go.
	Released Released
	// FailedAt is when the slot was marked Failed, if it was.
	FailedAt time.Time
	// Baseline says the holder was unhealthy before this attempt began, and how; "" if not.
	Baseline string
}

// Released is a slot's last release: by a request of which wave, upgrading to which version,
// and when.
type Released struct {
	Wave    int
	Version string
	At      time.Time
}

// Held reports whether a request holds the slot.
func (s Slot) Held() bool { return s.Holder != "" }

// holder is the request holding the slot, as far as the Lease tells: its identity and uid.
func (s Slot) holder() Request {
	r := Request{UID: s.HolderUID}
	if parts := strings.SplitN(s.Holder, "/", 4); len(parts) == 4 {
		r.Group, r.Kind, r.Namespace, r.Name = parts[0], parts[1], parts[2], parts[3]
	}
	return r
}

// Expired reports whether the holder stopped renewing for longer than the lease duration.
func (s Slot) Expired(now time.Time) bool {
	return s.Held() && !s.RenewTime.Add(s.Duration).After(now)
}

// Ticket is what one ticket Lease says: a request waiting in the queue.
type Ticket struct {
	Name      string
	Lease     *coordinationv1.Lease
	Holder    string
	UID       types.UID
	Request   string
	Version   string
	Wave      int
	Arrival   time.Time
	RenewTime time.Time
	Duration  time.Duration
}

// Live reports whether the ticket has been renewed within its lease duration.
func (t Ticket) Live(now time.Time) bool { return t.RenewTime.Add(t.Duration).After(now) }

// Rollout is the rollout-wide state kept on the rollout Lease.
type Rollout struct {
	Lease          *coordinationv1.Lease
	Target         string
	Previous       string
	Started        time.Time
	Paused         bool
	PauseReason    string
	AbortedVersion string
	ApprovalWaves  []int
	Approved       []int
	ChangedBy      string
	// Slots is how many may upgrade at once, as recorded when the rollout began (0 in records
	// older than that: the stage's own count applies); WaveSlots caps some waves lower.
	Slots     int
	WaveSlots map[int]int
	// TermsErr says why the recorded slots cannot be read; it holds the rollout, as a window
	// that cannot be read does.
	TermsErr error
	// Windows are the operator's windows; WindowsErr says why they could not be read, which
	// holds the rollout (fail closed) until they are set again.
	Windows    window.Calendar
	WindowsErr error
}

// resourceVersion is the rollout Lease's, or "" when there is none yet.
func (r Rollout) resourceVersion() string {
	if r.Lease == nil {
		return ""
	}
	return r.Lease.ResourceVersion
}

// predates reports whether this record is older than other, the one read when the view showed
// version stale: by resourceVersion, which the apiserver's etcd storage makes comparable; where
// it is not, as long as the view still shows version stale.
func (r Rollout) predates(other Rollout, stale string) bool {
	if other.Lease == nil {
		return false
	}
	if r.Lease == nil {
		return true
	}
	if c, err := resourceversion.CompareResourceVersion(r.Lease.ResourceVersion, other.Lease.ResourceVersion); err == nil {
		return c < 0
	}
	return r.resourceVersion() == stale
}

// NeedsApproval is the lowest wave, at or below this one, that waits for an operator's
// approval; ok is false when none does. A wave behind an unapproved one waits too, even with
// slots free.
func (r Rollout) NeedsApproval(wave int) (blocking int, ok bool) {
	for _, w := range slices.Sorted(slices.Values(r.ApprovalWaves)) {
		if w <= wave && !slices.Contains(r.Approved, w) {
			return w, true
		}
	}
	return 0, false
}

// View is the state of one Promise's turnstile, read from its Leases.
type View struct {
	// Slots has one entry per slot index up to the larger of N and the highest existing slot.
	Slots   []Slot
	Tickets []Ticket
	Rollout Rollout
	// Hold is the platform-wide hold, which stops every Promise's rollout in the namespace.
	Hold Hold
}

// NewView reads a Promise's Leases, with an entry for each of the first n slots, or as many as
// the rollout record names if more. Slots beyond those that exist are kept (so their holders
// are seen) but are never granted.
func NewView(promise string, n int, leases []*coordinationv1.Lease) View {
	v := View{}
	slots := map[int]*coordinationv1.Lease{}
	maxIndex := -1
	slotPrefix := "turnstile-" + promise + "-slot-"
	for _, l := range leases {
		switch l.Labels[LabelRole] {
		case RoleSlot:
			i, err := strconv.Atoi(strings.TrimPrefix(l.Name, slotPrefix))
			if err != nil || !strings.HasPrefix(l.Name, slotPrefix) {
				continue
			}
			slots[i] = l
			maxIndex = max(maxIndex, i)
		case RoleTicket:
			v.Tickets = append(v.Tickets, ticketFrom(l))
		case RoleRollout:
			if l.Name == RolloutName(promise) {
				v.Rollout = rolloutFrom(l)
			}
		case RoleHold:
			if l.Name == HoldName {
				v.Hold = holdFrom(l)
			}
		}
	}
	for i := range max(n, v.Rollout.Slots, maxIndex+1) {
		v.Slots = append(v.Slots, slotFrom(promise, i, slots[i]))
	}
	return v
}

// cover makes sure the view has an entry for each of the first n slots: those never written
// are free.
func (v *View) cover(promise string, n int) {
	for i := len(v.Slots); i < n; i++ {
		v.Slots = append(v.Slots, slotFrom(promise, i, nil))
	}
}

func slotFrom(promise string, i int, l *coordinationv1.Lease) Slot {
	s := Slot{Index: i, Name: SlotName(promise, i), Lease: l}
	if l == nil {
		return s
	}
	a := l.Annotations
	if at, err := time.Parse(time.RFC3339Nano, a[AnnotationReleasedAt]); err == nil {
		s.Released.At, s.Released.Version = at, a[AnnotationReleasedVersion]
		s.Released.Wave, _ = strconv.Atoi(a[AnnotationReleasedWave])
	}
	s.Holder = deref(l.Spec.HolderIdentity)
	if s.Holder == "" {
		return s
	}
	s.HolderUID = types.UID(a[AnnotationUID])
	s.Request, s.Phase, s.Message, s.Version = a[AnnotationRequest], a[AnnotationPhase], a[AnnotationMessage], a[AnnotationVersion]
	s.FailedAt, _ = time.Parse(time.RFC3339Nano, a[AnnotationFailedAt])
	s.Baseline = a[AnnotationBaseline]
	s.Wave, _ = strconv.Atoi(a[AnnotationWave])
	s.AcquireTime = microTime(l.Spec.AcquireTime)
	s.RenewTime = microTime(l.Spec.RenewTime)
	s.Duration = seconds(l.Spec.LeaseDurationSeconds)
	return s
}

func ticketFrom(l *coordinationv1.Lease) Ticket {
	a := l.Annotations
	wave, _ := strconv.Atoi(a[AnnotationWave])
	return Ticket{
		Name: l.Name, Lease: l, Holder: deref(l.Spec.HolderIdentity), UID: types.UID(a[AnnotationUID]),
		Request: a[AnnotationRequest], Version: a[AnnotationVersion], Wave: wave,
		Arrival: microTime(l.Spec.AcquireTime), RenewTime: microTime(l.Spec.RenewTime),
		Duration: seconds(l.Spec.LeaseDurationSeconds),
	}
}

func rolloutFrom(l *coordinationv1.Lease) Rollout {
	a := l.Annotations
	r := Rollout{Lease: l, Target: a[AnnotationTarget], Previous: a[AnnotationPrevious], Paused: a[AnnotationPaused] == "true",
		PauseReason: a[AnnotationPauseReason], AbortedVersion: a[AnnotationAborted],
		ApprovalWaves: ParseWaves(a[AnnotationApprovalWaves]), Approved: ParseWaves(a[AnnotationApproved]), ChangedBy: a[AnnotationBy]}
	r.Started, _ = time.Parse(time.RFC3339, a[AnnotationStarted])
	r.Slots, r.WaveSlots, r.TermsErr = termsFrom(a)
	r.Windows, r.WindowsErr = WindowsFrom(a)
	return r
}

// HeldBy is the slot a request holds (same identity and uid), if any.
func (v View) HeldBy(r Request) (Slot, bool) {
	for _, s := range v.Slots {
		if s.heldBy(r) {
			return s, true
		}
	}
	return Slot{}, false
}

// heldBy reports whether r (same identity and uid) holds the slot.
func (s Slot) heldBy(r Request) bool {
	return s.Held() && s.Holder == r.Identity() && s.HolderUID == r.UID
}

// TicketOf is the ticket Lease that queues a request, if any (whatever its uid).
func (v View) TicketOf(promise string, r Request) (Ticket, bool) {
	name := TicketName(promise, r)
	for _, t := range v.Tickets {
		if t.Name == name {
			return t, true
		}
	}
	return Ticket{}, false
}

// Queue is the live tickets of requests that hold no slot, in the order they will be served.
func (v View) Queue(now time.Time) []Ticket {
	holding := map[string]bool{}
	for _, s := range v.Slots {
		if s.Held() {
			holding[s.Holder+"#"+string(s.HolderUID)] = true
		}
	}
	var q []Ticket
	for _, t := range v.Tickets {
		if t.Live(now) && !holding[t.Holder+"#"+string(t.UID)] {
			q = append(q, t)
		}
	}
	sort.SliceStable(q, func(i, j int) bool { return ticketLess(q[i], q[j]) })
	return q
}

// Front is the tickets of the queue, other than req's, that stand between it and the next n
// free slots: the first n that may still be served, and any before them that will not (known
// gone, or of an aborted version), which stay followed so that they stay known.
func (v View) Front(now time.Time, req Request, n int, known map[types.UID]HolderStatus) []Ticket {
	var out []Ticket
	counted := 0
	for _, t := range v.Queue(now) {
		if counted == n {
			break
		}
		if t.UID == req.UID {
			continue
		}
		out = append(out, t)
		if st := known[t.UID]; !st.Gone && !st.Deleting && (v.Rollout.AbortedVersion == "" || t.Version != v.Rollout.AbortedVersion) {
			counted++
		}
	}
	return out
}

func ticketLess(a, b Ticket) bool {
	if a.Wave != b.Wave {
		return a.Wave < b.Wave
	}
	if !a.Arrival.Equal(b.Arrival) {
		return a.Arrival.Before(b.Arrival)
	}
	return a.Holder < b.Holder
}

// ParseWaves reads a comma-separated list of waves, skipping what is not a number.
func ParseWaves(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// FormatWaves writes waves as ParseWaves reads them.
func FormatWaves(waves []int) string {
	parts := make([]string, len(waves))
	for i, w := range waves {
		parts[i] = strconv.Itoa(w)
	}
	return strings.Join(parts, ",")
}

// termsFrom reads the recorded slots and caps; none recorded is 0 and nil.
func termsFrom(a map[string]string) (int, map[int]int, error) {
	caps, err := ParseWaveSlots(a[AnnotationWaveSlots])
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", AnnotationWaveSlots, err)
	}
	v, ok := a[AnnotationSlots]
	if !ok {
		return 0, caps, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > rollout.MaxSlots {
		return 0, nil, fmt.Errorf("%s %q: want 1 to %d", AnnotationSlots, v, rollout.MaxSlots)
	}
	return n, caps, nil
}

// ParseWaveSlots reads per-wave caps written "WAVE=N,WAVE=N" (as --wave-slots takes them):
// waves 0 to rollout.MaxWave, caps 1 to rollout.MaxSlots.
func ParseWaveSlots(s string) (map[int]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[int]int{}
	for _, f := range strings.Split(s, ",") {
		w, n, ok := strings.Cut(strings.TrimSpace(f), "=")
		wave, werr := strconv.Atoi(strings.TrimSpace(w))
		limit, nerr := strconv.Atoi(strings.TrimSpace(n))
		switch {
		case !ok || werr != nil || nerr != nil:
			return nil, fmt.Errorf("%q is not WAVE=SLOTS, e.g. 0=1", f)
		case wave < 0 || wave > rollout.MaxWave:
			return nil, fmt.Errorf("wave %d in %q: waves go from 0 to %d", wave, f, rollout.MaxWave)
		case limit < 1 || limit > rollout.MaxSlots:
			return nil, fmt.Errorf("%d slots for wave %d: a wave's cap goes from 1 to %d", limit, wave, rollout.MaxSlots)
		}
		if _, dup := out[wave]; dup {
			return nil, fmt.Errorf("wave %d is capped twice", wave)
		}
		out[wave] = limit
	}
	return out, nil
}

// FormatWaveSlots writes caps as ParseWaveSlots reads them, by wave.
func FormatWaveSlots(caps map[int]int) string {
	var parts []string
	for _, w := range slices.Sorted(maps.Keys(caps)) {
		parts = append(parts, fmt.Sprintf("%d=%d", w, caps[w]))
	}
	return strings.Join(parts, ",")
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func microTime(t *metav1.MicroTime) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time
}

func seconds(s *int32) time.Duration {
	if s == nil {
		return 0
	}
	return time.Duration(*s) * time.Second
}
