package e2e

// This file holds the process and concurrency rows of the fault matrix:
// signals to orchestrate, kills of the host-side processes of a session
// while frozen, the recovery command, and concurrent or stale runs. Every
// process it signals on the host side is found by PID and checked first:
// its cmdline names the agent and its parent chain reaches this test's
// sshd.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orchestrate-dev/orchestrate/internal/ec2sim"
	"github.com/orchestrate-dev/orchestrate/internal/run"
)

// Settings shared by the rows of this file: a short freeze and fast
// keepalives keep the matrix quick; margins stay generous for a loaded
// two-core machine.
const (
	procFreezeTimeout = 6 * time.Second
	procKeepalive     = 500 * time.Millisecond
	procWatchdogGrace = 2 * time.Second
	procMargin        = 2 * time.Second
)

func init() {
	register(
		scenario{Name: "ProcSigintAtPrepare", Fault: "SIGINT to orchestrate while the agent is starting (session stalled in ~/.ssh/rc)",
			Step: "prepare", Expect: "nothing frozen, no CreateSnapshots; report interrupted; exit 130", Run: testProcSigintAtPrepare},
		scenario{Name: "ProcSigintAtAPICall", Fault: "SIGINT to orchestrate while both hosts are frozen in CreateSnapshots",
			Step: "api-call", Expect: "both thawed before exit, thaw confirmed; report interrupted; application only for a call EC2 answered before the interrupt; exit 130",
			Run: func(t *testing.T) { testProcSignalAtAPICall(t, syscall.SIGINT, 1) }},
		scenario{Name: "ProcSigtermAtAPICall", Fault: "SIGTERM to orchestrate while both hosts are frozen in CreateSnapshots",
			Step: "api-call", Expect: "both thawed before exit, thaw confirmed; report interrupted; application only for a call EC2 answered before the interrupt; exit 130",
			Run: func(t *testing.T) { testProcSignalAtAPICall(t, syscall.SIGTERM, 1) }},
		scenario{Name: "ProcDoubleSigint", Fault: "two SIGINTs 50ms apart while both hosts are frozen in CreateSnapshots",
			Step: "api-call", Expect: "the second does not abandon the thaw: both thawed before exit; exit 130",
			Run: func(t *testing.T) { testProcSignalAtAPICall(t, syscall.SIGINT, 2) }},
		scenario{Name: "ProcSigkillAtAPICall", Fault: "SIGKILL of orchestrate while both hosts are frozen in CreateSnapshots",
			Step: "api-call", Expect: "both writable promptly (agent sees EOF), at the latest by freeze-timeout+2s", Run: testProcSigkillAtAPICall},
		scenario{Name: "ProcKillAgent", Fault: "SIGKILL of the agent shell on one host while frozen",
			Step: "api-call", Expect: "watchdog thaws by freeze-timeout+2s; this host thaw_unconfirmed at thaw, not application; other succeeds; exit 3",
			Run: func(t *testing.T) { testProcKillHostSide(t, killAgentShell, false) }},
		scenario{Name: "ProcKillSudo", Fault: "SIGKILL of the agent's sudo parent on one host while frozen",
			Step: "api-call", Expect: "thawed by freeze-timeout+2s (the agent sees EOF); this host failed at thaw, not application, exit 1 if the agent confirmed its own thaw, else thaw_unconfirmed, exit 3; other succeeds",
			Run: func(t *testing.T) { testProcKillHostSide(t, killSudo, true) }},
		scenario{Name: "ProcKillSSHDSession", Fault: "SIGKILL of the sshd session process of one host's connection while frozen",
			Step: "api-call", Expect: "thawed by freeze-timeout+2s; this host thaw_unconfirmed at thaw, not application; other succeeds; exit 3",
			Run: func(t *testing.T) { testProcKillHostSide(t, killSSHDSession, false) }},
		scenario{Name: "ProcThawCommandRecovers", Fault: "agent shell SIGKILLed while frozen, then `orchestrate thaw --hosts` before the watchdog's deadline",
			Step: "api-call", Expect: "thaw thaws it at once and reports the mount (status thawed); other host nothing; exit 0", Run: testProcThawCommandRecovers},
		scenario{Name: "ProcThawCommandTouchesNothingElse", Fault: "`orchestrate thaw --hosts` with nothing recorded and a filesystem frozen by someone else",
			Step: "any", Expect: "every host nothing, no mount thawed; the foreign freeze is still frozen; exit 0", Run: testProcThawCommandTouchesNothingElse},
		scenario{Name: "ProcSecondRunRefused", Fault: "a second run on the same hosts while the first is frozen in CreateSnapshots",
			Step: "api-call", Expect: "second: every host failed at prepare, \"locked\", nothing frozen, exit 1; first: succeeded, application, exit 0", Run: testProcSecondRunRefused},
		scenario{Name: "ProcStaleLockTakenOver", Fault: "a stale lock /run/orchestrate/fs.MAJ_MIN naming a dead pid",
			Step: "prepare", Expect: "lock taken over and released; both hosts succeeded, application; exit 0", Run: testProcStaleLockTakenOver},
		scenario{Name: "ProcAlreadyFrozenLeftAlone", Fault: "the second filesystem of a host already frozen by someone else (fsfreeze -f)",
			Step: "freeze", Expect: "that host failed at freeze, \"already frozen by someone else\"; its first fs thawed, the foreign one still frozen; other succeeds; exit 1", Run: testProcAlreadyFrozenLeftAlone},
	)
}

// asyncRun is the orchestrate binary running in the background.
type asyncRun struct {
	cmd      *exec.Cmd
	out, err bytes.Buffer
	done     chan struct{}
	code     int
	exitedAt time.Time
}

// binEnv is the environment of every orchestrate the tests start: the
// emulator's keys and nothing of the machine's AWS or SSH config.
func binEnv(home string) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"AWS_ACCESS_KEY_ID=" + accessKey, "AWS_SECRET_ACCESS_KEY=" + secretKey,
		"AWS_CONFIG_FILE=" + filepath.Join(home, "none"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none"),
		"AWS_EC2_METADATA_DISABLED=true",
		// The hosts are this machine: their identity probe must never
		// reach a real metadata address.
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + noMetadata,
	}
}

// sshArgs are the SSH flags run and thaw share, for world.user.
func sshArgs() []string {
	return []string{"--known-hosts", world.sshd.KnownHostsPath, "-i", world.user.KeyPath,
		"--user", world.user.Name, "--port", strconv.Itoa(world.sshd.Port)}
}

// startOrchestrate starts `orchestrate run` like orchestrate does, without
// waiting for it. The process is killed at the end of the test if it is
// still running.
func startOrchestrate(t *testing.T, endpoint string, args ...string) *asyncRun {
	t.Helper()
	base := append([]string{"run", "--endpoint-url", endpoint, "--region", testRegion}, sshArgs()...)
	a := &asyncRun{done: make(chan struct{})}
	a.cmd = exec.Command(world.bin, append(base, args...)...)
	a.cmd.Env = binEnv(t.TempDir())
	a.cmd.Stdout, a.cmd.Stderr = &a.out, &a.err
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("start orchestrate: %v", err)
	}
	go func() {
		err := a.cmd.Wait()
		a.exitedAt = time.Now()
		if ee, ok := err.(*exec.ExitError); ok {
			a.code = ee.ExitCode()
		} else if err != nil {
			a.code = -2
		}
		close(a.done)
	}()
	t.Cleanup(func() {
		select {
		case <-a.done:
		default:
			a.cmd.Process.Kill()
			<-a.done
		}
	})
	return a
}

// signal sends sig to the orchestrate process.
func (a *asyncRun) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := a.cmd.Process.Signal(sig); err != nil {
		t.Errorf("signal orchestrate with %v: %v", sig, err)
	}
}

// wait waits up to d for the process to exit and returns what it did.
func (a *asyncRun) wait(t *testing.T, d time.Duration) result {
	t.Helper()
	select {
	case <-a.done:
	case <-time.After(d):
		a.cmd.Process.Kill()
		<-a.done
		t.Errorf("orchestrate did not exit within %v; killed it", d)
	}
	t.Logf("orchestrate (async) exit %d\nstdout:\n%s\nstderr:\n%s", a.code, a.out.String(), a.err.String())
	return result{a.out.String(), a.err.String(), a.code}
}

// orchestrateThaw runs `orchestrate thaw --hosts hostsFile` with the SSH
// flags of world.user and JSON output.
func orchestrateThaw(t *testing.T, hostsFile string, args ...string) result {
	t.Helper()
	all := append(append([]string{"thaw", "--hosts", hostsFile, "--output", "json"}, sshArgs()...), args...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, world.bin, all...)
	cmd.Env = binEnv(t.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run orchestrate thaw: %v", err)
	}
	t.Logf("orchestrate thaw\nexit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	return result{out.String(), errb.String(), code}
}

// thawReport is the orchestrate.thaw/v1 document.
type thawReport struct {
	Schema string `json:"schema"`
	Hosts  []struct {
		Destination string `json:"destination"`
		Status      string `json:"status"`
		Thawed      []struct {
			RunID string `json:"run_id"`
			Mount string `json:"mount"`
		} `json:"thawed"`
		Live []struct {
			PID   int    `json:"pid"`
			RunID string `json:"run_id"`
		} `json:"live"`
		Error string `json:"error"`
	} `json:"hosts"`
}

func parseThawReport(t *testing.T, stdout string) *thawReport {
	t.Helper()
	var rep thawReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("thaw stdout is not one JSON report: %v\n%s", err, stdout)
	}
	if rep.Schema != "orchestrate.thaw/v1" {
		t.Errorf("thaw report schema = %q, want orchestrate.thaw/v1", rep.Schema)
	}
	return &rep
}

// hostByInstance returns the report of the host with instance id.
func hostByInstance(t *testing.T, rep *run.Report, id string) *run.HostReport {
	t.Helper()
	for _, hr := range rep.Hosts {
		if hr.InstanceID == id {
			return hr
		}
	}
	t.Fatalf("report has no host with instance %s", id)
	return nil
}

// requireSucceeded checks that a host of a run was untouched by the fault.
func requireSucceeded(t *testing.T, hr *run.HostReport) {
	t.Helper()
	if hr.Status != run.StatusSucceeded || hr.Consistency != "application" {
		t.Errorf("unfaulted host %s = status %q consistency %q error %q, want succeeded application",
			hr.Destination, hr.Status, hr.Consistency, hr.Error)
	}
}

// requireNoFreeze checks that the host got no freeze step.
func requireNoFreeze(t *testing.T, hr *run.HostReport) {
	t.Helper()
	for _, s := range hr.Steps {
		if s.Name == run.StepFreeze {
			t.Errorf("host %s has a freeze step, want none: %+v", hr.Destination, s)
		}
	}
	if hr.FreezeWindowMS != nil {
		t.Errorf("host %s freeze window = %v ms, want none", hr.Destination, *hr.FreezeWindowMS)
	}
}

// realCreates counts the CreateSnapshots calls that were not DryRuns.
func realCreates(srv *ec2sim.Server) (n int, codes []string) {
	for _, c := range srv.Calls() {
		if c.Action == "CreateSnapshots" && !c.DryRun {
			n++
			codes = append(codes, c.Code)
		}
	}
	return n, codes
}

// waitWritable polls fs until it takes a write, up to d, and returns how
// long that took.
func waitWritable(fsProbe func(time.Duration) bool, d time.Duration) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < d {
		if fsProbe(250 * time.Millisecond) {
			return time.Since(start), true
		}
	}
	return time.Since(start), false
}

// holdCalls makes every real CreateSnapshots call wait in the emulator
// until release is closed (at most limit). Each arriving instance ID is
// sent on the returned channel.
func holdCalls(srv *ec2sim.Server, release <-chan struct{}, limit time.Duration) <-chan string {
	arrived := make(chan string, 16)
	srv.OnCreateSnapshots(func(ev ec2sim.CreateEvent) {
		arrived <- ev.InstanceID
		select {
		case <-release:
		case <-time.After(limit):
		}
	})
	return arrived
}

// awaitArrivals waits for n calls on arrived.
func awaitArrivals(t *testing.T, arrived <-chan string, n int, d time.Duration) bool {
	t.Helper()
	deadline := time.After(d)
	for i := 0; i < n; i++ {
		select {
		case <-arrived:
		case <-deadline:
			t.Errorf("only %d of %d CreateSnapshots calls arrived within %v", i, n, d)
			return false
		}
	}
	return true
}

func testProcSigintAtPrepare(t *testing.T) {
	srv, url := emulator(t)
	a0, a1 := world.hosts[0], world.hosts[1]

	// ~/.ssh/rc runs before the agent's command in every session: it
	// stalls the agent's start, so the run is in prepare for 3s.
	sshDir := filepath.Join(world.user.Home, ".ssh")
	rc := filepath.Join(sshDir, "rc")
	if err := os.MkdirAll(sshDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rc, []byte("sleep 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	t.Cleanup(func() {
		os.Remove(rc)
		// Sessions already in rc start their agent when it ends; that agent
		// reads EOF at once. Let them go before the next scenario.
		time.Sleep(time.Until(started.Add(5 * time.Second)))
	})
	hostsFile := writeHostsFile(t, hostLine(a0, a0.addr), hostLine(a1, a1.addr))

	a := startOrchestrate(t, url, "--hosts", hostsFile, "--output", "json",
		"--freeze-timeout", procFreezeTimeout.String(), "--keepalive", procKeepalive.String())
	time.Sleep(1500 * time.Millisecond)
	a.signal(t, syscall.SIGINT)
	res := a.wait(t, 20*time.Second)

	if res.code != 130 {
		t.Errorf("exit code = %d, want 130", res.code)
	}
	rep := parseReport(t, res.stdout)
	if rep.Status != run.StatusInterrupted {
		t.Errorf("run status = %q, want %q", rep.Status, run.StatusInterrupted)
	}
	for _, hr := range rep.Hosts {
		requireNoFreeze(t, hr)
		if hr.Status == run.StatusSucceeded {
			t.Errorf("host %s succeeded, want it not to (interrupted at prepare)", hr.Destination)
		}
	}
	if n, _ := realCreates(srv); n != 0 {
		t.Errorf("CreateSnapshots calls = %d, want 0", n)
	}
	requireWritable(t, 5*time.Second)
}

func testProcSignalAtAPICall(t *testing.T, sig syscall.Signal, times int) {
	srv, url := emulator(t)
	a0, a1 := world.hosts[0], world.hosts[1]
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseAll)
	arrived := holdCalls(srv, release, 20*time.Second)
	hostsFile := writeHostsFile(t, hostLine(a0, a0.addr), hostLine(a1, a1.addr))

	a := startOrchestrate(t, url, "--hosts", hostsFile, "--output", "json",
		"--freeze-timeout", procFreezeTimeout.String(), "--keepalive", procKeepalive.String())
	if !awaitArrivals(t, arrived, 2, 15*time.Second) {
		return
	}
	for _, fs := range []*testHost{a0, a1} {
		if fs.fss[0].WriteProbe(200 * time.Millisecond) {
			t.Errorf("%s was not frozen during CreateSnapshots", fs.fss[0].Mount)
		}
	}
	// The signals go back to back; the held calls are released once they
	// are sent, so EC2 answers (or not) while orchestrate reacts.
	sent := time.Now()
	for i := 0; i < times; i++ {
		a.signal(t, sig)
	}
	releaseAll()
	res := a.wait(t, procFreezeTimeout+procMargin+5*time.Second)
	exited := time.Since(sent)
	for _, h := range []*testHost{a0, a1} {
		if !h.fss[0].WriteProbe(time.Second) {
			t.Errorf("%s not writable right after orchestrate exited: not thawed before exit", h.fss[0].Mount)
		}
	}
	t.Logf("exited %v after the signal", exited)
	if exited > procFreezeTimeout+procMargin {
		t.Errorf("exited %v after the signal, want within the freeze timeout %v plus %v", exited, procFreezeTimeout, procMargin)
	}
	if res.code != 130 {
		t.Errorf("exit code = %d, want 130", res.code)
	}
	rep := parseReport(t, res.stdout)
	if rep.Status != run.StatusInterrupted {
		t.Errorf("run status = %q, want %q", rep.Status, run.StatusInterrupted)
	}
	// A host whose call was cancelled by the interrupt must not claim
	// application consistency. One whose call EC2 answered before the
	// interrupt took effect was thawed on command after it, so its
	// snapshots truly are application consistent; that is the only way a
	// snapshot of this run may carry the application tag.
	justified := map[string]bool{}
	for _, hr := range rep.Hosts {
		if !stepOK(hr, run.StepThaw) {
			t.Errorf("host %s thaw step not ok, want the thaw confirmed before exit: %+v", hr.Destination, hr.Steps)
		}
		answered := stepOK(hr, run.StepSnapshot)
		if hr.Consistency == "application" && !(answered && hr.Status == run.StatusSucceeded) {
			t.Errorf("host %s = %q consistency application after its call was interrupted, want crash or none",
				hr.Destination, hr.Status)
		}
		if hr.Consistency == "application" && answered {
			t.Logf("host %s: EC2 answered before the interrupt took effect; application is justified", hr.Destination)
			justified[hr.InstanceID] = true
		}
	}

	// Let the emulator finish the released calls before looking at what
	// they made.
	time.Sleep(time.Second)
	for _, s := range srv.Snapshots() {
		if s.Tags["orchestrate:run-id"] == rep.RunID && s.Tags["orchestrate:consistency"] == "application" &&
			!justified[s.Tags["orchestrate:instance-id"]] {
			t.Errorf("snapshot %s of %s is tagged application, but its host's call was interrupted: want crash",
				s.ID, s.VolumeID)
		}
	}
	requireWritable(t, 5*time.Second)
}

func testProcSigkillAtAPICall(t *testing.T) {
	srv, url := emulator(t)
	a0, a1 := world.hosts[0], world.hosts[1]
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	arrived := holdCalls(srv, release, 20*time.Second)
	hostsFile := writeHostsFile(t, hostLine(a0, a0.addr), hostLine(a1, a1.addr))

	a := startOrchestrate(t, url, "--hosts", hostsFile, "--output", "json",
		"--freeze-timeout", procFreezeTimeout.String(), "--keepalive", procKeepalive.String())
	if !awaitArrivals(t, arrived, 2, 15*time.Second) {
		return
	}
	a.signal(t, syscall.SIGKILL)
	killed := time.Now()
	a.wait(t, 5*time.Second)

	bound := procFreezeTimeout + procWatchdogGrace + procMargin
	for _, h := range []*testHost{a0, a1} {
		for _, fs := range h.fss {
			if _, ok := waitWritable(fs.WriteProbe, bound-time.Since(killed)); !ok {
				t.Errorf("%s still frozen %v after orchestrate was SIGKILLed, want writable by freeze-timeout+2s (+%v)",
					fs.Mount, time.Since(killed), procMargin)
				continue
			}
			t.Logf("%s writable %v after the SIGKILL", fs.Mount, time.Since(killed))
		}
	}
	requireWritable(t, 5*time.Second)
}

// procInfo reads what the tests check of a process.
type procInfo struct {
	pid     int
	ppid    int
	comm    string
	cmdline string
}

func readProc(pid int) (procInfo, bool) {
	p := procInfo{pid: pid}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return p, false
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return p, false
	}
	p.comm = s[open+1 : end]
	f := strings.Fields(s[end+1:])
	if len(f) < 2 {
		return p, false
	}
	p.ppid, _ = strconv.Atoi(f[1])
	cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	p.cmdline = strings.ReplaceAll(string(cl), "\x00", " ")
	return p, true
}

// ancestors returns the parent chain of pid, nearest first, up to init.
func ancestors(pid int) []procInfo {
	var out []procInfo
	for p, ok := readProc(pid); ok && p.ppid > 1; p, ok = readProc(p.ppid) {
		pp, ok := readProc(p.ppid)
		if !ok {
			break
		}
		out = append(out, pp)
	}
	return out
}

// agentFor finds the agent shell whose frozen record lists mount and
// checks that it is an agent of this test's sshd.
func agentFor(t *testing.T, mount string) (procInfo, bool) {
	t.Helper()
	dirs, _ := filepath.Glob("/run/orchestrate/agent.*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "frozen"))
		if err != nil || !containsLine(string(b), mount) {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "agent."))
		if err != nil {
			continue
		}
		p, ok := readProc(pid)
		if !ok || !strings.Contains(p.cmdline, "orchestrate-agent") {
			t.Errorf("agent record %s: pid %d is not an agent (cmdline %q)", d, pid, p.cmdline)
			return p, false
		}
		for _, a := range ancestors(pid) {
			if a.pid == world.sshd.PID {
				return p, true
			}
		}
		t.Errorf("agent pid %d is not below this test's sshd pid %d", pid, world.sshd.PID)
		return p, false
	}
	t.Errorf("no agent record under /run/orchestrate lists %s", mount)
	return procInfo{}, false
}

func containsLine(s, line string) bool {
	for _, l := range strings.Split(s, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

// A hostKill picks the host-side process of agent to SIGKILL.
type hostKill func(t *testing.T, agent procInfo) (procInfo, bool)

func killAgentShell(_ *testing.T, agent procInfo) (procInfo, bool) { return agent, true }

func killSudo(t *testing.T, agent procInfo) (procInfo, bool) {
	t.Helper()
	p, ok := readProc(agent.ppid)
	if !ok || !strings.HasPrefix(p.cmdline, "sudo ") || !strings.Contains(p.cmdline, "orchestrate-agent") {
		t.Errorf("parent of agent %d = pid %d %q, want the sudo running it", agent.pid, p.pid, p.cmdline)
		return p, false
	}
	return p, true
}

func killSSHDSession(t *testing.T, agent procInfo) (procInfo, bool) {
	t.Helper()
	for _, a := range ancestors(agent.pid) {
		if a.pid == world.sshd.PID {
			break
		}
		if strings.HasPrefix(a.comm, "sshd") {
			return a, true
		}
	}
	t.Errorf("agent %d has no sshd session process between it and the listener %d", agent.pid, world.sshd.PID)
	return procInfo{}, false
}

// killInHook SIGKILLs, from inside h's CreateSnapshots call, the process
// pick chooses, and returns when it was killed.
func killInHook(t *testing.T, srv *ec2sim.Server, h *testHost, pick hostKill) func() (time.Time, bool) {
	var mu sync.Mutex
	var at time.Time
	var done bool
	srv.OnCreateSnapshots(func(ev ec2sim.CreateEvent) {
		if ev.InstanceID != h.instance {
			return
		}
		agent, ok := agentFor(t, h.fss[0].Mount)
		if !ok {
			return
		}
		victim, ok := pick(t, agent)
		if !ok {
			return
		}
		t.Logf("SIGKILL pid %d (%s) %.80q", victim.pid, victim.comm, victim.cmdline)
		if err := syscall.Kill(victim.pid, syscall.SIGKILL); err != nil {
			t.Errorf("kill %d: %v", victim.pid, err)
			return
		}
		mu.Lock()
		at, done = time.Now(), true
		mu.Unlock()
		// Let the kill land before the call returns.
		time.Sleep(300 * time.Millisecond)
	})
	return func() (time.Time, bool) {
		mu.Lock()
		defer mu.Unlock()
		return at, done
	}
}

// testProcKillHostSide kills a host-side process of the first host while
// frozen. mayConfirm allows the agent to survive the kill and confirm its
// own thaw (killing its parent closes its input: it thaws on EOF).
func testProcKillHostSide(t *testing.T, pick hostKill, mayConfirm bool) {
	srv, url := emulator(t)
	a0, a1 := world.hosts[0], world.hosts[1]
	killed := killInHook(t, srv, a0, pick)
	hostsFile := writeHostsFile(t, hostLine(a0, a0.addr), hostLine(a1, a1.addr))

	res := orchestrate(t, url, "--hosts", hostsFile, "--output", "json",
		"--freeze-timeout", procFreezeTimeout.String(), "--keepalive", procKeepalive.String())
	at, ok := killed()
	if !ok {
		t.Fatalf("the host-side process was not killed")
	}
	bound := procFreezeTimeout + procWatchdogGrace + procMargin
	_, ok = waitWritable(a0.fss[0].WriteProbe, bound-time.Since(at))
	if !ok {
		t.Errorf("%s still frozen %v after the kill, want thawed by freeze-timeout+2s (+%v)", a0.fss[0].Mount, time.Since(at), procMargin)
	} else {
		t.Logf("%s writable %v after the kill", a0.fss[0].Mount, time.Since(at))
	}

	rep := parseReport(t, res.stdout)
	hr := hostByInstance(t, rep, a0.instance)
	switch {
	case hr.Status == run.StatusFailed && mayConfirm:
		// The agent outlived the kill and reported its own thaw (on EOF).
		if res.code != 1 || hr.FailedStep != run.StepThaw || !stepOK(hr, run.StepThaw) {
			t.Errorf("killed host = failed at %q (thaw step ok %v), exit %d; want a confirmed self-thaw failed at thaw, exit 1",
				hr.FailedStep, stepOK(hr, run.StepThaw), res.code)
		}
	case hr.Status == run.StatusThawUnconfirmed:
		if res.code != 3 || hr.FailedStep != run.StepThaw {
			t.Errorf("killed host = thaw_unconfirmed at %q, exit %d; want at thaw, exit 3", hr.FailedStep, res.code)
		}
		if !strings.Contains(res.stderr, "THAW NOT CONFIRMED") {
			t.Errorf("stderr does not say THAW NOT CONFIRMED:\n%s", res.stderr)
		}
	default:
		t.Errorf("killed host = status %q failed_step %q exit %d, want thaw_unconfirmed at thaw, exit 3", hr.Status, hr.FailedStep, res.code)
	}
	if hr.Consistency == "application" {
		t.Errorf("killed host consistency = application, want crash")
	}
	requireSucceeded(t, hostByInstance(t, rep, a1.instance))
	runSnapshotsOfNotApplication(t, srv, rep.RunID, a0.instance)
	requireWritable(t, 5*time.Second)
}

// runSnapshotsOfNotApplication checks that no snapshot the emulator holds
// for runID and instance is tagged application consistent.
func runSnapshotsOfNotApplication(t *testing.T, srv *ec2sim.Server, runID, instance string) {
	t.Helper()
	for _, s := range srv.Snapshots() {
		if s.Tags["orchestrate:run-id"] == runID && s.Tags["orchestrate:instance-id"] == instance &&
			s.Tags["orchestrate:consistency"] == "application" {
			t.Errorf("snapshot %s of %s (%s) is tagged application, want crash (thaw not confirmed)", s.ID, s.VolumeID, instance)
		}
	}
}

func testProcThawCommandRecovers(t *testing.T) {
	srv, url := emulator(t)
	a0, a1 := world.hosts[0], world.hosts[1]
	// A long freeze timeout: the watchdog must not be what thaws.
	const freezeTimeout = 20 * time.Second
	killed := killInHook(t, srv, a0, killAgentShell)
	hostsFile := writeHostsFile(t, hostLine(a0, a0.addr), hostLine(a1, a1.addr))

	res := orchestrate(t, url, "--hosts", hostsFile, "--output", "json",
		"--freeze-timeout", freezeTimeout.String(), "--keepalive", procKeepalive.String())
	at, ok := killed()
	if !ok {
		t.Fatalf("the agent was not killed")
	}
	if res.code != 3 {
		t.Errorf("run exit code = %d, want 3", res.code)
	}
	if a0.fss[0].WriteProbe(300 * time.Millisecond) {
		t.Fatalf("%s already writable before orchestrate thaw: nothing left to recover", a0.fss[0].Mount)
	}

	tr := orchestrateThaw(t, hostsFile)
	since := time.Since(at)
	if !a0.fss[0].WriteProbe(2 * time.Second) {
		t.Errorf("%s still frozen after orchestrate thaw returned", a0.fss[0].Mount)
	}
	if since > freezeTimeout {
		t.Errorf("thaw returned %v after the kill, after the freeze timeout %v: the watchdog may have done it", since, freezeTimeout)
	}
	if tr.code != 0 {
		t.Errorf("thaw exit code = %d, want 0", tr.code)
	}
	rep := parseThawReport(t, tr.stdout)
	if len(rep.Hosts) != 2 {
		t.Fatalf("thaw report hosts = %d, want 2", len(rep.Hosts))
	}
	// The test hosts share one kernel, so either host's session may be
	// the one that finds the dead agent's record: the mount must be
	// thawed exactly once, for this run, and every host reached.
	runID := parseReport(t, res.stdout).RunID
	var thawedBy []string
	for _, h := range rep.Hosts {
		if h.Destination != a0.addr && h.Destination != a1.addr {
			t.Errorf("thaw report names unknown host %q", h.Destination)
		}
		if h.Status != "thawed" && h.Status != "nothing" {
			t.Errorf("thaw of %s = status %q error %q, want thawed or nothing", h.Destination, h.Status, h.Error)
		}
		for _, m := range h.Thawed {
			if m.Mount == a0.fss[0].Mount {
				thawedBy = append(thawedBy, h.Destination)
				if m.RunID != runID {
					t.Errorf("thawed %s with run id %q, want %q", m.Mount, m.RunID, runID)
				}
			}
		}
	}
	if len(thawedBy) != 1 {
		t.Errorf("%s reported thawed by %v, want by exactly one host", a0.fss[0].Mount, thawedBy)
	}
	requireWritable(t, 5*time.Second)
}

func testProcThawCommandTouchesNothingElse(t *testing.T) {
	a0, a1 := world.hosts[0], world.hosts[1]
	foreign := a1.fss[0]
	if out, err := exec.Command("fsfreeze", "-f", foreign.Mount).CombinedOutput(); err != nil {
		t.Fatalf("fsfreeze -f %s: %v: %s", foreign.Mount, err, out)
	}
	t.Cleanup(func() { foreign.Thaw() })
	hostsFile := writeHostsFile(t, hostLine(a0, a0.addr), hostLine(a1, a1.addr))

	tr := orchestrateThaw(t, hostsFile)
	if foreign.WriteProbe(300 * time.Millisecond) {
		t.Errorf("%s, frozen by the test, was thawed by orchestrate thaw", foreign.Mount)
	}
	if tr.code != 0 {
		t.Errorf("thaw exit code = %d, want 0", tr.code)
	}
	rep := parseThawReport(t, tr.stdout)
	if len(rep.Hosts) != 2 {
		t.Errorf("thaw report hosts = %d, want 2", len(rep.Hosts))
	}
	for _, h := range rep.Hosts {
		if h.Status != "nothing" || len(h.Thawed) != 0 {
			t.Errorf("thaw of %s = status %q thawed %+v error %q, want nothing", h.Destination, h.Status, h.Thawed, h.Error)
		}
	}

	if err := foreign.Thaw(); err != nil {
		t.Fatal(err)
	}
	requireWritable(t, 5*time.Second)
}

func testProcSecondRunRefused(t *testing.T) {
	srv, url := emulator(t)
	_, url2 := emulator(t)
	a0, a1 := world.hosts[0], world.hosts[1]
	release := make(chan struct{})
	var once sync.Once
	releaseAll := func() { once.Do(func() { close(release) }) }
	t.Cleanup(releaseAll)
	arrived := holdCalls(srv, release, 8*time.Second)
	hostsFile := writeHostsFile(t, hostLine(a0, a0.addr), hostLine(a1, a1.addr))

	// The first run gets a longer freeze so its held calls outlast the
	// second run comfortably.
	first := startOrchestrate(t, url, "--hosts", hostsFile, "--output", "json",
		"--freeze-timeout", "12s", "--keepalive", procKeepalive.String())
	if !awaitArrivals(t, arrived, 2, 15*time.Second) {
		return
	}
	second := orchestrate(t, url2, "--hosts", hostsFile, "--output", "json",
		"--freeze-timeout", procFreezeTimeout.String(), "--keepalive", procKeepalive.String())
	for _, h := range []*testHost{a0, a1} {
		if h.fss[0].WriteProbe(200 * time.Millisecond) {
			t.Errorf("%s not frozen by the first run after the second ran", h.fss[0].Mount)
		}
	}
	releaseAll()
	res := first.wait(t, 30*time.Second)

	if second.code != 1 {
		t.Errorf("second run exit code = %d, want 1", second.code)
	}
	for _, hr := range parseReport(t, second.stdout).Hosts {
		if hr.Status != run.StatusFailed || hr.FailedStep != run.StepPrepare ||
			!strings.Contains(hr.Error, "locked") || !strings.Contains(hr.Error, "another orchestrate run") {
			t.Errorf("second run host %s = %q at %q: %q, want failed at prepare, locked by another orchestrate run",
				hr.Destination, hr.Status, hr.FailedStep, hr.Error)
		}
		requireNoFreeze(t, hr)
	}
	if res.code != 0 {
		t.Errorf("first run exit code = %d, want 0", res.code)
	}
	for _, hr := range parseReport(t, res.stdout).Hosts {
		requireSucceeded(t, hr)
	}
	requireWritable(t, 5*time.Second)
}

// lockDir is the agent's lock directory for the filesystem at mount.
func lockDir(t *testing.T, mount string) string {
	t.Helper()
	out, err := exec.Command("mountpoint", "-d", mount).Output()
	if err != nil {
		t.Fatalf("mountpoint -d %s: %v", mount, err)
	}
	return "/run/orchestrate/fs." + strings.ReplaceAll(strings.TrimSpace(string(out)), ":", "_")
}

// deadPID returns the PID of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if syscall.Kill(pid, 0) == nil {
		t.Fatalf("pid %d of an exited process is alive again", pid)
	}
	return pid
}

func testProcStaleLockTakenOver(t *testing.T) {
	_, url := emulator(t)
	a0, a1 := world.hosts[0], world.hosts[1]
	l := lockDir(t, a0.fss[0].Mount)
	if _, err := os.Stat(l); err == nil {
		t.Fatalf("lock %s exists before the test", l)
	}
	if err := os.MkdirAll("/run/orchestrate", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(l, 0o700); err != nil {
		t.Fatal(err)
	}
	pid := deadPID(t)
	t.Cleanup(func() {
		if b, err := os.ReadFile(filepath.Join(l, "pid")); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(pid) {
			os.RemoveAll(l)
		}
	})
	if err := os.WriteFile(filepath.Join(l, "pid"), []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hostsFile := writeHostsFile(t, hostLine(a0, a0.addr), hostLine(a1, a1.addr))

	res := orchestrate(t, url, "--hosts", hostsFile, "--output", "json",
		"--freeze-timeout", procFreezeTimeout.String(), "--keepalive", procKeepalive.String())
	if res.code != 0 {
		t.Errorf("exit code = %d, want 0", res.code)
	}
	for _, hr := range parseReport(t, res.stdout).Hosts {
		requireSucceeded(t, hr)
	}
	if _, err := os.Stat(l); err == nil {
		t.Errorf("lock %s still there after the run, want taken over and released", l)
	}
	requireWritable(t, 5*time.Second)
}

func testProcAlreadyFrozenLeftAlone(t *testing.T) {
	_, url := emulator(t)
	two, other := world.hosts[2], world.hosts[0]
	mine, foreign := two.fss[0], two.fss[1]
	if out, err := exec.Command("fsfreeze", "-f", foreign.Mount).CombinedOutput(); err != nil {
		t.Fatalf("fsfreeze -f %s: %v: %s", foreign.Mount, err, out)
	}
	t.Cleanup(func() { foreign.Thaw() })
	hostsFile := writeHostsFile(t, hostLine(two, two.addr), hostLine(other, other.addr))

	res := orchestrate(t, url, "--hosts", hostsFile, "--output", "json",
		"--freeze-timeout", procFreezeTimeout.String(), "--keepalive", procKeepalive.String())
	if !mine.WriteProbe(time.Second) {
		t.Errorf("%s, frozen by the run before the busy one, is not writable after the run", mine.Mount)
	}
	if foreign.WriteProbe(300 * time.Millisecond) {
		t.Errorf("%s, frozen by someone else, was thawed by the run", foreign.Mount)
	}
	if res.code != 1 {
		t.Errorf("exit code = %d, want 1", res.code)
	}
	rep := parseReport(t, res.stdout)
	hr := hostByInstance(t, rep, two.instance)
	if hr.Status != run.StatusFailed || hr.FailedStep != run.StepFreeze ||
		!strings.Contains(hr.Error, "already frozen by someone else") || !strings.Contains(hr.Error, foreign.Mount) {
		t.Errorf("host %s = %q at %q: %q, want failed at freeze, %s already frozen by someone else",
			hr.Destination, hr.Status, hr.FailedStep, hr.Error, foreign.Mount)
	}
	requireSucceeded(t, hostByInstance(t, rep, other.instance))

	if err := foreign.Thaw(); err != nil {
		t.Fatal(err)
	}
	requireWritable(t, 5*time.Second)
}
