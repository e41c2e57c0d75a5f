package harness

import (
	"slices"
	"testing"
)

// The e2e story checks that a paused rollout holds back every request behind the paused one,
// whichever order Kratix re-ran them in: the paused request first, in the middle, or last.
func TestAheadInEveryOrder(t *testing.T) {
	cases := []struct {
		name   string
		apps   map[string]string
		behind []string
		want   []string
	}{
		{"paused first: all four behind on v1", map[string]string{"chat": "v2", "shop": "v1", "blog": "v1", "mail": "v1", "wiki": "v1"},
			[]string{"shop", "blog", "mail", "wiki"}, nil},
		{"paused in the middle", map[string]string{"shop": "v2", "blog": "v2", "chat": "v2", "mail": "v1", "wiki": "v1"},
			[]string{"mail", "wiki"}, nil},
		{"paused last: nobody behind", map[string]string{"shop": "v2", "blog": "v2", "mail": "v2", "wiki": "v2", "chat": "v2"},
			nil, nil},
		{"one behind moved on", map[string]string{"chat": "v2", "mail": "v2", "wiki": "v1"},
			[]string{"mail", "wiki"}, []string{"mail=v2"}},
		{"one behind has no app yet", map[string]string{"chat": "v2"},
			[]string{"mail"}, []string{"mail="}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Ahead("v1", c.apps, c.behind); !slices.Equal(got, c.want) {
				t.Errorf("Ahead = %v, want %v", got, c.want)
			}
		})
	}
}
