package e2e

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/orchestrate-dev/orchestrate/internal/ec2sim"
	"github.com/orchestrate-dev/orchestrate/internal/run"
)

// More operator signals, at the steps procfault_test.go leaves out: while
// preflight waits on EC2, while the agent starts (SIGTERM, SIGKILL), and
// while --wait polls after the thaw.
func init() {
	register(
		scenario{Name: "ProcSigintAtPreflight", Fault: "SIGINT to orchestrate while DescribeInstances is slow (preflight)",
			Step: "connect", Expect: "exit 130 at once (the describe is cancelled), no host contacted, nothing frozen, no CreateSnapshots",
			Run: func(t *testing.T) { testSignalAtPreflight(t, syscall.SIGINT) }},
		scenario{Name: "ProcSigtermAtPrepare", Fault: "SIGTERM to orchestrate while the agent is starting (session stalled in ~/.ssh/rc)",
			Step: "prepare", Expect: "exit 130, both hosts interrupted before freeze, nothing frozen, no CreateSnapshots",
			Run: func(t *testing.T) { testSignalAtPrepare(t, syscall.SIGTERM) }},
		scenario{Name: "ProcSigkillAtPrepare", Fault: "SIGKILL of orchestrate while the agent is starting",
			Step: "prepare", Expect: "nothing frozen, no CreateSnapshots; the agents that start later see end of input and give up",
			Run: func(t *testing.T) { testSignalAtPrepare(t, syscall.SIGKILL) }},
		scenario{Name: "ProcSigintAtWait", Fault: "SIGINT to orchestrate while --wait polls pending snapshots",
			Step: "wait", Expect: "exit 130 at once, thaw already confirmed, snapshots application-consistent",
			Run: testSigintAtWait},
	)
}

func testSignalAtPreflight(t *testing.T, sig syscall.Signal) {
	srv, url := emulator(t)
	srv.SetLatency("DescribeInstances", 2*time.Second)
	a0, a1 := world.hosts[0], world.hosts[1]
	hostsFile := writeHostsFile(t, hostLine(a0, a0.addr), hostLine(a1, a1.addr))

	a := startOrchestrate(t, url, "--hosts", hostsFile, "--output", "json")
	time.Sleep(700 * time.Millisecond)
	a.signal(t, sig)
	res := a.wait(t, 20*time.Second)
	if res.code != 130 {
		t.Errorf("exit code = %d, want 130", res.code)
	}
	for _, hr := range parseReport(t, res.stdout).Hosts {
		requireNoFreeze(t, hr)
		for _, s := range hr.Steps {
			if s.Name == run.StepConnect && s.Status == run.StepOK {
				t.Errorf("host %s was contacted after the interrupt", hr.Destination)
			}
		}
	}
	if n, _ := realCreates(srv); n != 0 {
		t.Errorf("CreateSnapshots calls = %d, want 0", n)
	}
	requireWritable(t, 5*time.Second)
}

func testSignalAtPrepare(t *testing.T, sig syscall.Signal) {
	srv, url := emulator(t)
	a0, a1 := world.hosts[0], world.hosts[1]
	sshDir := filepath.Join(world.user.Home, ".ssh")
	rc := filepath.Join(sshDir, "rc")
	os.MkdirAll(sshDir, 0o755)
	if err := os.WriteFile(rc, []byte("sleep 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	t.Cleanup(func() {
		os.Remove(rc)
		time.Sleep(time.Until(started.Add(5 * time.Second)))
	})
	hostsFile := writeHostsFile(t, hostLine(a0, a0.addr), hostLine(a1, a1.addr))

	a := startOrchestrate(t, url, "--hosts", hostsFile, "--output", "json",
		"--freeze-timeout", procFreezeTimeout.String(), "--keepalive", procKeepalive.String())
	time.Sleep(1500 * time.Millisecond)
	a.signal(t, sig)
	res := a.wait(t, 20*time.Second)

	if sig == syscall.SIGKILL {
		if res.code != -1 {
			t.Errorf("exit code = %d, want -1 (killed)", res.code)
		}
		// The agents start when ~/.ssh/rc ends, see end of input and go.
		time.Sleep(time.Until(started.Add(4500 * time.Millisecond)))
	} else {
		if res.code != 130 {
			t.Errorf("exit code = %d, want 130", res.code)
		}
		for _, hr := range parseReport(t, res.stdout).Hosts {
			requireNoFreeze(t, hr)
		}
	}
	if n, _ := realCreates(srv); n != 0 {
		t.Errorf("CreateSnapshots calls = %d, want 0", n)
	}
	requireWritable(t, 5*time.Second)
}

func testSigintAtWait(t *testing.T) {
	url, err := newSlowCompletionEmulator(t)
	if err != nil {
		t.Fatal(err)
	}
	a0, a1 := world.hosts[0], world.hosts[1]
	hostsFile := writeHostsFile(t, hostLine(a0, a0.addr), hostLine(a1, a1.addr))

	a := startOrchestrate(t, url, "--hosts", hostsFile, "--output", "json", "--wait")
	time.Sleep(2 * time.Second) // frozen, snapshotted and thawed in well under that
	a.signal(t, syscall.SIGINT)
	res := a.wait(t, 10*time.Second)
	if res.code != 130 {
		t.Errorf("exit code = %d, want 130", res.code)
	}
	for _, hr := range parseReport(t, res.stdout).Hosts {
		if !stepOK(hr, run.StepThaw) || hr.Consistency != "application" {
			t.Errorf("host %s thaw %v consistency %q, want a confirmed thaw and application",
				hr.Destination, stepOK(hr, run.StepThaw), hr.Consistency)
		}
	}
	requireWritable(t, 5*time.Second)
}

// newSlowCompletionEmulator serves world's fixture with snapshots that
// stay pending for a minute, so that --wait is still polling when a test
// interrupts it. It returns the URL.
func newSlowCompletionEmulator(t *testing.T) (string, error) {
	t.Helper()
	srv, err := ec2sim.New(fixture(), ec2sim.Options{SnapshotDir: t.TempDir(),
		CompleteAfter: time.Minute})
	if err != nil {
		return "", err
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts.URL, nil
}
