package freeze

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Recovery is what Recover did on one host.
type Recovery struct {
	Thawed    []Record // thawed now
	NotFrozen []Record // recorded as frozen, but already thawed
	Failed    []Record // still frozen: fsfreeze -u failed
	Live      []Live   // agents still running, left alone
	Stderr    string   // the recovery agent's error output, for Failed
}

// Record is one mount point an earlier run recorded as frozen.
type Record struct {
	RunID string `json:"run_id"`
	Mount string `json:"mount"`
}

// Live is an agent that was still running, with its run.
type Live struct {
	PID   int    `json:"pid"`
	RunID string `json:"run_id"`
}

// Recover thaws, on the host behind r, what earlier agents recorded as
// frozen and left behind because they died or could not thaw, and nothing
// else: a filesystem frozen by anyone but orchestrate is never touched,
// and the records of agents still alive are only reported. It returns
// ErrThawUnconfirmed (with the Recovery) when something is still frozen.
func Recover(ctx context.Context, r Runner, user string, sudo SudoMode) (*Recovery, error) {
	cmd := shellCommand(recoverScript, "orchestrate-recover", nil, sudo, user)
	var out, stderr bytes.Buffer
	err := r.Exec(ctx, cmd, strings.NewReader(""), &out, &stderr)

	rec := &Recovery{Stderr: strings.TrimSpace(stderr.String())}
	done := false
	for _, line := range strings.Split(out.String(), "\n") {
		word, rest, _ := strings.Cut(line, " ")
		switch word {
		case "ERR":
			code, msg, _ := strings.Cut(rest, " ")
			return nil, &AgentError{Code: code, Msg: strings.TrimPrefix(msg, "- ")}
		case "LIVE":
			pid, run, _ := strings.Cut(rest, " ")
			n, _ := strconv.Atoi(pid)
			rec.Live = append(rec.Live, Live{PID: n, RunID: run})
		case "THAWED", "NOTFROZEN", "THAWFAIL":
			run, mount, _ := strings.Cut(rest, " ")
			r := Record{RunID: run, Mount: mount}
			switch word {
			case "THAWED":
				rec.Thawed = append(rec.Thawed, r)
			case "NOTFROZEN":
				rec.NotFrozen = append(rec.NotFrozen, r)
			default:
				rec.Failed = append(rec.Failed, r)
			}
		case "DONE":
			done = true
		}
	}

	switch {
	case !done && isSudoPasswordPrompt(rec.Stderr):
		return nil, fmt.Errorf("%w: %s", ErrSudoPassword, lastLine(rec.Stderr))
	case !done && err != nil:
		return nil, fmt.Errorf("freeze: recovery agent: %w: %s", err, lastLine(rec.Stderr))
	case !done:
		return nil, errors.New("freeze: recovery agent ended without a report")
	case len(rec.Failed) > 0:
		return rec, fmt.Errorf("%w: %d mount(s) still frozen: %s", ErrThawUnconfirmed,
			len(rec.Failed), lastLine(rec.Stderr))
	}
	return rec, nil
}
