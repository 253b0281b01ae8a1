package run

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/orchestrate-dev/orchestrate/internal/freeze"
	"github.com/orchestrate-dev/orchestrate/internal/hosts"
	"github.com/orchestrate-dev/orchestrate/internal/identify"
	"github.com/orchestrate-dev/orchestrate/internal/snapshot"
	"github.com/orchestrate-dev/orchestrate/internal/sshexec"
)

// snapshotMargin is how long before the agent's deadline the snapshot call
// is given up, so that the THAW we send arrives before the agent would thaw
// on its own: the one round trip it needs fits easily.
const snapshotMargin = 2 * time.Second

// hostRun is one host's pipeline and its report.
type hostRun struct {
	cfg    *Config
	host   hosts.Host
	target sshexec.Target
	region string
	log    *slog.Logger
	rep    *HostReport

	inst         *snapshot.Instance // from the fleet's describe
	byID         bool               // the destination is the instance ID
	devices      []string           // per mount, the device discovery saw
	plan         *snapshot.Request
	preflightErr error
}

func newHostRun(cfg *Config, h hosts.Host) *hostRun {
	t := sshexec.Target{Name: h.Destination, Addr: h.Addr, Port: h.Port, User: h.User}
	return &hostRun{
		cfg:    cfg,
		host:   h,
		target: t,
		region: h.Region,
		log:    hostLogger(cfg.Logger, h),
		rep: &HostReport{
			Destination: h.Destination,
			Line:        h.Line,
			Address:     dialedAddress(cfg, t),
			InstanceID:  h.InstanceID,
			Region:      h.Region,
			Mounts:      orEmpty(h.Mounts),
			Volumes:     orEmpty(h.Volumes),
			Snapshots:   []SnapshotReport{},
			Steps:       []Step{},
			Status:      StatusSucceeded,
		},
	}
}

// pipeline runs connect → prepare → freeze → snapshot → thaw → wait. Once
// the agent has started, the thaw is reached on every path.
func (hr *hostRun) pipeline(ctx context.Context) {
	start := time.Now()
	conn, err := hr.cfg.Dial(ctx, hr.target)
	hr.rep.step(StepConnect, start, err)
	if err != nil {
		hr.rep.fail(StepConnect, err)
		return
	}
	defer conn.Close()
	hr.log.Info("connected", "elapsed", time.Since(start))

	if !hr.identify(ctx, conn) {
		return
	}
	if hr.needsDiscovery() && !hr.discover(ctx, conn) {
		return
	}
	if hr.cfg.PlanOnly {
		return
	}

	// Nothing is frozen until Start returns, so its bound can be generous:
	// it covers the agent's sync, which flushes every dirty page first.
	start = time.Now()
	pctx, cancel := context.WithTimeout(ctx, hr.cfg.PrepareTimeout)
	defer cancel()
	agent, err := freeze.Start(pctx, conn, conn.User(), freeze.Options{
		RunID:     hr.cfg.RunID,
		Mounts:    hr.host.Mounts,
		Devices:   hr.devices,
		Timeout:   hr.cfg.FreezeTimeout,
		AllowRoot: hr.cfg.AllowRootFreeze,
		Sudo:      hr.cfg.Sudo,
		Logger:    hr.log,
	})
	hr.rep.step(StepPrepare, start, err)
	if err != nil {
		hr.rep.fail(StepPrepare, err)
		return
	}
	defer func() {
		// An agent whose thaw is unconfirmed may sit on a dead connection:
		// close that first rather than wait on it.
		if hr.rep.Status == StatusThawUnconfirmed {
			conn.Close()
		}
		agent.Close()
	}()
	if ctx.Err() != nil {
		hr.rep.fail(StepFreeze, fmt.Errorf("not frozen: %w", ctx.Err()))
		hr.thaw(agent)
		return
	}

	snaps := hr.freezeAndSnapshot(ctx, agent)
	if hr.cfg.Wait && len(snaps) > 0 && hr.rep.Status == StatusSucceeded {
		hr.wait(ctx, snaps)
	}
}

// identify checks, before anything is frozen, that the host is the
// instance the hosts file names: it reads its own instance ID without
// credentials. It reports whether the pipeline may go on.
func (hr *hostRun) identify(ctx context.Context, conn Conn) bool {
	if hr.cfg.VerifyIdentity == "off" {
		return true
	}
	start := time.Now()
	id, err := identify.Read(ctx, conn, hr.cfg.Identity)
	if err == nil {
		err = identify.Check(id, hr.host.InstanceID)
	}
	if errors.Is(err, identify.ErrUnavailable) && hr.cfg.VerifyIdentity == "auto" {
		hr.rep.step(StepIdentify, start, nil)
		hr.rep.Steps[len(hr.rep.Steps)-1].Status = StepSkipped
		hr.rep.Warnings = append(hr.rep.Warnings, "the host's instance ID could "+
			"not be read, so it was not checked (--verify-identity require "+
			"makes this an error): "+err.Error())
		return true
	}
	hr.rep.step(StepIdentify, start, err)
	if err != nil {
		hr.rep.fail(StepIdentify, err)
		return false
	}
	hr.log.Info("identified", "source", id.Source)
	return true
}

// freezeAndSnapshot freezes, makes the one CreateSnapshots call, and thaws
// whatever happened. It returns the snapshots created, if any.
func (hr *hostRun) freezeAndSnapshot(ctx context.Context, agent *freeze.Agent) []snapshot.Snapshot {
	start := time.Now()
	fctx, cancel := context.WithTimeout(ctx, hr.cfg.FreezeTimeout-snapshotMargin)
	defer cancel()
	err := agent.Freeze(fctx)
	hr.rep.step(StepFreeze, start, err)
	if err != nil {
		hr.rep.fail(StepFreeze, err)
		hr.thaw(agent)
		return nil
	}
	hr.log.Info("frozen", "mounts", len(hr.host.Mounts), "elapsed", time.Since(start))

	start = time.Now()
	snaps, err := hr.cfg.EC2.Create(fctx, hr.plan)
	unsure := outcomeUnknown(err)
	if unsure {
		snaps, err = hr.resolveUnknown(fctx, err)
	}
	hr.rep.step(StepSnapshot, start, err)
	hr.recordSnapshots(snaps)
	if err != nil {
		hr.rep.fail(StepSnapshot, err)
	}

	res := hr.thaw(agent)
	if len(snaps) > 0 {
		hr.judgeConsistency(res, snaps)
	}
	if unsure {
		if late := hr.lookAfterThaw(snaps); len(late) > 0 && len(snaps) == 0 {
			hr.recordSnapshots(late)
			hr.rep.Consistency = snapshot.ConsistencyCrash
		}
	}
	return snaps
}

// thaw asks the agent to thaw and records the outcome; it never uses the
// run's context, so a cancelled run still thaws.
func (hr *hostRun) thaw(agent *freeze.Agent) *freeze.Result {
	start := time.Now()
	res, err := agent.Thaw(hr.cfg.ThawTimeout)
	hr.rep.step(StepThaw, start, err)
	if res != nil && res.Window > 0 {
		w := ms(res.Window)
		hr.rep.FreezeWindowMS = &w
	}
	if err != nil {
		// The first failure keeps its step (a connection lost while
		// freezing failed at freeze); the thaw's error is added to it.
		hr.rep.Status = StatusThawUnconfirmed
		prev := ""
		if hr.rep.FailedStep == "" {
			hr.rep.FailedStep = StepThaw
		} else {
			prev = hr.rep.Error + "; then "
		}
		hr.rep.Error = prev + fmt.Sprintf("%v: check the host now: `orchestrate thaw` "+
			"thaws what this run left frozen, and the agent's watchdog thaws at "+
			"the freeze timeout plus 2s", err)
		hr.log.Error("thaw not confirmed", "err", err)
		return res
	}
	hr.log.Info("thawed", "window", res.Window, "reason", res.Reason)
	return res
}

// judgeConsistency decides, after the thaw, whether the snapshots are
// application consistent: only if the agent thawed because we asked, which
// we do only after CreateSnapshots has returned. Otherwise the filesystems
// may have thawed before EC2 fixed the point in time. The snapshots were
// created tagged unverified; they are re-tagged with the verdict. A nil res
// (thaw not confirmed) proves nothing either way and counts as crash.
func (hr *hostRun) judgeConsistency(res *freeze.Result, snaps []snapshot.Snapshot) {
	verdict := snapshot.ConsistencyApplication
	if res == nil || res.Expired {
		verdict = snapshot.ConsistencyCrash
	}
	hr.rep.Consistency = verdict
	if res != nil && res.Expired {
		hr.rep.fail(StepThaw, fmt.Errorf("the agent thawed on its own (%s) "+
			"before it was told to: the snapshots are only crash-consistent",
			res.Reason))
	}

	ids := snapshotIDs(snaps)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := hr.cfg.EC2.Tag(ctx, hr.region, ids, map[string]string{
		snapshot.TagConsistency: verdict,
	})
	if err != nil {
		hr.log.Error("could not tag snapshots", "consistency", verdict,
			"err", err, "snapshots", ids)
		hr.rep.Warnings = append(hr.rep.Warnings, fmt.Sprintf("the snapshots "+
			"are %s-consistent but their tag could not be updated and still "+
			"says %s=%s: %v", verdict, snapshot.TagConsistency,
			snapshot.ConsistencyUnverified, err))
	}
}

// wait waits, after the thaw, for the snapshots to complete.
func (hr *hostRun) wait(ctx context.Context, snaps []snapshot.Snapshot) {
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, hr.cfg.WaitTimeout)
	defer cancel()
	final, err := hr.cfg.EC2.Wait(wctx, hr.region, snapshotIDs(snaps),
		hr.cfg.WaitOptions, func(s []snapshot.Snapshot) {
			hr.log.Info("waiting", "snapshots", progressText(s))
		})
	hr.rep.step(StepWait, start, err)
	if len(final) > 0 {
		hr.recordSnapshots(final)
	}
	if err != nil {
		hr.rep.fail(StepWait, err)
	}
}

func (hr *hostRun) recordSnapshots(snaps []snapshot.Snapshot) {
	if len(snaps) == 0 {
		return
	}
	out := make([]SnapshotReport, 0, len(snaps))
	for _, s := range snaps {
		out = append(out, SnapshotReport{SnapshotID: s.ID, VolumeID: s.VolumeID,
			State: s.State, Progress: s.Progress})
	}
	hr.rep.Snapshots = out
}

func snapshotIDs(snaps []snapshot.Snapshot) []string {
	ids := make([]string, 0, len(snaps))
	for _, s := range snaps {
		ids = append(ids, s.ID)
	}
	return ids
}

func progressText(snaps []snapshot.Snapshot) string {
	var b []byte
	for i, s := range snaps {
		if i > 0 {
			b = append(b, ' ')
		}
		b = fmt.Appendf(b, "%s=%s", s.ID, s.Progress)
	}
	return string(b)
}

// orEmpty keeps lists in the JSON report lists: [] rather than null.
func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// dialedAddress is where t is dialled: after ssh_config's HostName and Port.
func dialedAddress(cfg *Config, t sshexec.Target) string {
	if cfg.SSHConfig != nil {
		if t2, c2, err := cfg.SSHConfig.Apply(t, cfg.SSH, cfg.Explicit); err == nil {
			return address(t2, c2.Port)
		}
	}
	return address(t, cfg.SSH.Port)
}

// hostLogger tags a host's log lines with its destination and, once known,
// its instance ID.
func hostLogger(l *slog.Logger, h hosts.Host) *slog.Logger {
	l = l.With("host", h.Destination)
	if h.InstanceID != "" {
		l = l.With("instance", h.InstanceID)
	}
	return l
}
