package run

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/orchestrate-dev/orchestrate/internal/freeze"
	"github.com/orchestrate-dev/orchestrate/internal/snapshot"
	"github.com/orchestrate-dev/orchestrate/internal/sshexec"
)

// checkEC2 is fakeEC2 with a detachable volume and IAM denials that tell
// a tagged dry run (tag on create) from an untagged one.
type checkEC2 struct {
	*fakeEC2
	detached   string // a volume missing from the instance
	denyCreate bool   // every DryRun is refused
	denyTags   bool   // a DryRun with tags is refused
	dryRuns    []*snapshot.Request
}

func (f *checkEC2) Describe(ctx context.Context, region string, ids []string) (map[string]snapshot.Instance, error) {
	out, err := f.fakeEC2.Describe(ctx, region, ids)
	for id, in := range out {
		var keep []snapshot.AttachedVolume
		for _, v := range in.Volumes {
			if v.VolumeID != f.detached {
				keep = append(keep, v)
			}
		}
		in.Volumes = keep
		out[id] = in
	}
	return out, err
}

func (f *checkEC2) DryRun(_ context.Context, r *snapshot.Request) error {
	f.mu.Lock()
	f.dryRuns = append(f.dryRuns, r)
	f.mu.Unlock()
	denied := &snapshot.APIError{Code: "UnauthorizedOperation", Message: "You are not authorized"}
	if f.denyCreate || (f.denyTags && len(r.Tags) > 0) {
		return denied
	}
	return nil
}

func (f *checkEC2) Create(context.Context, *snapshot.Request) ([]snapshot.Snapshot, error) {
	return nil, errors.New("check created a snapshot")
}

// checkHost answers the check scripts as a host would, by what each
// command line holds.
type checkHost struct {
	user     string
	password bool   // sudo wants a password
	missing  string // a tool not on the agent's PATH
	lockLine string // a line of the lock script's output
	cmds     []string
}

func (h *checkHost) Exec(_ context.Context, cmd string, _ io.Reader, stdout, stderr io.Writer) error {
	h.cmds = append(h.cmds, cmd)
	if strings.Contains(cmd, "'sudo' '-n'") && h.password {
		io.WriteString(stderr, "sudo: a password is required\n")
		return errors.New("exit status 1")
	}
	uid := "0"
	if !strings.Contains(cmd, "'sudo' '-n'") && h.user != "root" {
		uid = "1000"
	}
	switch {
	case strings.Contains(cmd, "fsfreeze -f") || strings.Contains(cmd, "fsfreeze' '-f"):
		return errors.New("check froze something")
	case strings.Contains(cmd, "MISSING"):
		io.WriteString(stdout, "PATH /usr/bin:/bin\n")
		if h.missing != "" {
			io.WriteString(stdout, "MISSING "+h.missing+"\n")
		}
		io.WriteString(stdout, "DONE\n")
	case strings.Contains(cmd, "STALE"):
		io.WriteString(stdout, h.lockLine+"\nDONE\n")
	case strings.Contains(cmd, "id -u"):
		io.WriteString(stdout, uid+"\n")
	default:
		return errors.New("unexpected command: " + cmd)
	}
	return nil
}

func (h *checkHost) User() string { return h.user }
func (h *checkHost) Close() error { return nil }

func TestCheckFailsPreciselyTheBrokenCheck(t *testing.T) {
	all := CheckNames()
	tests := []struct {
		name string
		ec2  checkEC2
		host checkHost
		sudo freeze.SudoMode
		dial error
		// want is every check's result; unlisted ones must pass.
		want map[string]string
	}{
		{name: "Healthy", host: checkHost{user: "admin"},
			want: map[string]string{CheckIdentity: CheckSkip}},
		{name: "HealthyRoot", host: checkHost{user: "root"}, sudo: freeze.SudoNever,
			want: map[string]string{CheckIdentity: CheckSkip}},
		{name: "SudoPassword", host: checkHost{user: "admin", password: true},
			want: map[string]string{CheckIdentity: CheckSkip, CheckSudo: CheckFail,
				CheckTools: CheckSkip, CheckLock: CheckSkip}},
		{name: "SudoNeverNotRoot", host: checkHost{user: "admin"}, sudo: freeze.SudoNever,
			want: map[string]string{CheckIdentity: CheckSkip, CheckSudo: CheckFail,
				CheckTools: CheckSkip, CheckLock: CheckSkip}},
		{name: "NoFsfreeze", host: checkHost{user: "admin", missing: "fsfreeze"},
			want: map[string]string{CheckIdentity: CheckSkip, CheckTools: CheckFail}},
		{name: "LiveLock", host: checkHost{user: "admin", lockLine: "LIVE 4242 fs.7_3 run-0"},
			want: map[string]string{CheckIdentity: CheckSkip, CheckLock: CheckFail}},
		{name: "StaleRecord", host: checkHost{user: "admin", lockLine: "STALE 4242 run-0"},
			want: map[string]string{CheckIdentity: CheckSkip, CheckLock: CheckFail}},
		{name: "DeniedCreateSnapshots", ec2: checkEC2{denyCreate: true}, host: checkHost{user: "admin"},
			want: map[string]string{CheckIdentity: CheckSkip, CheckIAMCreateSnapshots: CheckFail,
				CheckIAMCreateTags: CheckSkip}},
		{name: "DeniedCreateTags", ec2: checkEC2{denyTags: true}, host: checkHost{user: "admin"},
			want: map[string]string{CheckIdentity: CheckSkip, CheckIAMCreateTags: CheckFail}},
		{name: "DetachedVolume", ec2: checkEC2{detached: "vol-11111111"}, host: checkHost{user: "admin"},
			want: map[string]string{CheckIdentity: CheckSkip, CheckVolumes: CheckFail,
				CheckIAMCreateSnapshots: CheckSkip, CheckIAMCreateTags: CheckSkip}},
		{name: "NoConnection", host: checkHost{user: "admin"}, dial: errors.New("sshexec: h1: connection refused"),
			want: map[string]string{CheckSSH: CheckFail, CheckIdentity: CheckSkip, CheckSudo: CheckSkip,
				CheckTools: CheckSkip, CheckLock: CheckSkip}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, base := newFakes()
			ec2 := tt.ec2
			ec2.fakeEC2 = base
			host := tt.host
			cfg := Config{RunID: "run-1", Hosts: fleet(1), EC2: &ec2, Sudo: tt.sudo,
				Dial: func(context.Context, sshexec.Target) (Conn, error) {
					if tt.dial != nil {
						return nil, tt.dial
					}
					return &host, nil
				},
				// The fake host does not answer identify's probe.
				VerifyIdentity: "off"}
			rep, err := Check(context.Background(), cfg)
			if err != nil {
				t.Fatalf("Check() error = %v", err)
			}
			if rep.Schema != CheckSchema || len(rep.Hosts) != 1 {
				t.Fatalf("Check() = schema %q, %d hosts; want %q, 1", rep.Schema, len(rep.Hosts), CheckSchema)
			}
			h := rep.Hosts[0]
			if len(h.Checks) != len(all) {
				t.Fatalf("checks = %+v, want one per name %v", h.Checks, all)
			}
			failed := false
			for i, c := range h.Checks {
				want := tt.want[c.Name]
				if want == "" {
					want = CheckPass
				}
				failed = failed || want == CheckFail
				if c.Name != all[i] || c.Result != want {
					t.Errorf("check %d = %s %s (%s), want %s %s", i, c.Name, c.Result, c.Detail, all[i], want)
				}
				if c.Result == CheckFail && !strings.Contains(c.Detail, "h1") &&
					c.Name != CheckVolumes && c.Name != CheckSSH {
					t.Errorf("%s detail %q does not name the host h1", c.Name, c.Detail)
				}
			}
			if wantCode := map[bool]int{false: 0, true: 1}[failed]; rep.ExitCode() != wantCode {
				t.Errorf("ExitCode() = %d, want %d (status %s)", rep.ExitCode(), wantCode, rep.Status)
			}
			for _, cmd := range host.cmds {
				if strings.Contains(cmd, "orchestrate-agent") {
					t.Errorf("check started the freeze agent: %.80s", cmd)
				}
			}
		})
	}
}

func TestCheckDryRunsWithoutThenWithTags(t *testing.T) {
	_, base := newFakes()
	ec2 := &checkEC2{fakeEC2: base}
	host := &checkHost{user: "admin"}
	cfg := Config{RunID: "run-1", Hosts: fleet(1), EC2: ec2, VerifyIdentity: "off",
		Tags: map[string]string{"team": "db"},
		Dial: func(context.Context, sshexec.Target) (Conn, error) { return host, nil }}
	if _, err := Check(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	// preflight's dry run of the exact request, then the two of the checks.
	if len(ec2.dryRuns) != 3 {
		t.Fatalf("dry runs = %d, want 3", len(ec2.dryRuns))
	}
	bare, tagged := ec2.dryRuns[1], ec2.dryRuns[2]
	if len(bare.Tags) != 0 || bare.InstanceID != "i-00000001" {
		t.Errorf("iam-create-snapshots dry run = %+v, want the request without tags", bare)
	}
	if tagged.Tags["team"] != "db" || tagged.Tags[snapshot.TagRunID] != "run-1" {
		t.Errorf("iam-create-tags dry run tags = %v, want run's tags (team=db, run id)", tagged.Tags)
	}
	if strings.Join(bare.Volumes, ",") != strings.Join(tagged.Volumes, ",") {
		t.Errorf("dry runs snapshot %v and %v, want the same set", bare.Volumes, tagged.Volumes)
	}
}

func TestCheckSudoSendsTheAgentsSudo(t *testing.T) {
	tests := []struct {
		user     string
		mode     freeze.SudoMode
		wantSudo bool
	}{
		{"admin", freeze.SudoAuto, true},
		{"root", freeze.SudoAuto, false},
		{"root", freeze.SudoAlways, true},
		{"admin", freeze.SudoNever, false},
	}
	for _, tt := range tests {
		t.Run(tt.user+"/"+tt.mode.String(), func(t *testing.T) {
			host := &checkHost{user: tt.user}
			hr := newHostRun(&Config{Sudo: tt.mode, Logger: slog.New(slog.DiscardHandler)}, fleet(1)[0])
			hr.checkSudo(context.Background(), host, hostChecks{})
			if len(host.cmds) != 1 {
				t.Fatalf("commands = %q, want 1", host.cmds)
			}
			got := strings.HasPrefix(host.cmds[0], "exec 'sudo' '-n' '--' '/bin/sh' '-c'")
			if got != tt.wantSudo {
				t.Errorf("checkSudo(%s, --sudo %s) sent %.60q; through sudo = %v, want %v",
					tt.user, tt.mode, host.cmds[0], got, tt.wantSudo)
			}
		})
	}
}

// TestLockScript runs the lock script with /bin/sh against a state
// directory laid out as agent.sh leaves it.
func TestLockScript(t *testing.T) {
	if _, err := exec.LookPath("mountpoint"); err != nil {
		t.Skip("needs util-linux mountpoint")
	}
	out, err := exec.Command("mountpoint", "-d", "/").Output()
	if err != nil {
		t.Skipf("mountpoint -d /: %v", err)
	}
	rootLock := "fs." + strings.ReplaceAll(strings.TrimSpace(string(out)), ":", "_")
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	// A stand-in agent: a process whose arguments name it as one, as
	// agent_alive looks for.
	agent := exec.Command("/bin/sh", "-c", "sleep 60", "orchestrate-agent", "nonce")
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
	live, gone := agent.Process.Pid, dead.Process.Pid

	tests := []struct {
		name   string
		layout map[string]string // file under the state dir -> content
		args   []string
		live   int
		stale  int
	}{
		{"Empty", nil, []string{"/"}, 0, 0},
		{"LiveOnThisFS", map[string]string{rootLock + "/pid": itoa(live),
			"agent." + itoa(live) + "/run-id": "run-a", "agent." + itoa(live) + "/frozen": ""},
			[]string{"/"}, 1, 0},
		{"LiveOnAnotherFS", map[string]string{"fs.250_9/pid": itoa(live)}, []string{"/"}, 0, 0},
		{"LiveAnyFSWhenNoneGiven", map[string]string{"fs.250_9/pid": itoa(live)}, nil, 1, 0},
		{"DeadLockNothingFrozen", map[string]string{rootLock + "/pid": itoa(gone),
			"agent." + itoa(gone) + "/frozen": ""}, []string{"/"}, 0, 0},
		{"DeadAgentLeftFrozen", map[string]string{rootLock + "/pid": itoa(gone),
			"agent." + itoa(gone) + "/run-id": "run b", "agent." + itoa(gone) + "/frozen": "/data\n"},
			[]string{"/"}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := t.TempDir()
			for name, body := range tt.layout {
				p := filepath.Join(state, name)
				os.MkdirAll(filepath.Dir(p), 0o700)
				if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command("/bin/sh", "-c", freeze.ScriptCommand(lockScript,
				"orchestrate-check", tt.args, freeze.SudoNever, "root"))
			cmd.Env = append(os.Environ(), "ORCHESTRATE_TEST_STATE_DIR="+state)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("lock script: %v", err)
			}
			l, s, done := parseLocks(string(out))
			if !done || len(l) != tt.live || len(s) != tt.stale {
				t.Errorf("lock script(%v) = live %q stale %q done %v, want %d live %d stale\n%s",
					tt.args, l, s, done, tt.live, tt.stale, out)
			}
		})
	}
}

// TestToolsScript runs the tools script with /bin/sh on a PATH holding
// only some of the tools.
func TestToolsScript(t *testing.T) {
	tests := []struct {
		name    string
		have    []string
		missing string
	}{
		{"All", AgentTools, ""},
		{"NoFsfreeze", AgentTools[1:], "fsfreeze\n"},
		{"None", nil, strings.Join(AgentTools, "\n") + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, name := range tt.have {
				if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command("/bin/sh", append([]string{"-c", toolsScript, "orchestrate-check"}, AgentTools...)...)
			cmd.Env = []string{"PATH=" + dir}
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("tools script: %v", err)
			}
			var got strings.Builder
			for _, line := range strings.Split(string(out), "\n") {
				if name, ok := strings.CutPrefix(line, "MISSING "); ok {
					got.WriteString(name + "\n")
				}
			}
			if got.String() != tt.missing || !strings.HasSuffix(string(out), "DONE\n") {
				t.Errorf("tools script on PATH with %v = %q, want missing %q", tt.have, out, tt.missing)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
