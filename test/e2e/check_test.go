package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orchestrate-dev/orchestrate/internal/ec2sim"
	"github.com/orchestrate-dev/orchestrate/internal/run"
)

// TestCheck runs `orchestrate check` against a healthy host and against
// each broken case, and proves each fails exactly its own check, passes
// the others that can still run, and skips those that depend on it.
// Every case uses world.hosts[0], ext4 on a loop device, with mounts= and
// volumes= given.
func TestCheck(t *testing.T) {
	begin(t)
	h := world.hosts[0]
	skipIdentity := map[string]string{run.CheckIdentity: run.CheckSkip} // no metadata on loopback

	tests := []struct {
		name  string
		line  string
		args  []string
		setup func(t *testing.T, srv *ec2sim.Server)
		want  map[string]string // unlisted checks must pass
	}{
		{name: "Healthy", want: skipIdentity},
		{name: "SudoWantsPassword", line: hostLine(h, world.pwd.Name+"@"+h.addr),
			args: []string{"-i", world.pwd.KeyPath},
			want: map[string]string{run.CheckIdentity: run.CheckSkip, run.CheckSudo: run.CheckFail,
				run.CheckTools: run.CheckSkip, run.CheckLock: run.CheckSkip}},
		{name: "NoFsfreezeOnTheAgentsPath", setup: func(t *testing.T, _ *ec2sim.Server) { pathWithoutSbin(t, world.user.Name) },
			want: map[string]string{run.CheckIdentity: run.CheckSkip, run.CheckTools: run.CheckFail}},
		{name: "CreateSnapshotsDenied", setup: func(t *testing.T, srv *ec2sim.Server) { srv.Deny("CreateSnapshots") },
			want: map[string]string{run.CheckIdentity: run.CheckSkip,
				run.CheckIAMCreateSnapshots: run.CheckFail, run.CheckIAMCreateTags: run.CheckSkip}},
		{name: "CreateTagsDenied", setup: func(t *testing.T, srv *ec2sim.Server) { srv.Deny("CreateTags") },
			want: map[string]string{run.CheckIdentity: run.CheckSkip, run.CheckIAMCreateTags: run.CheckFail}},
		{name: "VolumeDetached", setup: func(t *testing.T, srv *ec2sim.Server) { srv.DetachVolume(h.vols[0]) },
			want: map[string]string{run.CheckIdentity: run.CheckSkip, run.CheckVolumes: run.CheckFail,
				run.CheckIAMCreateSnapshots: run.CheckSkip, run.CheckIAMCreateTags: run.CheckSkip}},
		{name: "LockHeldByAnotherRun", setup: func(t *testing.T, _ *ec2sim.Server) { holdLock(t, h) },
			want: map[string]string{run.CheckIdentity: run.CheckSkip, run.CheckLock: run.CheckFail}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, url := emulator(t)
			if tt.setup != nil {
				tt.setup(t, srv)
			}
			line := tt.line
			if line == "" {
				line = hostLine(h, h.addr)
			}
			args := append([]string{"--hosts", writeHostsFile(t, line), "--output", "json"}, tt.args...)
			res := orchestrateVerb(t, "check", url, args...)

			var rep run.CheckReport
			if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
				t.Fatalf("stdout is not one JSON check report: %v\n%s", err, res.stdout)
			}
			if rep.Schema != run.CheckSchema || len(rep.Hosts) != 1 {
				t.Fatalf("report schema %q with %d hosts, want %q with 1", rep.Schema, len(rep.Hosts), run.CheckSchema)
			}
			failed := false
			names := run.CheckNames()
			for i, c := range rep.Hosts[0].Checks {
				want := tt.want[c.Name]
				if want == "" {
					want = run.CheckPass
				}
				failed = failed || want == run.CheckFail
				if i >= len(names) || c.Name != names[i] || c.Result != want {
					t.Errorf("check %d = %s %s (%s), want %s %s", i, c.Name, c.Result, c.Detail, names[min(i, len(names)-1)], want)
				}
			}
			if len(rep.Hosts[0].Checks) != len(names) {
				t.Errorf("%d checks, want %d", len(rep.Hosts[0].Checks), len(names))
			}
			wantCode := 0
			if failed {
				wantCode = 1
			}
			if res.code != wantCode {
				t.Errorf("exit code = %d, want %d", res.code, wantCode)
			}
			for _, c := range srv.Calls() {
				if (c.Action == "CreateSnapshots" || c.Action == "CreateTags") && !c.DryRun {
					t.Errorf("check called %s for real", c.Action)
				}
			}
			if len(srv.Snapshots()) != 0 {
				t.Errorf("check created snapshots: %+v", srv.Snapshots())
			}
		})
	}
	requireWritable(t, 5*time.Second)
}

// TestCheckTable pins the table output: a header and one line per check.
func TestCheckTable(t *testing.T) {
	begin(t)
	_, url := emulator(t)
	h := world.hosts[1]
	res := orchestrateVerb(t, "check", url, "--hosts", writeHostsFile(t, hostLine(h, h.addr)))
	if res.code != 0 {
		t.Fatalf("exit code = %d, want 0", res.code)
	}
	want := []string{"HOST", h.addr + " ", "ssh", "identity", "sudo", "tools", "lock", "volumes",
		"iam-create-snapshots", "iam-create-tags", "nothing was frozen or created"}
	for _, w := range want {
		if !hasLineWith(res.stdout, w) {
			t.Errorf("table output lacks %q:\n%s", w, res.stdout)
		}
	}
}

func hasLineWith(s, sub string) bool {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// pathWithoutSbin gives user, while the test runs, a sudo secure_path
// without /usr/sbin (and /sbin, its symlink here), where Debian keeps
// fsfreeze: the agent, run through sudo -n, would not find it, while
// every other tool stays in /usr/bin. Only that user's sudo changes, in a
// sudoers file of this test's own, checked by visudo and removed after.
func pathWithoutSbin(t *testing.T, user string) {
	t.Helper()
	if _, err := os.Stat("/usr/bin/fsfreeze"); err == nil {
		t.Skip("fsfreeze is in /usr/bin here: cannot hide it with secure_path")
	}
	path := filepath.Join("/etc/sudoers.d", "orch-check-"+user)
	draft := filepath.Join("/etc/sudoers.d", ".orch-check-"+user+".new")
	body := fmt.Sprintf("Defaults:%s secure_path=\"/usr/local/bin:/usr/bin:/bin\"\n", user)
	if err := os.WriteFile(draft, []byte(body), 0o440); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(draft)
	if out, err := exec.Command("visudo", "-cqf", draft).CombinedOutput(); err != nil {
		t.Fatalf("visudo %s: %v\n%s", draft, err, out)
	}
	if err := os.Rename(draft, path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
}

// holdLock starts a real run of h on its own emulator and keeps it inside
// CreateSnapshots, frozen and holding h's filesystem lock, until the test
// ends; then it lets the run finish and checks it thawed.
func holdLock(t *testing.T, h *testHost) {
	t.Helper()
	srv, url := emulator(t)
	inside, release := make(chan struct{}), make(chan struct{})
	srv.OnCreateSnapshots(func(ec2sim.CreateEvent) {
		close(inside)
		select {
		case <-release:
		case <-time.After(8 * time.Second):
		}
	})
	hostsFile := writeHostsFile(t, hostLine(h, h.addr))
	done := make(chan result, 1)
	go func() { done <- orchestrate(t, url, "--hosts", hostsFile, "--freeze-timeout", "12s") }()
	select {
	case <-inside:
	case res := <-done:
		t.Fatalf("the lock-holding run ended before CreateSnapshots: exit %d\n%s", res.code, res.stderr)
	case <-time.After(30 * time.Second):
		t.Fatal("the lock-holding run never reached CreateSnapshots")
	}
	t.Cleanup(func() {
		close(release)
		if res := <-done; res.code != 0 {
			t.Errorf("the lock-holding run exit code = %d, want 0\n%s", res.code, res.stderr)
		}
		for _, fs := range h.fss {
			if !fs.WriteProbe(5 * time.Second) {
				t.Errorf("%s still frozen after the lock-holding run", fs.Mount)
			}
		}
	})
}
