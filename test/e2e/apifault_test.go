package e2e

// This file holds the EC2 rows of the fault matrix: throttling, rate
// limits, server and permission errors, snapshots ending in error,
// latency beyond the freeze budget and a denied DryRun. Faults meant for
// the real call are armed from inside the first real CreateSnapshots, so
// the DryRuns of the preflight never see them; with --parallel 1 the
// second host gets the fault and the first proves the others unaffected.

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchestrate-dev/orchestrate/internal/ec2sim"
	"github.com/orchestrate-dev/orchestrate/internal/run"
)

func init() {
	register(
		scenario{Name: "APIThrottleRetried", Fault: "RequestLimitExceeded on the next 2 real CreateSnapshots calls",
			Step: "api-call", Expect: "retried within the freeze: both hosts succeeded, application; emulator shows the 2 throttled attempts; exit 0",
			Run: testAPIThrottleRetried},
		scenario{Name: "APIThrottleBeyondBudget", Fault: "RequestLimitExceeded on the next 50 real CreateSnapshots calls",
			Step: "api-call", Expect: "that host failed at snapshot naming the code, thawed within the freeze timeout; other succeeds; exit 1",
			Run: testAPIThrottleBeyondBudget},
		scenario{Name: "APIRateExceeded", Fault: "SnapshotCreationPerVolumeRateExceeded on CreateSnapshots",
			Step: "api-call", Expect: "that host failed at snapshot, message names the code; thawed; other succeeds; exit 1",
			Run: func(t *testing.T) { testAPIPermanentError(t, "SnapshotCreationPerVolumeRateExceeded") }},
		scenario{Name: "APIInternalErrorRetried", Fault: "InternalError on the next real CreateSnapshots call",
			Step: "api-call", Expect: "retried: both hosts succeeded, application; exit 0", Run: testAPIInternalErrorRetried},
		scenario{Name: "APIUnauthorized", Fault: "UnauthorizedOperation on CreateSnapshots (after a successful DryRun)",
			Step: "api-call", Expect: "that host failed at snapshot, message names UnauthorizedOperation and CreateSnapshots; thawed; other succeeds; exit 1",
			Run: func(t *testing.T) { testAPIPermanentError(t, "UnauthorizedOperation") }},
		scenario{Name: "APIVolumeNotFound", Fault: "InvalidVolume.NotFound on CreateSnapshots",
			Step: "api-call", Expect: "that host failed at snapshot, message names the code; thawed; other succeeds; exit 1",
			Run: func(t *testing.T) { testAPIPermanentError(t, "InvalidVolume.NotFound") }},
		scenario{Name: "APISnapshotErrorFailsWait", Fault: "a host's snapshot ends in state error, with --wait",
			Step: "wait", Expect: "that host failed at wait, thawed before it; other succeeds; exit 1", Run: testAPISnapshotErrorFailsWait},
		scenario{Name: "APILatencyBeyondFreezeTimeout", Fault: "CreateSnapshots takes 10s, --freeze-timeout 5s",
			Step: "api-call", Expect: "thawed within the freeze timeout; that host failed, never application; any snapshot of it tagged crash; other succeeds; exit 1",
			Run: testAPILatencyBeyondFreezeTimeout},
		scenario{Name: "APIDeniedBeforeFreeze", Fault: "CreateSnapshots denied by IAM (the preflight DryRun fails)",
			Step: "connect", Expect: "every host failed at preflight, never connected, nothing frozen; exit 1", Run: testAPIDeniedBeforeFreeze},
	)
}

// armOnFirstCall runs arm once, inside the first real CreateSnapshots
// call, and returns a func that tells which instance that call was for.
func armOnFirstCall(srv *ec2sim.Server, arm func()) func() string {
	var once sync.Once
	var mu sync.Mutex
	var first string
	srv.OnCreateSnapshots(func(ev ec2sim.CreateEvent) {
		once.Do(func() {
			mu.Lock()
			first = ev.InstanceID
			mu.Unlock()
			arm()
		})
	})
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return first
	}
}

// apiRun runs both test hosts one at a time and returns the result, the
// report, the host armed in the first call and the host after it.
func apiRun(t *testing.T, srv *ec2sim.Server, url string, first func() string, args ...string) (result, *run.Report, *run.HostReport, *run.HostReport) {
	t.Helper()
	a0, a1 := world.hosts[0], world.hosts[1]
	hostsFile := writeHostsFile(t, hostLine(a0, a0.addr), hostLine(a1, a1.addr))
	base := []string{"--hosts", hostsFile, "--output", "json", "--parallel", "1",
		"--keepalive", procKeepalive.String()}
	res := orchestrate(t, url, append(base, args...)...)
	rep := parseReport(t, res.stdout)
	if len(rep.Hosts) != 2 {
		t.Fatalf("report hosts = %d, want 2", len(rep.Hosts))
	}
	id := first()
	if id == "" {
		t.Fatalf("no real CreateSnapshots call arrived")
	}
	armed := hostByInstance(t, rep, id)
	other := rep.Hosts[0]
	if other == armed {
		other = rep.Hosts[1]
	}
	return res, rep, armed, other
}

// requireFailedAtSnapshotThawed checks a host that failed its
// CreateSnapshots call: failed at snapshot with code in the error, thawed
// cleanly, no snapshot of it application consistent.
func requireFailedAtSnapshotThawed(t *testing.T, hr *run.HostReport, code string) {
	t.Helper()
	if hr.Status != run.StatusFailed || hr.FailedStep != run.StepSnapshot || !strings.Contains(hr.Error, code) {
		t.Errorf("faulted host %s = %q at %q: %q, want failed at snapshot naming %s",
			hr.Destination, hr.Status, hr.FailedStep, hr.Error, code)
	}
	if !stepOK(hr, run.StepThaw) {
		t.Errorf("faulted host %s thaw step not ok: %+v", hr.Destination, hr.Steps)
	}
	if hr.Consistency == "application" {
		t.Errorf("faulted host %s consistency = application, want none", hr.Destination)
	}
}

func testAPIThrottleRetried(t *testing.T) {
	srv, url := emulator(t)
	first := armOnFirstCall(srv, func() { srv.FailNext("CreateSnapshots", 2, "RequestLimitExceeded") })

	// Two throttle backoffs (up to 1s and 2s) fit a 10s freeze easily.
	res, _, armed, other := apiRun(t, srv, url, first, "--freeze-timeout", "10s")
	if res.code != 0 {
		t.Errorf("exit code = %d, want 0", res.code)
	}
	requireSucceeded(t, armed)
	requireSucceeded(t, other)
	n, codes := realCreates(srv)
	throttled := strings.Count(strings.Join(codes, " "), "RequestLimitExceeded")
	if n != 4 || throttled != 2 {
		t.Errorf("real CreateSnapshots calls = %d with codes %q, want 4 (1 + 2 throttled + 1 retry that succeeded)", n, codes)
	}
	requireWritable(t, 5*time.Second)
}

func testAPIThrottleBeyondBudget(t *testing.T) {
	srv, url := emulator(t)
	first := armOnFirstCall(srv, func() { srv.FailNext("CreateSnapshots", 50, "RequestLimitExceeded") })

	const freezeTimeout = procFreezeTimeout
	res, _, armed, other := apiRun(t, srv, url, first, "--freeze-timeout", freezeTimeout.String())
	if res.code != 1 {
		t.Errorf("exit code = %d, want 1", res.code)
	}
	// The armed host's own call got through; the throttling hits the next.
	requireSucceeded(t, armed)
	requireFailedAtSnapshotThawed(t, other, "RequestLimitExceeded")
	if w := other.FreezeWindowMS; w == nil || *w > float64(freezeTimeout.Milliseconds()) {
		t.Errorf("throttled host freeze window = %v ms, want measured and within the freeze timeout %v", w, freezeTimeout)
	}
	requireWritable(t, 5*time.Second)
}

func testAPIInternalErrorRetried(t *testing.T) {
	srv, url := emulator(t)
	first := armOnFirstCall(srv, func() { srv.FailNext("CreateSnapshots", 1, "InternalError") })

	res, _, armed, other := apiRun(t, srv, url, first, "--freeze-timeout", procFreezeTimeout.String())
	if res.code != 0 {
		t.Errorf("exit code = %d, want 0", res.code)
	}
	requireSucceeded(t, armed)
	requireSucceeded(t, other)
	n, codes := realCreates(srv)
	if n != 3 || strings.Count(strings.Join(codes, " "), "InternalError") != 1 {
		t.Errorf("real CreateSnapshots calls = %d with codes %q, want 3 with one InternalError", n, codes)
	}
	requireWritable(t, 5*time.Second)
}

func testAPIPermanentError(t *testing.T, code string) {
	srv, url := emulator(t)
	first := armOnFirstCall(srv, func() { srv.FailNext("CreateSnapshots", 1, code) })

	res, _, armed, other := apiRun(t, srv, url, first, "--freeze-timeout", procFreezeTimeout.String())
	if res.code != 1 {
		t.Errorf("exit code = %d, want 1", res.code)
	}
	requireSucceeded(t, armed)
	requireFailedAtSnapshotThawed(t, other, code)
	if !strings.Contains(other.Error, "CreateSnapshots") {
		t.Errorf("faulted host error %q does not name the call CreateSnapshots", other.Error)
	}
	if code == "UnauthorizedOperation" && strings.Contains(other.Error, "DecodedMessage") {
		t.Errorf("faulted host error %q shows a decoded authorization message, want it left encoded", other.Error)
	}
	if n, codes := realCreates(srv); n != 2 {
		t.Errorf("real CreateSnapshots calls = %d with codes %q, want 2 (a %s is not retried)", n, codes, code)
	}
	requireWritable(t, 5*time.Second)
}

func testAPISnapshotErrorFailsWait(t *testing.T) {
	srv, url := emulator(t)
	a0, a1 := world.hosts[0], world.hosts[1]
	srv.FailSnapshotsOf(a0.vols[0])
	hostsFile := writeHostsFile(t, hostLine(a0, a0.addr), hostLine(a1, a1.addr))

	res := orchestrate(t, url, "--hosts", hostsFile, "--output", "json", "--wait",
		"--freeze-timeout", procFreezeTimeout.String(), "--keepalive", procKeepalive.String())
	if res.code != 1 {
		t.Errorf("exit code = %d, want 1", res.code)
	}
	rep := parseReport(t, res.stdout)
	hr := hostByInstance(t, rep, a0.instance)
	if hr.Status != run.StatusFailed || hr.FailedStep != run.StepWait {
		t.Errorf("host %s = %q at %q: %q, want failed at wait", hr.Destination, hr.Status, hr.FailedStep, hr.Error)
	}
	if !stepOK(hr, run.StepThaw) {
		t.Errorf("host %s thaw step not ok: %+v", hr.Destination, hr.Steps)
	}
	if !strings.Contains(hr.Error, "error") {
		t.Errorf("host %s error %q does not say the snapshot is in state error", hr.Destination, hr.Error)
	}
	requireSucceeded(t, hostByInstance(t, rep, a1.instance))
	requireWritable(t, 5*time.Second)
}

func testAPILatencyBeyondFreezeTimeout(t *testing.T) {
	srv, url := emulator(t)
	const freezeTimeout, latency = 5 * time.Second, 10 * time.Second
	first := armOnFirstCall(srv, func() { srv.SetLatency("CreateSnapshots", latency) })

	start := time.Now()
	res, rep, armed, other := apiRun(t, srv, url, first, "--freeze-timeout", freezeTimeout.String())
	t.Logf("run took %v", time.Since(start))
	requireWritable(t, 5*time.Second)
	if res.code != 1 {
		t.Errorf("exit code = %d, want 1", res.code)
	}
	requireSucceeded(t, armed)
	if other.Status == run.StatusSucceeded || other.Consistency == "application" {
		t.Errorf("slow host %s = %q consistency %q, want failed, not application", other.Destination, other.Status, other.Consistency)
	}
	if w := other.FreezeWindowMS; w == nil || *w > float64(freezeTimeout.Milliseconds()) {
		t.Errorf("slow host freeze window = %v ms, want measured and within the freeze timeout %v", w, freezeTimeout)
	}

	// Wait for the emulator to finish the slow call, then look at what it
	// made: nothing, or snapshots not tagged application.
	deadline := time.Now().Add(latency + 3*time.Second)
	for time.Now().Before(deadline) {
		done := true
		for _, c := range srv.Calls() {
			if c.Action == "CreateSnapshots" && !c.DryRun && c.Code == "" && c.Time.After(start) {
				done = done && time.Since(c.Time) > latency+time.Second
			}
		}
		if done {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	runSnapshotsOfNotApplication(t, srv, rep.RunID, other.InstanceID)
}

func testAPIDeniedBeforeFreeze(t *testing.T) {
	srv, url := emulator(t)
	srv.Deny("CreateSnapshots")
	c0, c1 := newCountingListener(t), newCountingListener(t)
	hostsFile := writeHostsFile(t, hostLine(world.hosts[0], c0.addr), hostLine(world.hosts[1], c1.addr))

	res := orchestrate(t, url, "--hosts", hostsFile, "--output", "json",
		"--freeze-timeout", procFreezeTimeout.String(), "--keepalive", procKeepalive.String())
	if res.code != 1 {
		t.Errorf("exit code = %d, want 1", res.code)
	}
	for _, hr := range parseReport(t, res.stdout).Hosts {
		if hr.Status != run.StatusFailed || hr.FailedStep != run.StepPreflight ||
			!strings.Contains(hr.Error, "UnauthorizedOperation") {
			t.Errorf("host %s = %q at %q: %q, want failed at preflight naming UnauthorizedOperation",
				hr.Destination, hr.Status, hr.FailedStep, hr.Error)
		}
		requireNoFreeze(t, hr)
	}
	if n := c0.count() + c1.count(); n != 0 {
		t.Errorf("SSH connections attempted = %d, want 0", n)
	}
	if n, _ := realCreates(srv); n != 0 {
		t.Errorf("real CreateSnapshots calls = %d, want 0", n)
	}
	requireWritable(t, 5*time.Second)
}
