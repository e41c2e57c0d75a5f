package stage

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kratix-turnstile/turnstile/pkg/gates"
	"github.com/kratix-turnstile/turnstile/pkg/health"
	"github.com/kratix-turnstile/turnstile/pkg/program"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

// judgeGates applies the ratio gates to this request's wave, counting this request as phase,
// and pauses the rollout when one trips. A gate that cannot be judged is reported, not fatal.
func (a *awaiting) judgeGates(ctx context.Context, phase string) {
	if !a.flags.Gates {
		return
	}
	list, err := a.dynamic.Resource(a.request.GroupVersionResource).List(ctx, metav1.ListOptions{LabelSelector: a.flags.GateSelector})
	if err != nil {
		a.out.printf("could not judge the rollout's gates: %s", program.OneLine(err.Error()))
		return
	}
	var wave, all []gates.Member
	var waveKeys []string // namespace/name of each of wave
	now := a.clock.Now()
	for _, u := range list.Items {
		m := a.member(u, now)
		if u.GetUID() == a.request.UID {
			// This request's health is await's own verdict.
			m.Upgraded, m.Failed, m.Unhealthy = true, phase == rollout.PhaseFailed, phase == rollout.PhaseFailed
		}
		all = append(all, m)
		w, ok, err := turnstile.WaveOf(u.GetLabels(), u.GetAnnotations())
		if !ok || err != nil {
			w = a.flags.DefaultWave
		}
		if w == a.request.Wave {
			wave = append(wave, m)
			waveKeys = append(waveKeys, u.GetNamespace()+"/"+u.GetName())
		}
	}
	g := gates.Ratios{MaxUnhealthy: a.flags.MaxUnhealthy, MaxFailed: a.flags.MaxFailed, MinSample: a.flags.MinSample}
	v := g.Judge(wave, all)
	if !v.Tripped {
		return
	}
	// Only a trip needs the slots: requests unhealthy before their upgrade say so on the slot
	// they hold, and leaving them out can only untrip a gate. Without the slots the gates judge
	// every request as the upgrade's: they fail safe, pausing more.
	if view, err := a.turn.Inspect(ctx); err != nil {
		a.out.printf("judging the rollout's gates without the slots' baselines: %s", program.OneLine(err.Error()))
	} else {
		before := map[string]bool{}
		for _, s := range view.Slots {
			if s.Held() && s.Baseline != "" {
				before[s.Request] = true
			}
		}
		for i := range wave {
			wave[i].Preexisting = wave[i].Upgraded && before[waveKeys[i]]
		}
		if v = g.Judge(wave, all); !v.Tripped {
			return
		}
		if view.Rollout.Paused {
			return // already paused: the first gate to trip gave the reason
		}
	}
	reason := gates.PauseReason(a.request.Wave, v)
	if err := a.turn.Pause(ctx, reason, "turnstile-await ("+a.request.Key()+")"); err != nil {
		a.out.printf("gate tripped but could not pause the rollout: %s", program.OneLine(err.Error()))
		return
	}
	a.out.printf("paused the rollout: %s", reason)
	a.events.emit(ctx, corev1.EventTypeWarning, "RolloutPaused", reason)
}

// member is a request as the gates see it, from its status. Its health is judged on its own
// records for this Promise, never on Kratix's aggregate state, which counts other Promises'
// records and stale ones too: a request that began the target on the records of its attempt at
// it, one that has not (the baseline the gates compare with) on its own records of any time.
func (a *awaiting) member(u unstructured.Unstructured, now time.Time) gates.Member {
	status, _ := u.Object["status"].(map[string]any)
	st, _ := rollout.StatusFrom(status)
	hs, present := health.StatusOf(status)
	began := st.Began(a.target)
	f := health.Freshness{Promise: a.env.Promise, RequestUID: string(u.GetUID())}
	if began {
		f.Since, f.Version = st.Since, a.target
	}
	// A failed upgrade counts as unhealthy whatever its records say now: its status's since is
	// the verdict's time, which the records that failed it predate.
	failed := began && st.Phase == rollout.PhaseFailed
	return gates.Member{Unhealthy: failed || health.Observe(hs, present, f, now).Bad, Upgraded: began, Failed: failed}
}
