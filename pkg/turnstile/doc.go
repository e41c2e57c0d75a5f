// Package turnstile lets resource requests of one Kratix Promise pass through an upgrade one at
// a time, or N at a time, in a fair and predictable order, using nothing but
// coordination.k8s.io/v1 Leases in one namespace (the slot namespace).
//
// # Objects
//
// For a Promise P the slot namespace holds:
//
//   - N slot Leases, turnstile-P-slot-0 … turnstile-P-slot-(N-1). A slot's holder is a resource
//     request (its group/kind/namespace/name, with its uid in an annotation), never a pod, so a
//     re-run of the same request's workflow re-enters its own slot.
//   - One ticket Lease per waiting request, turnstile-P-q-<hash>. Its acquireTime is the
//     request's first arrival, which survives the stage exiting and coming back (retryAfter).
//     A ticket that is not renewed for its leaseDurationSeconds is stale and loses its place
//     until it is renewed.
//   - The rollout Lease, turnstile-P, whose annotations hold rollout-wide state: the target
//     version, and the pause and abort marks that operators set.
//
// # Order
//
// Waiters are ordered by wave (the request's turnstile.kratix.io/wave label or annotation, lower
// first), then by arrival, then by name. The k-th waiter in that order may take the k-th free
// slot. Every request writes its ticket before it takes a slot, so arrival is on record for
// everyone; a race for the same slot is settled by compare-and-swap. Tickets for an aborted
// version keep no place, and a wave behind one waiting for approval waits too.
//
// # Reclaiming slots
//
// A slot is free when it has no holder, when its holder request no longer exists (reclaimed at
// once: waiters watch the holders), or when its holder stopped renewing for longer than
// leaseDurationSeconds. A slot whose holder's upgrade failed is never reclaimed by expiry: that is
// how a rollout pauses. A failed upgrade is one marked Failed by the await stage, or one whose
// Kratix configure workflow failed.
//
// # Guarantees and limits
//
// Every write is a compare-and-swap on resourceVersion, so two waiters can never both take one
// slot. Waiting is a watch, never a polling loop; timers fire only for lease expiry.
// Expiry compares renewTime+leaseDurationSeconds with the local clock, so it assumes clock skew
// between nodes well under the lease duration (minutes by default). Like client-go's
// leaderelection, this package does not fence: a holder whose slot was reclaimed after expiry is
// not stopped, only outranked. Arrival is judged by each waiter's own clock.
package turnstile
