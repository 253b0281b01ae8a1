package e2e

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// A scenario is one row of the reliability matrix: one injected fault at
// one step, the final state it must end in, and the code that proves it.
// docs/reliability.md is rendered from the registered scenarios, so the
// document lists exactly what TestFaultMatrix runs.
type scenario struct {
	Name   string // subtest name, CamelCase, unique
	Fault  string // what is injected, e.g. "connection cut"
	Step   string // when: connect, prepare, freeze, api-call, after-api, thaw, …
	Expect string // the final state asserted: thawed by when, status, exit code
	Run    func(t *testing.T)
}

var scenarios []scenario

// register adds scenarios to the matrix; call it from an init function.
func register(s ...scenario) { scenarios = append(scenarios, s...) }

// TestFaultMatrix runs every registered scenario, one at a time: they share
// the world's sshd and filesystems.
func TestFaultMatrix(t *testing.T) {
	begin(t)
	for _, s := range sortedScenarios() {
		t.Run(s.Name, func(t *testing.T) {
			begin(t)
			s.Run(t)
		})
	}
}

var updateDoc = flag.Bool("update", false, "rewrite docs/reliability.md from the scenarios")

const reliabilityDoc = "../../docs/reliability.md"

// TestReliabilityDocMatchesScenarios keeps docs/reliability.md in step with
// the matrix; `go test ./test/e2e -run ReliabilityDoc -update` rewrites it.
// It needs no root.
func TestReliabilityDocMatchesScenarios(t *testing.T) {
	want := renderReliabilityDoc()
	if *updateDoc {
		if err := os.WriteFile(reliabilityDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(reliabilityDoc)
	if err != nil {
		t.Fatalf("%v (generate it with: go test ./test/e2e -run ReliabilityDoc -update)", err)
	}
	if string(got) != want {
		t.Errorf("%s is out of date with the scenarios in test/e2e; "+
			"regenerate it with: go test ./test/e2e -run ReliabilityDoc -update",
			filepath.Clean(reliabilityDoc))
	}
}

func sortedScenarios() []scenario {
	s := append([]scenario(nil), scenarios...)
	order := map[string]int{}
	for i, st := range []string{"connect", "prepare", "freeze", "api-call",
		"after-api", "thaw", "wait", "any"} {
		order[st] = i + 1
	}
	sort.SliceStable(s, func(i, j int) bool {
		if order[s[i].Step] != order[s[j].Step] {
			return order[s[i].Step] < order[s[j].Step]
		}
		return s[i].Name < s[j].Name
	})
	return s
}

func renderReliabilityDoc() string {
	var b strings.Builder
	b.WriteString("# Reliability matrix\n\n")
	b.WriteString("Generated from the scenarios in `test/e2e` by\n" +
		"`go test ./test/e2e -run ReliabilityDoc -update`; a test fails when this\n" +
		"file and the scenarios disagree. Each row is run by `TestFaultMatrix`\n" +
		"(as root, real sshd, real loop filesystems, real fsfreeze, the built\n" +
		"binary and the emulator) and asserts the final state in its row: every\n" +
		"test filesystem takes writes again, the report's status and step, the\n" +
		"other hosts' outcome and the exit code.\n\n")
	fmt.Fprintf(&b, "%d scenarios.\n\n", len(scenarios))
	b.WriteString("| fault | step | expected final state | test |\n")
	b.WriteString("|---|---|---|---|\n")
	for _, s := range sortedScenarios() {
		fmt.Fprintf(&b, "| %s | %s | %s | `TestFaultMatrix/%s` |\n",
			cell(s.Fault), s.Step, cell(s.Expect), s.Name)
	}
	return b.String()
}

func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}
