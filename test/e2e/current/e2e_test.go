// The end-to-end suite (package e2e) on current Kratix (workflow-control, PromiseRevisions, ResourceBindings): stages hand back with retryAfter.
package current

import (
	"testing"

	"github.com/kratix-turnstile/turnstile/internal/harness/kratix"
	"github.com/kratix-turnstile/turnstile/test/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

func TestEndToEnd(t *testing.T) { e2e.Run(t, kratix.Current) }
