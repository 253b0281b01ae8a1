package run

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchestrate-dev/orchestrate/internal/hosts"
	"github.com/orchestrate-dev/orchestrate/internal/snapshot"
	"github.com/orchestrate-dev/orchestrate/internal/sshexec"
)

// events is a shared, ordered log of what the fakes saw.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(format string, args ...any) {
	e.mu.Lock()
	e.log = append(e.log, fmt.Sprintf(format, args...))
	e.mu.Unlock()
}

func (e *events) index(s string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, l := range e.log {
		if l == s {
			return i
		}
	}
	return -1
}

// fakeAgent speaks the agent's protocol for one host.
type fakeAgent struct {
	ev         *events
	name       string
	failFreeze bool
	expire     bool          // thaw on its own right after freezing, as at a deadline
	hangThaw   bool          // never answer the thaw
	closed     chan struct{} // closed by Close, as a real connection ends
	closeOnce  sync.Once
}

func (a *fakeAgent) Exec(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	say := func(s string) { io.WriteString(stdout, s+"\n") }
	in := bufio.NewScanner(stdin)
	say("a login banner the driver must ignore")
	_, rest, _ := strings.Cut(cmd, "'orchestrate-agent' '")
	nonce, _, _ := strings.Cut(rest, "'")
	say("HELLO 1 " + nonce + " 42 0")
	say("CHECKED 1")
	say("READY")
	if !in.Scan() || in.Text() != "FREEZE" {
		say("DONE eof")
		return nil
	}
	if a.failFreeze {
		say("ERR freeze 0 fsfreeze: Operation not supported")
		say("DONE freeze-failed")
		return nil
	}
	a.ev.add("freeze %s", a.name)
	say("FROZEN 0 1")
	say("FROZE 2")
	if a.expire {
		a.ev.add("thaw %s", a.name)
		say("THAWED 0 3")
		say("WINDOW 5000000")
		say("DONE deadline")
		return nil
	}
	reason := "eof"
	if in.Scan() && in.Text() == "THAW" {
		reason = "thaw"
	}
	if a.hangThaw {
		<-a.closed
		return errors.New("connection closed")
	}
	a.ev.add("thaw %s", a.name)
	say("THAWED 0 3")
	say("WINDOW 1500")
	say("DONE " + reason)
	return nil
}

func (a *fakeAgent) User() string { return "root" }
func (a *fakeAgent) Close() error {
	if a.closed != nil {
		a.closeOnce.Do(func() { close(a.closed) })
	}
	return nil
}

// fakeEC2 plans for real and records the calls; create can be slowed or
// failed per instance.
type fakeEC2 struct {
	ev        *events
	createErr map[string]error
	block     map[string]chan struct{} // Create waits on it
	tagged    map[string]map[string]string
	mu        sync.Mutex
	// unknownOutcome makes the next Create on an instance fail with an
	// unknown outcome; with createAnyway the set is made all the same.
	unknownOutcome map[string]bool
	createAnyway   bool
	made           []snapshot.Snapshot // what Create made, for FindByTag
	lateAfterThaw  []snapshot.Snapshot // made visible once h1 has thawed
	creates        int
}

func (f *fakeEC2) FindByTag(_ context.Context, _, key, value string) ([]snapshot.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if key != snapshot.TagRunID || value != "run-1" {
		return nil, fmt.Errorf("unexpected tag %s=%s", key, value)
	}
	if len(f.lateAfterThaw) > 0 && f.ev.index("thaw h1") >= 0 {
		f.made = append(f.made, f.lateAfterThaw...)
		f.lateAfterThaw = nil
	}
	return append([]snapshot.Snapshot(nil), f.made...), nil
}

func (f *fakeEC2) Credentials(context.Context) error { return nil }
func (f *fakeEC2) DefaultRegion() string             { return "us-east-1" }

func (f *fakeEC2) Describe(_ context.Context, region string, ids []string) (map[string]snapshot.Instance, error) {
	out := map[string]snapshot.Instance{}
	for _, id := range ids {
		out[id] = snapshot.Instance{ID: id, Region: region, State: "running",
			RootDeviceName: "/dev/xvda", Volumes: []snapshot.AttachedVolume{
				{VolumeID: "vol-0000000" + id[len(id)-1:], DeviceName: "/dev/xvda", Status: "attached", Root: true},
				{VolumeID: "vol-1111111" + id[len(id)-1:], DeviceName: "/dev/sdf", Status: "attached"}}}
	}
	return out, nil
}

func (f *fakeEC2) DryRun(context.Context, *snapshot.Request) error { return nil }

func (f *fakeEC2) Find(context.Context, string, map[string][]string) ([]snapshot.Instance, error) {
	return nil, nil
}

func (f *fakeEC2) Create(ctx context.Context, r *snapshot.Request) ([]snapshot.Snapshot, error) {
	f.ev.add("create %s", r.InstanceID)
	if ch := f.block[r.InstanceID]; ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err := f.createErr[r.InstanceID]; err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates++
	var out []snapshot.Snapshot
	for _, v := range r.Volumes {
		out = append(out, snapshot.Snapshot{ID: fmt.Sprintf("snap-%s-%d", v[4:], f.creates),
			VolumeID: v, State: "pending"})
	}
	if f.unknownOutcome[r.InstanceID] {
		delete(f.unknownOutcome, r.InstanceID)
		if f.createAnyway {
			f.made = append(f.made, out...)
		}
		return nil, fmt.Errorf("snapshot: CreateSnapshots: connection reset: %w",
			snapshot.ErrOutcomeUnknown)
	}
	f.made = append(f.made, out...)
	return out, nil
}

func (f *fakeEC2) Wait(context.Context, string, []string, snapshot.WaitOptions,
	func([]snapshot.Snapshot)) ([]snapshot.Snapshot, error) {
	return nil, nil
}

func (f *fakeEC2) Tag(_ context.Context, _ string, ids []string, tags map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		f.tagged[id] = tags
	}
	return nil
}

// fleet makes n hosts named h1..hn with instances i-0000000N.
func fleet(n int) []hosts.Host {
	var hs []hosts.Host
	for i := 1; i <= n; i++ {
		hs = append(hs, hosts.Host{Line: i, Destination: fmt.Sprintf("h%d", i),
			Addr: fmt.Sprintf("h%d", i), InstanceID: fmt.Sprintf("i-0000000%d", i),
			Mounts: []string{"/data"}, Volumes: []string{fmt.Sprintf("vol-1111111%d", i)}})
	}
	return hs
}

func testConfig(ev *events, ec2 *fakeEC2, agents map[string]*fakeAgent, n int) Config {
	return Config{
		RunID: "run-1", Hosts: fleet(n), EC2: ec2, FreezeTimeout: 5 * time.Second,
		VerifyIdentity: "off", // the fake agent speaks only the freeze protocol
		ThawTimeout:    500 * time.Millisecond,
		Dial: func(_ context.Context, t sshexec.Target) (Conn, error) {
			if a, ok := agents[t.Name]; ok {
				return a, nil
			}
			return &fakeAgent{ev: ev, name: t.Name}, nil
		},
	}
}

func newFakes() (*events, *fakeEC2) {
	ev := &events{}
	return ev, &fakeEC2{ev: ev, createErr: map[string]error{},
		block: map[string]chan struct{}{}, tagged: map[string]map[string]string{},
		unknownOutcome: map[string]bool{}}
}

func TestRunThawsAfterCreateReturns(t *testing.T) {
	ev, ec2 := newFakes()
	rep, err := Run(context.Background(), testConfig(ev, ec2, nil, 3))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != StatusSucceeded || rep.ExitCode() != 0 {
		t.Fatalf("status = %s (exit %d), want succeeded (0)", rep.Status, rep.ExitCode())
	}
	for i, h := range rep.Hosts {
		f, c, th := ev.index("freeze "+h.Destination), ev.index("create "+h.InstanceID),
			ev.index("thaw "+h.Destination)
		if !(f >= 0 && f < c && c < th) {
			t.Errorf("host %d events freeze/create/thaw at %d/%d/%d, want in that order", i, f, c, th)
		}
		if h.Consistency != snapshot.ConsistencyApplication || len(h.Snapshots) != 1 {
			t.Errorf("host %s consistency %q snapshots %v, want application and 1",
				h.Destination, h.Consistency, h.Snapshots)
		}
		if got := ec2.tagged[h.Snapshots[0].SnapshotID][snapshot.TagConsistency]; got != "application" {
			t.Errorf("host %s snapshot re-tagged %q after the thaw, want application", h.Destination, got)
		}
		if h.FreezeWindowMS == nil || *h.FreezeWindowMS != 1.5 {
			t.Errorf("host %s freeze window = %v, want 1.5ms from the agent", h.Destination, h.FreezeWindowMS)
		}
	}
}

func TestSlowHostDoesNotDelayAnotherThaw(t *testing.T) {
	ev, ec2 := newFakes()
	release := make(chan struct{})
	ec2.block["i-00000001"] = release
	done := make(chan *Report)
	go func() {
		rep, _ := Run(context.Background(), testConfig(ev, ec2, nil, 2))
		done <- rep
	}()

	// h2 must thaw while h1's CreateSnapshots is still held.
	deadline := time.Now().Add(3 * time.Second)
	for ev.index("thaw h2") < 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if ev.index("thaw h2") < 0 {
		t.Fatal("h2 was not thawed while h1's snapshot call was held")
	}
	if ev.index("thaw h1") >= 0 {
		t.Fatal("h1 thawed before its snapshot call returned")
	}
	close(release)
	if rep := <-done; rep.Status != StatusSucceeded {
		t.Errorf("status = %s, want succeeded", rep.Status)
	}
}

func TestOutcomes(t *testing.T) {
	tests := []struct {
		name        string
		agent       *fakeAgent
		createErr   error
		status      string
		step        string
		consistency string
		exit        int
	}{
		{"CreateFails", nil, errors.New("snapshot: CreateSnapshots: UnauthorizedOperation"),
			StatusFailed, StepSnapshot, "", 1},
		{"FreezeFails", &fakeAgent{failFreeze: true}, nil, StatusFailed, StepFreeze, "", 1},
		{"AgentThawedFirst", &fakeAgent{expire: true}, nil, StatusFailed, StepThaw,
			snapshot.ConsistencyCrash, 1},
		{"ThawUnconfirmed", &fakeAgent{hangThaw: true}, nil, StatusThawUnconfirmed,
			StepThaw, snapshot.ConsistencyCrash, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, ec2 := newFakes()
			agents := map[string]*fakeAgent{}
			if tt.agent != nil {
				tt.agent.ev, tt.agent.name = ev, "h1"
				tt.agent.closed = make(chan struct{})
				agents["h1"] = tt.agent
			}
			if tt.createErr != nil {
				ec2.createErr["i-00000001"] = tt.createErr
			}
			rep, err := Run(context.Background(), testConfig(ev, ec2, agents, 2))
			if err != nil {
				t.Fatal(err)
			}
			h1, h2 := rep.Hosts[0], rep.Hosts[1]
			if h1.Status != tt.status || h1.FailedStep != tt.step || h1.Consistency != tt.consistency {
				t.Errorf("h1 = %s at %q consistency %q, want %s at %q consistency %q",
					h1.Status, h1.FailedStep, h1.Consistency, tt.status, tt.step, tt.consistency)
			}
			if h2.Status != StatusSucceeded {
				t.Errorf("h2 = %s (%s), want succeeded", h2.Status, h2.Error)
			}
			if rep.ExitCode() != tt.exit {
				t.Errorf("exit code = %d, want %d", rep.ExitCode(), tt.exit)
			}
			if tt.consistency == snapshot.ConsistencyCrash && !tt.agent.hangThaw {
				if got := ec2.tagged[h1.Snapshots[0].SnapshotID][snapshot.TagConsistency]; got != "crash" {
					t.Errorf("h1 snapshot re-tagged %q, want crash", got)
				}
			}
			if !tt.agent.orNil().failFreeze && ev.index("thaw h1") < 0 && !tt.agent.orNil().hangThaw {
				t.Errorf("h1 was never thawed: %v", ev.log)
			}
		})
	}
}

func (a *fakeAgent) orNil() *fakeAgent {
	if a == nil {
		return &fakeAgent{}
	}
	return a
}

func TestCancelBeforeFreezeFreezesNothing(t *testing.T) {
	ev, ec2 := newFakes()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep, err := Run(ctx, testConfig(ev, ec2, nil, 2))
	if err != nil {
		t.Fatal(err)
	}
	if rep.ExitCode() != 130 {
		t.Errorf("exit code = %d, want 130", rep.ExitCode())
	}
	for _, l := range ev.log {
		if strings.HasPrefix(l, "freeze") || strings.HasPrefix(l, "create") {
			t.Errorf("after cancel: %s", l)
		}
	}
}

func TestCancelWhileFrozenThawsAndExits130(t *testing.T) {
	ev, ec2 := newFakes()
	ec2.block["i-00000001"] = make(chan struct{}) // never released
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for ev.index("create i-00000001") < 0 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	rep, err := Run(ctx, testConfig(ev, ec2, nil, 1))
	if err != nil {
		t.Fatal(err)
	}
	if ev.index("thaw h1") < 0 {
		t.Fatalf("h1 not thawed after cancel: %v", ev.log)
	}
	if rep.ExitCode() != 130 || rep.Hosts[0].FailedStep != StepSnapshot {
		t.Errorf("exit %d failed step %q, want 130 and snapshot", rep.ExitCode(), rep.Hosts[0].FailedStep)
	}
}

func TestUnknownOutcomeFoundByTagWhileFrozen(t *testing.T) {
	ev, ec2 := newFakes()
	ec2.unknownOutcome["i-00000001"] = true
	ec2.createAnyway = true // the call got through; only its answer was lost
	rep, err := Run(context.Background(), testConfig(ev, ec2, nil, 1))
	if err != nil {
		t.Fatal(err)
	}
	h := rep.Hosts[0]
	if h.Status != StatusSucceeded || h.Consistency != snapshot.ConsistencyApplication ||
		len(h.Snapshots) != 1 || ec2.creates != 1 {
		t.Errorf("host %s %q snapshots %v after %d creates, want succeeded, application, "+
			"the one set found by tag, no second create", h.Status, h.Consistency, h.Snapshots, ec2.creates)
	}
}

func TestUnknownOutcomeNothingFoundRetriesOnce(t *testing.T) {
	ev, ec2 := newFakes()
	ec2.unknownOutcome["i-00000001"] = true // the call never got through
	rep, err := Run(context.Background(), testConfig(ev, ec2, nil, 1))
	if err != nil {
		t.Fatal(err)
	}
	h := rep.Hosts[0]
	if h.Status != StatusSucceeded || ec2.creates != 2 || len(h.Warnings) == 0 {
		t.Errorf("host %s after %d creates, warnings %q, want succeeded after one retry, with a warning",
			h.Status, ec2.creates, h.Warnings)
	}
	if len(ec2.made) != 1 {
		t.Errorf("snapshot sets made = %d, want exactly 1", len(ec2.made))
	}
}

func TestUnknownOutcomeAtDeadlineReportsLateSnapshotsAsCrash(t *testing.T) {
	ev, ec2 := newFakes()
	ec2.createErr["i-00000001"] = fmt.Errorf("snapshot: CreateSnapshots: "+
		"context deadline exceeded: %w", snapshot.ErrOutcomeUnknown)
	cfg := testConfig(ev, ec2, nil, 1)
	// What EC2 made of the timed-out call shows up only after the thaw.
	ec2.lateAfterThaw = []snapshot.Snapshot{{ID: "snap-late", VolumeID: "vol-11111111"}}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := rep.Hosts[0]
	if h.Status != StatusFailed || h.Consistency != snapshot.ConsistencyCrash {
		t.Errorf("host %s %q, want failed and crash", h.Status, h.Consistency)
	}
	if got := ec2.tagged["snap-late"][snapshot.TagConsistency]; got != snapshot.ConsistencyCrash {
		t.Errorf("late snapshot tagged %q, want crash", got)
	}
	if ev.index("thaw h1") < 0 {
		t.Errorf("h1 not thawed")
	}
}

func TestSnapshotsAreCreatedUnverified(t *testing.T) {
	ev, ec2 := newFakes()
	cfg := testConfig(ev, ec2, nil, 1)
	if err := cfg.withDefaults(); err != nil {
		t.Fatal(err)
	}
	hr := newHostRun(&cfg, cfg.Hosts[0])
	if got := hr.tags()[snapshot.TagConsistency]; got != snapshot.ConsistencyUnverified {
		t.Errorf("creation tag %s = %q, want %q until the thaw proves more",
			snapshot.TagConsistency, got, snapshot.ConsistencyUnverified)
	}
}
