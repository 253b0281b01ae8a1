package run

// check.go is `orchestrate check`: run's preflight and the per-host steps
// up to the freeze, each turned into a named check with a result, and the
// checks run cannot make without starting the agent (sudo, tools, lock,
// tag-on-create). Nothing is frozen, started in the background or created.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/orchestrate-dev/orchestrate/internal/freeze"
	"github.com/orchestrate-dev/orchestrate/internal/identify"
	"github.com/orchestrate-dev/orchestrate/internal/snapshot"
)

// CheckSchema names the version of the check report (--output json).
const CheckSchema = "orchestrate.check/v1"

// Check names, in the order they are reported for each host.
const (
	CheckSSH                = "ssh"
	CheckIdentity           = "identity"
	CheckSudo               = "sudo"
	CheckTools              = "tools"
	CheckLock               = "lock"
	CheckVolumes            = "volumes"
	CheckIAMCreateSnapshots = "iam-create-snapshots"
	CheckIAMCreateTags      = "iam-create-tags"
)

// CheckNames returns every check name in report order.
func CheckNames() []string {
	return []string{CheckSSH, CheckIdentity, CheckSudo, CheckTools, CheckLock,
		CheckVolumes, CheckIAMCreateSnapshots, CheckIAMCreateTags}
}

// Check results. A skipped check could not run, because a check it
// depends on failed or it does not apply; a skip alone fails nothing.
const (
	CheckPass = "pass"
	CheckFail = "fail"
	CheckSkip = "skipped"
)

// Check report statuses.
const (
	CheckStatusPassed      = "passed"
	CheckStatusFailed      = "failed"
	CheckStatusInterrupted = "interrupted"
)

// AgentTools are the commands the freeze agent and discovery need on a
// host, looked up on the PATH the agent gets.
var AgentTools = []string{"fsfreeze", "findmnt", "lsblk", "setsid", "flock", "mountpoint"}

// CheckReport is the result of Check: the document printed by
// `orchestrate check --output json`.
type CheckReport struct {
	Schema     string       `json:"schema"`
	RunID      string       `json:"run_id"`
	StartedAt  time.Time    `json:"started_at"`
	FinishedAt time.Time    `json:"finished_at"`
	DurationMS float64      `json:"duration_ms"`
	Status     string       `json:"status"`
	Hosts      []*HostCheck `json:"hosts"`
}

// HostCheck is one host's checks, one per name in CheckNames, in order.
// Mounts and Volumes are what run would freeze and snapshot, as far as
// the checks got.
type HostCheck struct {
	Destination string        `json:"destination"`
	Line        int           `json:"line"`
	Address     string        `json:"address"`
	InstanceID  string        `json:"instance_id"`
	Region      string        `json:"region"`
	Mounts      []string      `json:"mounts"`
	Volumes     []string      `json:"volumes"`
	Checks      []CheckResult `json:"checks"`
}

// CheckResult is the outcome of one check on one host.
type CheckResult struct {
	Name   string `json:"name"`
	Result string `json:"result"`
	Detail string `json:"detail"`
}

// Failed reports whether any of the host's checks failed.
func (h *HostCheck) Failed() bool {
	for _, c := range h.Checks {
		if c.Result == CheckFail {
			return true
		}
	}
	return false
}

// Result returns the host's check called name, and false when it has none.
func (h *HostCheck) Result(name string) (CheckResult, bool) {
	for _, c := range h.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return CheckResult{}, false
}

// ExitCode maps the report to the exit codes of `orchestrate check`: 130
// when interrupted, 1 when any check failed on any host, 0 otherwise.
func (r *CheckReport) ExitCode() int {
	switch r.Status {
	case CheckStatusInterrupted:
		return 130
	case CheckStatusFailed:
		return 1
	}
	return 0
}

// Check runs every check of cfg's hosts and returns the report; it
// freezes nothing and creates nothing (the EC2 calls are describes and
// DryRun CreateSnapshots). The fleet's EC2 side is run's preflight; then,
// per host in parallel, it connects once and runs the host's checks over
// that connection. A check that fails does not stop the host's later
// checks, except those that depend on it, which are skipped. The error is
// a *ConfigError, as for Run, when no check could start (bad
// configuration, no credentials, no region): no host was contacted.
func Check(ctx context.Context, cfg Config) (*CheckReport, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, &ConfigError{err}
	}
	rep := &CheckReport{Schema: CheckSchema, RunID: cfg.RunID, StartedAt: time.Now()}
	fleet := make([]*hostRun, len(cfg.Hosts))
	for i, h := range cfg.Hosts {
		fleet[i] = newHostRun(&cfg, h)
	}
	if err := preflight(ctx, &cfg, fleet); err != nil {
		return nil, &ConfigError{err}
	}

	rep.Hosts = make([]*HostCheck, len(fleet))
	sem := make(chan struct{}, cfg.Parallel)
	done := make(chan struct{})
	for i, hr := range fleet {
		go func() {
			defer func() { done <- struct{}{} }()
			sem <- struct{}{}
			defer func() { <-sem }()
			rep.Hosts[i] = hr.check(ctx)
		}()
	}
	for range fleet {
		<-done
	}

	rep.FinishedAt = time.Now()
	rep.DurationMS = ms(rep.FinishedAt.Sub(rep.StartedAt))
	rep.Status = CheckStatusPassed
	for _, h := range rep.Hosts {
		if h.Failed() {
			rep.Status = CheckStatusFailed
		}
	}
	if ctx.Err() != nil {
		rep.Status = CheckStatusInterrupted
	}
	return rep, nil
}

// hostChecks collects one host's results by name.
type hostChecks map[string]CheckResult

func (hc hostChecks) set(name, result, format string, args ...any) {
	hc[name] = CheckResult{Name: name, Result: result, Detail: fmt.Sprintf(format, args...)}
}

func (hc hostChecks) result(name string, err error, ok string) {
	if err != nil {
		hc.set(name, CheckFail, "%s", oneLine(err.Error()))
		return
	}
	hc.set(name, CheckPass, "%s", ok)
}

func (hc hostChecks) passed(name string) bool { return hc[name].Result == CheckPass }

// check runs the host's checks. The volumes of a host with mounts= and
// volumes= were checked by preflight; for the others they are discovered
// on the host first, so that the lock check knows its filesystems.
func (hr *hostRun) check(ctx context.Context) *HostCheck {
	hc := hostChecks{}
	hr.checkPlannedVolumes(hc)

	start := time.Now()
	conn, err := hr.cfg.Dial(ctx, hr.target)
	hc.result(CheckSSH, err, fmt.Sprintf("connected to %s as %s, host key known (%s)",
		hr.rep.Address, connUser(conn), time.Since(start).Round(time.Millisecond)))
	if err != nil {
		reason := "no SSH connection"
		for _, name := range []string{CheckIdentity, CheckSudo, CheckTools, CheckLock} {
			hc.set(name, CheckSkip, "%s", reason)
		}
		if _, ok := hc[CheckVolumes]; !ok {
			hc.set(CheckVolumes, CheckSkip, "no SSH connection to discover the mounts on")
		}
	} else {
		defer conn.Close()
		hr.checkIdentity(ctx, conn, hc)
		hr.checkSudo(ctx, conn, hc)
		if _, ok := hc[CheckVolumes]; !ok {
			hr.checkDiscoveredVolumes(ctx, conn, hc)
		}
		hr.checkTools(ctx, conn, hc)
		hr.checkLock(ctx, conn, hc)
	}
	hr.checkIAM(ctx, hc)

	out := &HostCheck{Destination: hr.rep.Destination, Line: hr.rep.Line,
		Address: hr.rep.Address, InstanceID: hr.host.InstanceID, Region: hr.region,
		Mounts: nonNil(hr.host.Mounts), Volumes: nonNil(hr.host.Volumes)}
	for _, name := range CheckNames() {
		out.Checks = append(out.Checks, hc[name])
	}
	return out
}

// checkPlannedVolumes turns preflight's outcome into the volumes check:
// a failed describe fails it for every host, a failed snapshot plan for a
// host that names its volumes. A dry-run failure is left to the IAM
// checks, which run their own.
func (hr *hostRun) checkPlannedVolumes(hc hostChecks) {
	switch {
	case hr.inst == nil:
		hc.result(CheckVolumes, hr.preflightErr, "")
	case hr.needsDiscovery():
		// planned on the host, after discovery
	case hr.plan == nil:
		hc.result(CheckVolumes, hr.preflightErr, "")
	default:
		hc.set(CheckVolumes, CheckPass, "%s attached to %s", strings.Join(hr.plan.Volumes, ","),
			hr.host.InstanceID)
	}
}

// checkDiscoveredVolumes is discovery, as run does it, for a host without
// mounts= or volumes=: it leaves the plan in hr for the lock and IAM checks.
func (hr *hostRun) checkDiscoveredVolumes(ctx context.Context, conn Conn, hc hostChecks) {
	plan, err := hr.discoverPlan(ctx, conn)
	if err == nil {
		hr.host.Mounts, hr.host.Volumes = plan.Freeze, plan.Volumes
		hr.plan, err = snapshot.Plan(*hr.inst, plan.Volumes, hr.tags(), hr.description())
	}
	if err != nil {
		hr.plan = nil
		hc.result(CheckVolumes, err, "")
		return
	}
	hc.set(CheckVolumes, CheckPass, "%s attached to %s (discovered for %s)",
		strings.Join(hr.plan.Volumes, ","), hr.host.InstanceID, strings.Join(hr.host.Mounts, ","))
}

// checkIdentity is run's identify step: under auto an unreadable ID is a
// skip, not a failure.
func (hr *hostRun) checkIdentity(ctx context.Context, conn Conn, hc hostChecks) {
	if hr.cfg.VerifyIdentity == "off" {
		hc.set(CheckIdentity, CheckSkip, "--verify-identity off")
		return
	}
	id, err := identify.Read(ctx, conn, hr.cfg.Identity)
	if err == nil {
		err = identify.Check(id, hr.host.InstanceID)
	}
	if errors.Is(err, identify.ErrUnavailable) && hr.cfg.VerifyIdentity == "auto" {
		hc.set(CheckIdentity, CheckSkip, "%s (--verify-identity require makes this a failure)",
			oneLine(err.Error()))
		return
	}
	if err != nil {
		hc.result(CheckIdentity, err, "")
		return
	}
	hc.set(CheckIdentity, CheckPass, "host reports %s (from %s)", id.InstanceID, id.Source)
}

// checkSudo proves the agent would run as root: through sudo -n when the
// sudo mode calls for it (a password prompt fails), as the login user
// otherwise, which must then be root.
func (hr *hostRun) checkSudo(ctx context.Context, conn Conn, hc hostChecks) {
	out, stderr, err := hr.asAgent(ctx, conn, "id -u", "orchestrate-check")
	uid := strings.TrimSpace(out)
	sudo := freeze.UsesSudo(hr.cfg.Sudo, conn.User())
	switch {
	case sudo && strings.Contains(stderr, "sudo:") &&
		(strings.Contains(stderr, "password is required") || strings.Contains(stderr, "terminal is required")):
		hc.set(CheckSudo, CheckFail, "run: %s: %v: %s", hr.host.Destination,
			freeze.ErrSudoPassword, lastLine(stderr))
	case err != nil:
		hc.set(CheckSudo, CheckFail, "run: %s: sudo -n as %s: %v: %s", hr.host.Destination,
			conn.User(), err, lastLine(stderr))
	case uid != "0" && sudo:
		hc.set(CheckSudo, CheckFail, "run: %s: sudo -n as %s gave uid %q, not root",
			hr.host.Destination, conn.User(), uid)
	case uid != "0":
		hc.set(CheckSudo, CheckFail, "run: %s: %s is not root and --sudo never runs the "+
			"agent without sudo (use --sudo auto or log in as root)", hr.host.Destination, conn.User())
	case sudo:
		hc.set(CheckSudo, CheckPass, "sudo -n as %s gives root", conn.User())
	default:
		hc.set(CheckSudo, CheckPass, "logged in as root, no sudo needed (--sudo %s)", hr.cfg.Sudo)
	}
}

// toolsScript prints the PATH it got, MISSING NAME for each argument not
// found on it, then DONE.
const toolsScript = `printf 'PATH %s\n' "$PATH"
for t in "$@"; do command -v "$t" >/dev/null 2>&1 || printf 'MISSING %s\n' "$t"; done
echo DONE`

// checkTools looks up the agent's tools as the agent would run: as the
// same user, through the same sudo, so on the same PATH.
func (hr *hostRun) checkTools(ctx context.Context, conn Conn, hc hostChecks) {
	if !hc.passed(CheckSudo) {
		hc.set(CheckTools, CheckSkip, "needs the agent's user (see sudo)")
		return
	}
	out, stderr, err := hr.asAgent(ctx, conn, toolsScript, "orchestrate-check", AgentTools...)
	var missing []string
	path, done := "", false
	for _, line := range strings.Split(out, "\n") {
		word, rest, _ := strings.Cut(line, " ")
		switch word {
		case "PATH":
			path = rest
		case "MISSING":
			missing = append(missing, rest)
		case "DONE":
			done = true
		}
	}
	switch {
	case !done:
		hc.set(CheckTools, CheckFail, "run: %s: look up tools: %v: %s", hr.host.Destination,
			err, lastLine(stderr))
	case len(missing) > 0:
		hc.set(CheckTools, CheckFail, "run: %s: not found on the agent's PATH (%s): %s",
			hr.host.Destination, path, strings.Join(missing, ", "))
	default:
		hc.set(CheckTools, CheckPass, "%s found", strings.Join(AgentTools, ", "))
	}
}

// lockScript reports, from the agent's state directory, the live agents
// that hold a lock on the filesystem of one of its arguments (of any
// filesystem when none resolves): LIVE PID LOCK RUN_ID; and the dead
// agents whose record says something is still frozen: STALE PID RUN_ID.
// It ends with DONE and changes nothing. ORCHESTRATE_TEST_STATE_DIR is
// honoured as in agent.sh; sudo resets it and orchestrate sends none.
const lockScript = `state=${ORCHESTRATE_TEST_STATE_DIR:-/run/orchestrate}
[ -d "$state" ] || { echo DONE; exit 0; }
want=' '
for p in "$@"; do
d=$(devof "$p") && want="${want}fs.$(printf '%s' "$d" | tr : _) "
done
for l in "$state"/fs.*; do
[ -d "$l" ] || continue
n=${l##*/}
if [ "$want" != ' ' ]; then case $want in *" $n "*) ;; *) continue ;; esac; fi
pid=$(cat "$l/pid" 2>/dev/null)
[ -n "$pid" ] && agent_alive "$pid" &&
printf 'LIVE %s %s %s\n' "$pid" "$n" "$(cat "$state/agent.$pid/run-id" 2>/dev/null)"
done
for a in "$state"/agent.*; do
[ -d "$a" ] || continue
pid=${a##*/agent.}
agent_alive "$pid" && continue
if [ -s "$a/frozen" ] || [ -s "$a/freezing" ]; then
printf 'STALE %s %s\n' "$pid" "$(cat "$a/run-id" 2>/dev/null)"
fi
done
echo DONE`

// checkLock fails when another orchestrate agent holds a lock on one of
// the host's filesystems, or a dead one left filesystems recorded frozen.
func (hr *hostRun) checkLock(ctx context.Context, conn Conn, hc hostChecks) {
	if !hc.passed(CheckSudo) {
		hc.set(CheckLock, CheckSkip, "needs root to read /run/orchestrate (see sudo)")
		return
	}
	out, stderr, err := hr.asAgent(ctx, conn, lockScript, "orchestrate-check", hr.host.Mounts...)
	live, stale, done := parseLocks(out)
	switch {
	case !done:
		hc.set(CheckLock, CheckFail, "run: %s: read locks: %v: %s", hr.host.Destination,
			err, lastLine(stderr))
	case len(live) > 0:
		hc.set(CheckLock, CheckFail, "run: %s: another orchestrate run holds %s",
			hr.host.Destination, strings.Join(live, "; "))
	case len(stale) > 0:
		hc.set(CheckLock, CheckFail, "run: %s: a run that died left filesystems frozen (%s): "+
			"run orchestrate thaw", hr.host.Destination, strings.Join(stale, "; "))
	default:
		hc.set(CheckLock, CheckPass, "no orchestrate agent holds the host's filesystems")
	}
}

// parseLocks reads lockScript's output into human-readable holders.
func parseLocks(out string) (live, stale []string, done bool) {
	for _, line := range strings.Split(out, "\n") {
		f := strings.SplitN(line, " ", 4)
		switch {
		case f[0] == "LIVE" && len(f) >= 3:
			run := ""
			if len(f) == 4 && f[3] != "" {
				run = ", run " + f[3]
			}
			live = append(live, fmt.Sprintf("%s (pid %s%s)", f[2], f[1], run))
		case f[0] == "STALE" && len(f) >= 2:
			run := strings.Join(f[2:], " ")
			stale = append(stale, fmt.Sprintf("pid %s, run %s", f[1], orNone(run)))
		case f[0] == "DONE":
			done = true
		}
	}
	return live, stale, done
}

// checkIAM dry-runs the host's CreateSnapshots twice: without its tags,
// which proves ec2:CreateSnapshots alone, then exactly as run sends it,
// with TagSpecifications, which IAM also authorizes as ec2:CreateTags
// (tag on create). So a denial is pinned on the action it concerns.
func (hr *hostRun) checkIAM(ctx context.Context, hc hostChecks) {
	if hr.plan == nil {
		for _, name := range []string{CheckIAMCreateSnapshots, CheckIAMCreateTags} {
			hc.set(name, CheckSkip, "no snapshot request to dry-run (see volumes)")
		}
		return
	}
	bare := *hr.plan
	bare.Tags = nil
	err := hr.cfg.EC2.DryRun(ctx, &bare)
	if err != nil {
		err = fmt.Errorf("run: %s: dry run CreateSnapshots of %s (%s): %w", hr.host.Destination,
			hr.host.InstanceID, strings.Join(bare.Volumes, ","), err)
	}
	hc.result(CheckIAMCreateSnapshots, err, fmt.Sprintf("DryRun CreateSnapshots of %s (%s) allowed",
		hr.host.InstanceID, strings.Join(bare.Volumes, ",")))
	if err != nil {
		hc.set(CheckIAMCreateTags, CheckSkip, "needs CreateSnapshots (see iam-create-snapshots)")
		return
	}

	err = hr.cfg.EC2.DryRun(ctx, hr.plan)
	if err != nil {
		err = fmt.Errorf("run: %s: dry run CreateSnapshots of %s with its %d tags (ec2:CreateTags "+
			"on create): %w", hr.host.Destination, hr.host.InstanceID, len(hr.plan.Tags), err)
	}
	hc.result(CheckIAMCreateTags, err, fmt.Sprintf("DryRun CreateSnapshots with its %d tags allowed",
		len(hr.plan.Tags)))
}

// asAgent runs script with /bin/sh as name with args, as the freeze agent
// would run: through sudo -n -- when the sudo mode and user call for it.
// Every word is quoted with freeze.Quote.
func (hr *hostRun) asAgent(ctx context.Context, conn Conn, script, name string,
	args ...string) (stdout, stderr string, err error) {
	cmd := freeze.ScriptCommand(script, name, args, hr.cfg.Sudo, conn.User())
	var out, errb bytes.Buffer
	err = conn.Exec(ctx, cmd, strings.NewReader(""), &out, &errb)
	return out.String(), strings.TrimSpace(errb.String()), err
}

func connUser(c Conn) string {
	if c == nil {
		return ""
	}
	return c.User()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return orNone(s)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
