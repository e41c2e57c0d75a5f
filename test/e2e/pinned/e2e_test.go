// The end-to-end suite (package e2e) on the 2025 Kratix that kratix-go pins: stages block while they wait.
package pinned

import (
	"testing"

	"github.com/kratix-turnstile/turnstile/internal/harness/kratix"
	"github.com/kratix-turnstile/turnstile/test/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

func TestEndToEnd(t *testing.T) { e2e.Run(t, kratix.Pinned) }
