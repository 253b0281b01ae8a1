package run

import (
	"time"

	"github.com/orchestrate-dev/orchestrate/internal/discover"
)

// Schema names the version of the JSON report. It changes only when a
// field changes meaning or goes away; new fields may be added within it.
const Schema = "orchestrate.run/v1"

// Run and host statuses.
const (
	StatusSucceeded       = "succeeded"
	StatusFailed          = "failed"
	StatusThawUnconfirmed = "thaw_unconfirmed"
	StatusInterrupted     = "interrupted"
)

// Step names, in pipeline order.
const (
	StepPreflight = "preflight"
	StepConnect   = "connect"
	StepIdentify  = "identify"
	StepPrepare   = "prepare"
	StepFreeze    = "freeze"
	StepSnapshot  = "snapshot"
	StepThaw      = "thaw"
	StepWait      = "wait"
)

// Step outcomes.
const (
	StepOK      = "ok"
	StepFail    = "failed"
	StepSkipped = "skipped"
)

// Report is the result of a run: the document printed by --output json.
type Report struct {
	Schema     string        `json:"schema"`
	RunID      string        `json:"run_id"`
	StartedAt  time.Time     `json:"started_at"`
	FinishedAt time.Time     `json:"finished_at"`
	DurationMS float64       `json:"duration_ms"`
	Status     string        `json:"status"`
	Hosts      []*HostReport `json:"hosts"`
}

// HostReport is one host's outcome.
type HostReport struct {
	Destination string           `json:"destination"`
	Line        int              `json:"line"`
	Address     string           `json:"address"`
	InstanceID  string           `json:"instance_id"`
	Region      string           `json:"region"`
	Mounts      []string         `json:"mounts"`
	Volumes     []string         `json:"volumes"`
	Snapshots   []SnapshotReport `json:"snapshots"`
	// Consistency is "application" when every filesystem stayed frozen
	// until CreateSnapshots returned, "crash" when a thaw came first, and
	// "" when no snapshot was taken.
	Consistency string `json:"consistency"`
	// FreezeWindowMS is the time from the first freeze to the last thaw,
	// measured on the host; null when nothing was frozen.
	FreezeWindowMS *float64 `json:"freeze_window_ms"`
	Steps          []Step   `json:"steps"`
	Status         string   `json:"status"`
	FailedStep     string   `json:"failed_step,omitempty"`
	Error          string   `json:"error,omitempty"`
	// Warnings are things the operator should know that did not fail the
	// host, e.g. snapshots of the run found after an unknown outcome.
	Warnings []string `json:"warnings,omitempty"`
	// Plan is what discovery found and chose, for hosts whose hosts-file
	// line does not name both mounts= and volumes=.
	Plan *discover.Plan `json:"plan,omitempty"`
}

// SnapshotReport is one snapshot of a host.
type SnapshotReport struct {
	SnapshotID string `json:"snapshot_id"`
	VolumeID   string `json:"volume_id"`
	State      string `json:"state"`
	Progress   string `json:"progress"`
}

// Step is the outcome and duration of one pipeline step.
type Step struct {
	Name       string  `json:"name"`
	Status     string  `json:"status"`
	DurationMS float64 `json:"duration_ms"`
	Error      string  `json:"error,omitempty"`
}

// ExitCode maps the report to the documented exit codes: 3 when any thaw
// is unconfirmed (that comes first: a host may still be frozen), 130 when
// the run was interrupted, 1 when any host failed, 0 otherwise.
func (r *Report) ExitCode() int {
	switch r.Status {
	case StatusThawUnconfirmed:
		return 3
	case StatusInterrupted:
		return 130
	case StatusFailed:
		return 1
	}
	return 0
}

// finish sets the run's status from its hosts.
func (r *Report) finish(now time.Time, interrupted bool) {
	r.FinishedAt = now
	r.DurationMS = ms(now.Sub(r.StartedAt))
	r.Status = StatusSucceeded
	failed := false
	for _, h := range r.Hosts {
		switch h.Status {
		case StatusThawUnconfirmed:
			r.Status = StatusThawUnconfirmed
			return
		case StatusSucceeded:
		default:
			failed = true
		}
	}
	switch {
	case interrupted:
		r.Status = StatusInterrupted
	case failed:
		r.Status = StatusFailed
	}
}

// step records a step's outcome on the host.
func (h *HostReport) step(name string, start time.Time, err error) {
	s := Step{Name: name, Status: StepOK, DurationMS: ms(time.Since(start))}
	if err != nil {
		s.Status = StepFail
		s.Error = err.Error()
	}
	h.Steps = append(h.Steps, s)
}

// fail marks the host failed at step with err, unless an earlier, more
// serious outcome is already recorded.
func (h *HostReport) fail(step string, err error) {
	if h.Status == StatusThawUnconfirmed {
		return
	}
	h.Status = StatusFailed
	if h.FailedStep == "" {
		h.FailedStep = step
		h.Error = err.Error()
	}
}

func ms(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
