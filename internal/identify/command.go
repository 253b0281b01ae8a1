package identify

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/orchestrate-dev/orchestrate/internal/freeze"
)

//go:embed identify.sh
var script string

// scriptName is $0 of the probe on the host, as ps shows it.
const scriptName = "orchestrate-identify"

// command returns the command line that runs the probe for o, which must be
// normalised. It never uses sudo: nothing the probe reads needs root.
// Every value is quoted, so the remote login shell must be POSIX
// compatible (sh, bash, dash, zsh, ksh), as for the freeze agent.
func command(o Options) string {
	return freeze.ScriptCommand(script, scriptName, []string{o.Endpoint,
		strings.Join(o.Sources, " "), strconv.Itoa(stepSeconds(o.Timeout)),
		o.testOnlyDMIPath}, freeze.SudoNever, "")
}

// stepSeconds is the time each HTTP request may take: 2 s, or the whole
// timeout when shorter, in whole seconds and at least one, because
// busybox-era tools and some locales take only integers.
func stepSeconds(whole time.Duration) int {
	d := min(stepTimeout, whole)
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// answer is what the probe printed: an identity, or the reason codes of
// every source that gave none.
type answer struct {
	id   *Identity
	noID []string
}

// parseAnswer reads the probe's output. Anything before the last ID or
// NOID line (a login shell's banner, say) is ignored; a REGION line after
// an ID line is used when it is a Region name and dropped otherwise.
// An ID line whose source or ID is malformed is an error, never an ID.
func parseAnswer(out []byte) (answer, error) {
	lines := strings.Split(string(out), "\n")
	last := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "ID ") || l == "NOID" || strings.HasPrefix(l, "NOID ") {
			last = i
		}
	}
	if last < 0 {
		return answer{}, fmt.Errorf("identify: host printed no answer (output %q)",
			excerpt(string(out)))
	}

	f := strings.Fields(lines[last])
	if f[0] == "NOID" {
		// A metadata service that answers, but not with an instance ID,
		// is not "unavailable": something is wrong, so the check fails
		// even under --verify-identity auto.
		for _, why := range f[1:] {
			if why == "imds:bad-id" {
				return answer{}, fmt.Errorf("identify: the metadata service answered " +
					"something that is not an instance id")
			}
		}
		return answer{noID: f[1:]}, nil
	}
	if len(f) != 3 || (f[1] != SourceDMI && f[1] != SourceIMDS) {
		return answer{}, fmt.Errorf("identify: host printed a malformed answer %q",
			excerpt(lines[last]))
	}
	if !idPattern.MatchString(f[2]) {
		return answer{}, fmt.Errorf("identify: host reported %q from %s, not an instance id",
			excerpt(f[2]), f[1])
	}
	id := &Identity{InstanceID: f[2], Source: f[1]}

	for _, l := range lines[last+1:] {
		r, ok := strings.CutPrefix(l, "REGION ")
		if ok && id.Source == SourceIMDS && regionPattern.MatchString(r) {
			id.Region = r
		}
	}
	return answer{id: id}, nil
}

// excerpt shortens s for an error message.
func excerpt(s string) string {
	const n = 80
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
