package discover

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// loadHost parses testdata/name, which is in the framing of Command.
func loadHost(t *testing.T, name string) *Host {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	h, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse(%s) = %v, want no error", name, err)
	}
	return h
}

// checkProblems compares problems field by field; want's Msg need only
// be a substring of the problem's.
func checkProblems(t *testing.T, what string, got, want []Problem) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s problems = %q, want %d like %q", what, got, len(want), want)
		return
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Mount != w.Mount || g.Device != w.Device || g.Volume != w.Volume || !strings.Contains(g.Msg, w.Msg) {
			t.Errorf("%s problem %d = %q, want like %q", what, i, g, w)
		}
	}
}

func checkStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func findPlanned(list []PlannedMount, target string) (PlannedMount, bool) {
	for _, m := range list {
		if m.Target == target {
			return m, true
		}
	}
	return PlannedMount{}, false
}
