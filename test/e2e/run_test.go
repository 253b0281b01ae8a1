package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchestrate-dev/orchestrate/internal/ec2sim"
	"github.com/orchestrate-dev/orchestrate/internal/run"
	"github.com/orchestrate-dev/orchestrate/test/rig"
)

// begin prepares a test: the world must exist, and whatever the test does,
// every test filesystem is thawed when it ends.
func begin(t testing.TB) {
	t.Helper()
	needWorld(t)
	t.Cleanup(func() {
		for _, h := range world.hosts {
			for _, fs := range h.fss {
				fs.Thaw()
			}
		}
	})
}

func allLines() []string {
	var lines []string
	for _, h := range world.hosts {
		lines = append(lines, hostLine(h, h.addr))
	}
	return lines
}

func parseReport(t testing.TB, stdout string) *run.Report {
	t.Helper()
	var rep run.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("stdout is not one JSON report: %v\n%s", err, stdout)
	}
	return &rep
}

// writeBefore writes distinct files on every filesystem and returns them.
func writeBefore(t *testing.T) map[*rig.FS]map[string][]byte {
	t.Helper()
	all := map[*rig.FS]map[string][]byte{}
	for _, h := range world.hosts {
		for _, fs := range h.fss {
			files := map[string][]byte{
				t.Name() + "/small.txt": []byte("written before the run " + randHex(16) + "\n"),
				t.Name() + "/big.bin":   []byte(strings.Repeat(randHex(64), 16*1024)),
			}
			if err := fs.WriteFiles(files); err != nil {
				t.Fatal(err)
			}
			all[fs] = files
		}
	}
	return all
}

// frozenAtCall records, for each instance, whether a write to its
// filesystems blocked while its CreateSnapshots call was being handled.
type frozenAtCall struct {
	mu      sync.Mutex
	blocked map[string][]bool
}

func watchCalls(srv *ec2sim.Server) *frozenAtCall {
	w := &frozenAtCall{blocked: map[string][]bool{}}
	srv.OnCreateSnapshots(func(ev ec2sim.CreateEvent) {
		for _, h := range world.hosts {
			if h.instance != ev.InstanceID {
				continue
			}
			for _, fs := range h.fss {
				// A write begun now must not finish before the thaw.
				ok := fs.WriteProbe(300 * time.Millisecond)
				w.mu.Lock()
				w.blocked[ev.InstanceID] = append(w.blocked[ev.InstanceID], !ok)
				w.mu.Unlock()
			}
		}
	})
	return w
}

func TestRunThreeHostsFrozenDuringCallAndConsistent(t *testing.T) {
	begin(t)
	srv, url := emulator(t)
	watch := watchCalls(srv)
	before := writeBefore(t)
	hostsFile := writeHostsFile(t, allLines()...)

	res := orchestrate(t, url, "--hosts", hostsFile, "--output", "json", "--wait",
		"--tag", "purpose=e2e")
	if res.code != 0 {
		t.Fatalf("exit code = %d, want 0", res.code)
	}
	rep := parseReport(t, res.stdout)
	if rep.Schema != run.Schema || rep.Status != run.StatusSucceeded || len(rep.Hosts) != 3 {
		t.Fatalf("report = schema %q status %q hosts %d, want %q succeeded 3",
			rep.Schema, rep.Status, len(rep.Hosts), run.Schema)
	}
	requireWritable(t, 5*time.Second)

	for i, h := range world.hosts {
		hr := rep.Hosts[i]
		if hr.InstanceID != h.instance || hr.Status != run.StatusSucceeded ||
			hr.Consistency != "application" {
			t.Errorf("host %s = %s %s %q, want %s succeeded application",
				h.addr, hr.InstanceID, hr.Status, hr.Consistency, h.instance)
		}
		if hr.FreezeWindowMS == nil || *hr.FreezeWindowMS <= 0 {
			t.Errorf("host %s freeze window = %v, want > 0", h.addr, hr.FreezeWindowMS)
		}
		if got := watch.blocked[h.instance]; len(got) != len(h.fss) || strings.Contains(fmt.Sprint(got), "false") {
			t.Errorf("host %s writes blocked during CreateSnapshots = %v, want all true", h.addr, got)
		}
		checkSnapshots(t, srv, h, hr, before, rep.RunID)
	}

	// Only the operator's key signed calls, and only with one
	// CreateSnapshots per instance.
	creates := 0
	for _, c := range srv.Calls() {
		if c.AccessKeyID != accessKey {
			t.Errorf("call %s signed by %q, want %q", c.Action, c.AccessKeyID, accessKey)
		}
		if c.Action == "CreateSnapshots" && !c.DryRun {
			creates++
		}
	}
	if creates != 3 {
		t.Errorf("CreateSnapshots calls = %d, want 3 (one per instance)", creates)
	}
}

// checkSnapshots proves the host's snapshots are the volumes of its mounts,
// tagged, completed, and hold consistent filesystems with the files written
// before the run.
func checkSnapshots(t *testing.T, srv *ec2sim.Server, h *testHost, hr *run.HostReport,
	before map[*rig.FS]map[string][]byte, runID string) {
	t.Helper()
	byVol := map[string]run.SnapshotReport{}
	for _, s := range hr.Snapshots {
		byVol[s.VolumeID] = s
	}
	if len(byVol) != len(h.vols) {
		t.Errorf("host %s snapshots = %+v, want one for each of %v (not the root volume)",
			h.addr, hr.Snapshots, h.vols)
	}
	tags := map[string]map[string]string{}
	for _, s := range srv.Snapshots() {
		tags[s.ID] = s.Tags
	}
	for j, vol := range h.vols {
		s, ok := byVol[vol]
		if !ok {
			continue
		}
		if s.State != "completed" {
			t.Errorf("snapshot %s state = %q, want completed (--wait)", s.SnapshotID, s.State)
		}
		tg := tags[s.SnapshotID]
		for k, want := range map[string]string{"orchestrate:run-id": runID,
			"orchestrate:instance-id": h.instance, "orchestrate:host": h.addr,
			"orchestrate:consistency": "application", "purpose": "e2e"} {
			if tg[k] != want {
				t.Errorf("snapshot %s tag %s = %q, want %q", s.SnapshotID, k, tg[k], want)
			}
		}
		fs := h.fss[j]
		img := filepath.Join(t.TempDir(), s.SnapshotID+".img")
		if err := srv.ExportSnapshot(s.SnapshotID, img); err != nil {
			t.Fatal(err)
		}
		if err := rig.CheckImage(fs.Kind, img, t.TempDir(), before[fs]); err != nil {
			t.Errorf("snapshot %s of %s (%s) is not consistent: %v", s.SnapshotID, fs.Mount, fs.Kind, err)
		}
		os.Remove(img)
	}
}

func TestPermanentAPIErrorFailsOnlyThatHost(t *testing.T) {
	begin(t)
	srv, url := emulator(t)
	// The first real CreateSnapshots arms a permanent failure for the next
	// one, so exactly one of the three hosts gets it.
	var once sync.Once
	srv.OnCreateSnapshots(func(ec2sim.CreateEvent) {
		once.Do(func() { srv.FailNext("CreateSnapshots", 1, "UnauthorizedOperation") })
	})
	hostsFile := writeHostsFile(t, allLines()...)

	res := orchestrate(t, url, "--hosts", hostsFile, "--output", "json", "--parallel", "1")
	if res.code != 1 {
		t.Errorf("exit code = %d, want 1", res.code)
	}
	rep := parseReport(t, res.stdout)
	var failed, ok int
	for _, hr := range rep.Hosts {
		switch hr.Status {
		case run.StatusSucceeded:
			ok++
		case run.StatusFailed:
			failed++
			if hr.FailedStep != run.StepSnapshot || !strings.Contains(hr.Error, "UnauthorizedOperation") {
				t.Errorf("failed host %s: step %q error %q, want snapshot step naming UnauthorizedOperation",
					hr.Destination, hr.FailedStep, hr.Error)
			}
			if !stepOK(hr, run.StepThaw) {
				t.Errorf("failed host %s was not thawed cleanly: %+v", hr.Destination, hr.Steps)
			}
		}
	}
	if ok != 2 || failed != 1 {
		t.Errorf("hosts succeeded/failed = %d/%d, want 2/1", ok, failed)
	}
	requireWritable(t, 5*time.Second)
}

func stepOK(hr *run.HostReport, name string) bool {
	for _, s := range hr.Steps {
		if s.Name == name {
			return s.Status == run.StepOK
		}
	}
	return false
}

func TestBadHostsFileStopsBeforeSSH(t *testing.T) {
	begin(t)
	srv, url := emulator(t)
	counter := newCountingListener(t)
	h := world.hosts[0]
	hostsFile := writeHostsFile(t,
		hostLine(h, counter.addr),
		counter.addr+" instance=i-nothex mounts=/data volumes=vol-0123456789abcdef0")

	res := orchestrate(t, url, "--hosts", hostsFile)
	if res.code != 2 {
		t.Errorf("exit code = %d, want 2", res.code)
	}
	if !strings.Contains(res.stderr, "hosts.txt:3:") {
		t.Errorf("stderr does not name hosts.txt line 3:\n%s", res.stderr)
	}
	if n := counter.count(); n != 0 {
		t.Errorf("connections attempted = %d, want 0", n)
	}
	if calls := srv.Calls(); len(calls) != 0 {
		t.Errorf("EC2 calls = %d, want 0", len(calls))
	}
}

func TestUnknownHostKeyRefusedNothingFrozen(t *testing.T) {
	begin(t)
	srv, url := emulator(t)
	h := world.hosts[0]
	// A known_hosts that knows the other addresses but not this one.
	kh := filepath.Join(t.TempDir(), "known_hosts")
	data, err := os.ReadFile(world.sshd.KnownHostsPath)
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, l := range strings.Split(string(data), "\n") {
		if l != "" && !strings.Contains(l, "["+h.addr+"]") {
			keep = append(keep, l)
		}
	}
	os.WriteFile(kh, []byte(strings.Join(keep, "\n")+"\n"), 0o600)
	hostsFile := writeHostsFile(t, hostLine(h, h.addr))

	res := orchestrate(t, url, "--hosts", hostsFile, "--known-hosts", kh, "--output", "json")
	if res.code != 1 {
		t.Errorf("exit code = %d, want 1", res.code)
	}
	hr := parseReport(t, res.stdout).Hosts[0]
	if hr.FailedStep != run.StepConnect || !strings.Contains(hr.Error, "unknown") {
		t.Errorf("host failed at %q with %q, want connect, unknown host key", hr.FailedStep, hr.Error)
	}
	assertNeverFrozen(t, srv, hr)
}

func TestSudoPasswordClearErrorNothingFrozen(t *testing.T) {
	begin(t)
	srv, url := emulator(t)
	hostsFile := writeHostsFile(t, hostLine(world.hosts[1], world.pwd.Name+"@"+world.hosts[1].addr))

	res := orchestrate(t, url, "--hosts", hostsFile, "-i", world.pwd.KeyPath, "--output", "json")
	if res.code != 1 {
		t.Errorf("exit code = %d, want 1", res.code)
	}
	hr := parseReport(t, res.stdout).Hosts[0]
	if hr.FailedStep != run.StepPrepare || !strings.Contains(hr.Error, "sudo -n needs a password") {
		t.Errorf("host failed at %q with %q, want prepare, sudo needs a password", hr.FailedStep, hr.Error)
	}
	assertNeverFrozen(t, srv, hr)
}

// assertNeverFrozen checks that the host got no freeze step and that no
// snapshot was attempted.
func assertNeverFrozen(t *testing.T, srv *ec2sim.Server, hr *run.HostReport) {
	t.Helper()
	for _, s := range hr.Steps {
		if s.Name == run.StepFreeze {
			t.Errorf("host %s has a freeze step: %+v", hr.Destination, s)
		}
	}
	if hr.FreezeWindowMS != nil {
		t.Errorf("host %s freeze window = %v, want none", hr.Destination, *hr.FreezeWindowMS)
	}
	for _, c := range srv.Calls() {
		if c.Action == "CreateSnapshots" && !c.DryRun {
			t.Errorf("CreateSnapshots was called")
		}
	}
}
