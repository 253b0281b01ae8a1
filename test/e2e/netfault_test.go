package e2e

// The network-fault rows of the reliability matrix: the SSH connection of
// one host is cut, stalled or slowed at each step of its pipeline, while a
// second host, reached directly, runs alongside. Each row asserts where
// the faulted host ends, that every filesystem takes writes again in time,
// that the other host is unaffected, and the exit code.

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchestrate-dev/orchestrate/internal/ec2sim"
	"github.com/orchestrate-dev/orchestrate/internal/run"
	"github.com/orchestrate-dev/orchestrate/internal/snapshot"
	"github.com/orchestrate-dev/orchestrate/test/rig"
)

const (
	netFreezeTimeout = 6 * time.Second
	netKeepalive     = 500 * time.Millisecond
	netSlowDelay     = 50 * time.Millisecond // per chunk; must still succeed
	// netCutThawBound is how soon a cut must thaw: the agent reads end of
	// input at once.
	netCutThawBound = 3 * time.Second
	// netStallThawBound is how soon a stall must thaw: the agent's own
	// deadline, at worst its watchdog's, plus slack for a busy machine.
	netStallThawBound = netFreezeTimeout + 2*time.Second + 1500*time.Millisecond
	// netConnectTimeout bounds a stalled connect.
	netConnectTimeout = 2 * time.Second
)

// netSteps are the moments a fault is injected, in pipeline order, with
// what the fault models there.
var netSteps = []struct{ step, name, when string }{
	{"connect", "Connect", "at accept, before SSH"},
	{"prepare", "Prepare", "once the agent has started, before READY reaches orchestrate"},
	{"freeze", "Freeze", "once the mount is frozen, before FROZE reaches orchestrate"},
	{"api-call", "APICall", "while CreateSnapshots is being handled"},
	{"after-api", "AfterAPI", "once CreateSnapshots is answered: THAW is never delivered"},
	{"thaw", "Thaw", "once CreateSnapshots is answered: THAW is delivered, its answer lost"},
}

var netFaults = []struct{ fault, name, what string }{
	{"cut", "Cut", "SSH connection cut (both sides closed)"},
	{"stall", "Stall", "SSH connection stalled (nothing forwarded, nothing closed)"},
	{"slow", "Slow", "SSH connection slowed by " + netSlowDelay.String() + " per chunk"},
}

func init() {
	for _, f := range netFaults {
		for _, s := range netSteps {
			fault, step := f.fault, s.step
			register(scenario{
				Name:   "Net" + f.name + "At" + s.name,
				Fault:  f.what + ", " + s.when,
				Step:   step,
				Expect: netExpect(fault, step),
				Run:    func(t *testing.T) { runNetFault(t, fault, step) },
			})
		}
	}
	register(scenario{
		Name:  "NetStallDetectedByKeepalive",
		Fault: "SSH connection stalled once frozen, --keepalive 500ms, --freeze-timeout 10s",
		Step:  "freeze",
		Expect: "orchestrate closes the connection within 4 keepalive intervals + 1s " +
			"(well before its own 8s freeze deadline); this host thaw_unconfirmed; " +
			"other succeeds; exit 3",
		Run: testNetStallDetectedByKeepalive,
	})
}

// netExpect states the final state runNetFault asserts for fault at step.
func netExpect(fault, step string) string {
	other := "; other succeeds"
	switch {
	case fault == "slow":
		return "both hosts succeed, application-consistent; exit 0"
	case step == "connect" && fault == "cut":
		return "this host failed at connect, nothing frozen, no CreateSnapshots" + other + "; exit 1"
	case step == "connect":
		return "this host failed at connect within --connect-timeout (2s) + 1.5s, " +
			"nothing frozen, no CreateSnapshots" + other + "; exit 1"
	case step == "prepare" && fault == "cut":
		return "this host failed at prepare, nothing frozen, its agent gone within 3s" +
			other + "; exit 1"
	case step == "prepare":
		return "this host failed at prepare, nothing frozen; its agent gives up " +
			"(lock freed) within --freeze-timeout + 1.5s though the stall goes on" +
			other + "; exit 1"
	}
	thawed := "thawed within 3s of the cut"
	if fault == "stall" {
		thawed = "thawed within freeze-timeout + 2s + 1.5s"
	}
	at := "thaw, snapshots crash-consistent (report and tag)"
	if step == "freeze" {
		at = "freeze, no snapshot"
	}
	return thawed + "; this host thaw_unconfirmed at " + at + other +
		"; exit 3, THAW NOT CONFIRMED on stderr"
}

// netRig is one network-fault run: a faulted host behind a proxy, a
// clean one reached directly, and the emulator.
type netRig struct {
	bad, good *testHost
	srv       *ec2sim.Server
	url       string
	px        *proxy
	kh        string

	mu       sync.Mutex
	creates  map[string]int // real CreateSnapshots calls per instance
	onCreate func(ec2sim.CreateEvent)
	answered func(instanceID string)
}

// newNetRig sets up the proxy and the emulator. Its cleanup, which runs
// after the proxy's, waits for this test's agents to end so that the next
// test finds no lock taken.
func newNetRig(t *testing.T) *netRig {
	t.Helper()
	t.Cleanup(func() {
		if !waitAgentsGone(netFreezeTimeout + 4*time.Second) {
			t.Errorf("an agent of this test is still alive %v after the proxy closed",
				netFreezeTimeout+4*time.Second)
		}
	})
	nr := &netRig{bad: world.hosts[0], good: world.hosts[1], creates: map[string]int{}}
	nr.srv, nr.url = netEmulator(t, nr.afterAnswer)
	nr.srv.OnCreateSnapshots(func(ev ec2sim.CreateEvent) {
		nr.mu.Lock()
		nr.creates[ev.InstanceID]++
		fn := nr.onCreate
		nr.mu.Unlock()
		if fn != nil {
			fn(ev)
		}
	})
	nr.px = newProxy(t, net.JoinHostPort(nr.bad.addr, strconv.Itoa(world.sshd.Port)))
	nr.kh = knownHostsWith(t, nr.px.addr())
	return nr
}

func (nr *netRig) afterAnswer(instanceID string) {
	nr.mu.Lock()
	fn := nr.answered
	nr.mu.Unlock()
	if fn != nil {
		fn(instanceID)
	}
}

func (nr *netRig) createsOf(instanceID string) int {
	nr.mu.Lock()
	defer nr.mu.Unlock()
	return nr.creates[instanceID]
}

// run runs orchestrate on both hosts, the faulted one through the proxy.
func (nr *netRig) run(t *testing.T, extra ...string) result {
	t.Helper()
	hostsFile := writeHostsFile(t, hostLine(nr.bad, nr.px.addr()),
		hostLine(nr.good, nr.good.addr))
	args := append([]string{"--hosts", hostsFile, "--known-hosts", nr.kh,
		"--keepalive", netKeepalive.String(), "--output", "json"}, extra...)
	return orchestrate(t, nr.url, args...)
}

// netEmulator starts an emulator whose handler calls answered with the
// instance ID after it has answered each real (not DryRun)
// CreateSnapshots, before the answer leaves the server.
func netEmulator(t *testing.T, answered func(instanceID string)) (*ec2sim.Server, string) {
	t.Helper()
	srv, err := ec2sim.New(fixture(), ec2sim.Options{SnapshotDir: t.TempDir(),
		CompleteAfter: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		srv.ServeHTTP(w, r)
		form, _ := url.ParseQuery(string(body))
		if form.Get("Action") == "CreateSnapshots" && !strings.EqualFold(form.Get("DryRun"), "true") {
			answered(form.Get("InstanceSpecification.InstanceId"))
		}
	}))
	t.Cleanup(ts.Close)
	return srv, ts.URL
}

// runNetFault injects fault into the faulted host's connection at step and
// asserts the final state netExpect states.
func runNetFault(t *testing.T, fault, step string) {
	nr := newNetRig(t)
	px, bad := nr.px, nr.bad
	do := map[string]func(){
		"cut":   px.cut,
		"stall": px.stall,
		"slow":  func() { px.slow(netSlowDelay) },
	}[fault]

	var tr *trigger
	switch step {
	case "connect":
		if fault == "cut" {
			do = px.cutOnAccept
		}
		tr = newTrigger(do)
		tr.fire(0)
	case "prepare":
		mount := bad.fss[0].Mount
		tr = onChunk(toClient, insteadOfChunk, func() bool { return agentStartedNotFrozen(mount) }, do)
		px.arm(tr)
	case "freeze":
		mount := bad.fss[0].Mount
		tr = onChunk(toClient, insteadOfChunk, func() bool { return mountFrozenByAgent(mount) }, do)
		px.arm(tr)
	case "api-call":
		tr = newTrigger(do)
		nr.onCreate = func(ev ec2sim.CreateEvent) {
			if ev.InstanceID == bad.instance {
				tr.fire(0)
			}
		}
	case "after-api", "thaw":
		when := insteadOfChunk
		if step == "thaw" {
			when = afterChunk
		}
		tr = onChunk(toServer, when, nil, do)
		nr.answered = func(id string) {
			if id == bad.instance {
				px.arm(tr)
			}
		}
	}

	bound := netCutThawBound
	if fault == "stall" {
		bound = netStallThawBound
	}
	thawed := watchThaw(tr, bad.fss[0], bound)
	connectTimeout := 5 * time.Second
	if step == "connect" && fault != "slow" {
		connectTimeout = netConnectTimeout
	}
	res := nr.run(t, "--freeze-timeout", netFreezeTimeout.String(),
		"--connect-timeout", connectTimeout.String())
	ended := time.Now()

	// The fault fired, and the faulted filesystem was writable again in
	// time from that moment.
	at, fired := tr.firedAt()
	if !fired {
		t.Fatalf("the %s fault at %s never fired: the trigger did not match", fault, step)
	}
	t.Logf("fault fired on a chunk of %d bytes; orchestrate ended %v after it",
		tr.size, ended.Sub(at).Round(time.Millisecond))
	if closed, ok := px.clientClosedAt(); ok && fault == "stall" {
		t.Logf("orchestrate closed the stalled connection %v after the stall",
			closed.Sub(at).Round(time.Millisecond))
	}
	if d := <-thawed; d < 0 {
		t.Errorf("%s still not writable %v after the fault, want writable within %v",
			bad.fss[0].Mount, bound, bound)
	} else {
		t.Logf("%s writable %v after the fault", bad.fss[0].Mount, d.Round(time.Millisecond))
	}
	requireWritable(t, 2*time.Second)

	rep := parseReport(t, res.stdout)
	good, faulted := nr.hostReports(t, rep)
	if good != nil && (good.Status != run.StatusSucceeded ||
		good.Consistency != snapshot.ConsistencyApplication) {
		t.Errorf("clean host %s: status %q consistency %q error %q, want succeeded application",
			good.Destination, good.Status, good.Consistency, good.Error)
	}
	if faulted == nil {
		return
	}

	switch {
	case fault == "slow":
		nr.expectSucceeded(t, res, faulted)
	case step == "connect" || step == "prepare":
		nr.expectFailedUnfrozen(t, res, faulted, step)
		if step == "connect" && fault == "stall" {
			d := stepDuration(faulted, run.StepConnect)
			if d > netConnectTimeout+1500*time.Millisecond {
				t.Errorf("stalled connect failed after %v, want within --connect-timeout %v + 1.5s",
					d, netConnectTimeout)
			}
		}
		if step == "prepare" {
			nr.expectAgentGone(t, fault, at)
		}
	default:
		wantStep := run.StepThaw
		if step == "freeze" {
			wantStep = run.StepFreeze
		}
		nr.expectUnconfirmed(t, res, faulted, wantStep)
	}
}

// watchThaw waits for tr to fire, then for fs to take a write, and sends
// how long that took, or -1 if it did not within bound. It sends -1 at
// once if tr has not fired within two minutes.
func watchThaw(tr *trigger, fs *rig.FS, bound time.Duration) <-chan time.Duration {
	out := make(chan time.Duration, 1)
	go func() {
		select {
		case <-tr.fired:
		case <-time.After(2 * time.Minute):
			out <- -1
			return
		}
		at, _ := tr.firedAt()
		for time.Since(at) < bound {
			if fs.WriteProbe(250 * time.Millisecond) {
				out <- time.Since(at)
				return
			}
		}
		out <- -1
	}()
	return out
}

// hostReports returns the clean host's report and the faulted host's.
func (nr *netRig) hostReports(t *testing.T, rep *run.Report) (good, bad *run.HostReport) {
	t.Helper()
	for _, hr := range rep.Hosts {
		switch hr.InstanceID {
		case nr.good.instance:
			good = hr
		case nr.bad.instance:
			bad = hr
		}
	}
	if good == nil || bad == nil || len(rep.Hosts) != 2 {
		t.Errorf("report has %d hosts (clean found %v, faulted found %v), want both",
			len(rep.Hosts), good != nil, bad != nil)
	}
	return good, bad
}

func (nr *netRig) expectSucceeded(t *testing.T, res result, hr *run.HostReport) {
	t.Helper()
	if res.code != 0 {
		t.Errorf("exit code = %d, want 0", res.code)
	}
	if hr.Status != run.StatusSucceeded || hr.Consistency != snapshot.ConsistencyApplication {
		t.Errorf("slowed host: status %q consistency %q error %q, want succeeded application",
			hr.Status, hr.Consistency, hr.Error)
	}
}

// expectFailedUnfrozen checks a host that failed at step before anything
// was frozen on it.
func (nr *netRig) expectFailedUnfrozen(t *testing.T, res result, hr *run.HostReport, step string) {
	t.Helper()
	if res.code != 1 {
		t.Errorf("exit code = %d, want 1", res.code)
	}
	if hr.Status != run.StatusFailed || hr.FailedStep != step {
		t.Errorf("faulted host: status %q failed_step %q error %q, want failed at %s",
			hr.Status, hr.FailedStep, hr.Error, step)
	}
	for _, s := range hr.Steps {
		if s.Name == run.StepFreeze {
			t.Errorf("faulted host has a freeze step: %+v", s)
		}
	}
	if hr.FreezeWindowMS != nil {
		t.Errorf("faulted host freeze window = %v, want none", *hr.FreezeWindowMS)
	}
	if n := nr.createsOf(nr.bad.instance); n != 0 {
		t.Errorf("CreateSnapshots calls for the faulted instance = %d, want 0", n)
	}
}

// expectAgentGone checks that the faulted host's agent, which was started,
// ends on its own: at once after a cut (end of input); within the freeze
// timeout after a stall, though the connection stays silent and open (the
// agent gives up when FREEZE does not come), so its lock is free again.
func (nr *netRig) expectAgentGone(t *testing.T, fault string, at time.Time) {
	t.Helper()
	limit := netCutThawBound
	if fault == "stall" {
		limit = netFreezeTimeout + 1500*time.Millisecond
	}
	mount := nr.bad.fss[0].Mount
	for len(liveAgents(mount)) > 0 && time.Since(at) < limit {
		time.Sleep(50 * time.Millisecond)
	}
	if a := liveAgents(mount); len(a) > 0 {
		t.Errorf("agent pid %d for %s still alive %v after the %s at prepare, "+
			"want it gone (and its lock freed) within %v",
			a[0].pid, mount, time.Since(at).Round(time.Millisecond), fault, limit)
	}
}

// expectUnconfirmed checks a host whose connection was lost after FREEZE
// was sent: its thaw cannot be confirmed, and whatever snapshots it got are
// never application-consistent, in the report and in their tags.
func (nr *netRig) expectUnconfirmed(t *testing.T, res result, hr *run.HostReport, step string) {
	t.Helper()
	if res.code != 3 {
		t.Errorf("exit code = %d, want 3 (thaw could not be confirmed)", res.code)
	}
	if !strings.Contains(res.stderr, "THAW NOT CONFIRMED") {
		t.Errorf("stderr does not say THAW NOT CONFIRMED:\n%s", res.stderr)
	}
	if hr.Status != run.StatusThawUnconfirmed || hr.FailedStep != step {
		t.Errorf("faulted host: status %q failed_step %q error %q, want thaw_unconfirmed at %s",
			hr.Status, hr.FailedStep, hr.Error, step)
	}
	if hr.Consistency == snapshot.ConsistencyApplication {
		t.Errorf("faulted host consistency = %q, want never application", hr.Consistency)
	}
	if len(hr.Snapshots) > 0 && hr.Consistency != snapshot.ConsistencyCrash {
		t.Errorf("faulted host has %d snapshots with consistency %q, want crash",
			len(hr.Snapshots), hr.Consistency)
	}
	if n := nr.createsOf(nr.bad.instance); n > 1 {
		t.Errorf("CreateSnapshots calls for the faulted instance = %d, want at most 1", n)
	}
	for _, s := range nr.srv.Snapshots() {
		if s.Tags[snapshot.TagInstanceID] == nr.bad.instance &&
			s.Tags[snapshot.TagConsistency] != snapshot.ConsistencyCrash {
			t.Errorf("snapshot %s of the faulted host is tagged %s=%q, want crash",
				s.ID, snapshot.TagConsistency, s.Tags[snapshot.TagConsistency])
		}
	}
}

func stepDuration(hr *run.HostReport, name string) time.Duration {
	for _, s := range hr.Steps {
		if s.Name == name {
			return time.Duration(s.DurationMS * float64(time.Millisecond))
		}
	}
	return 0
}

// testNetStallDetectedByKeepalive stalls the connection once the host is
// frozen, with a freeze timeout long enough that only the keepalive can
// end orchestrate's wait for FROZE early, and measures how long the
// client takes to give the silent connection up.
func testNetStallDetectedByKeepalive(t *testing.T) {
	const freezeTimeout = 10 * time.Second
	nr := newNetRig(t)
	mount := nr.bad.fss[0].Mount
	tr := onChunk(toClient, insteadOfChunk, func() bool { return mountFrozenByAgent(mount) }, nr.px.stall)
	nr.px.arm(tr)

	res := nr.run(t, "--freeze-timeout", freezeTimeout.String(), "--connect-timeout", "5s")
	at, fired := tr.firedAt()
	if !fired {
		t.Fatalf("the stall never fired: no agent listed %s as frozen", mount)
	}
	closed, ok := nr.px.clientClosedAt()
	bound := 4*netKeepalive + time.Second
	switch {
	case !ok:
		t.Errorf("orchestrate never closed the stalled connection, want within %v", bound)
	case closed.Sub(at) > bound:
		t.Errorf("orchestrate closed the stalled connection %v after the stall, want within %v "+
			"(3 unanswered keepalives at %v)", closed.Sub(at).Round(time.Millisecond), bound, netKeepalive)
	default:
		t.Logf("keepalive detected the stall in %v (bound %v)", closed.Sub(at).Round(time.Millisecond), bound)
	}

	// The agent is still frozen behind the stall: ending the connection
	// makes it thaw now rather than at its deadline.
	nr.px.cut()
	requireWritable(t, netCutThawBound)

	rep := parseReport(t, res.stdout)
	good, faulted := nr.hostReports(t, rep)
	if good != nil && good.Status != run.StatusSucceeded {
		t.Errorf("clean host status %q error %q, want succeeded", good.Status, good.Error)
	}
	if faulted != nil && faulted.Status != run.StatusThawUnconfirmed {
		t.Errorf("faulted host status %q error %q, want thaw_unconfirmed", faulted.Status, faulted.Error)
	}
	if faulted != nil {
		t.Logf("faulted host error: %s", faulted.Error)
	}
	if res.code != 3 {
		t.Errorf("exit code = %d, want 3", res.code)
	}
}
