package rig

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// needRoot skips the test unless it runs as root with every tool present;
// with CI=true it fails instead, so CI cannot skip the rig silently.
func needRoot(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "the rig needs root (it adds users, starts sshd and " +
			"mounts loop devices); run the tests as root"
	} else if err := CheckTools(); err != nil {
		why = err.Error()
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true forbids skipping: %s", why)
	}
	t.Skip(why)
}

// newRig makes a rig logging to t and closed at the end of the test.
func newRig(t *testing.T) *Rig {
	t.Helper()
	r, err := New("")
	if err != nil {
		t.Fatalf("New(\"\") = %v, want nil error", err)
	}
	r.Logf = t.Logf
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close() = %v, want nil", err)
		}
	})
	return r
}

// sshRun runs command as u on addr with the system ssh client, trusting
// only the host keys in knownHosts, and returns its combined output.
func sshRun(t *testing.T, s *SSHD, u *User, addr, knownHosts,
	command string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", "-F", "/dev/null",
		"-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile="+knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "IdentitiesOnly=yes",
		"-o", "ConnectTimeout=10",
		"-i", u.KeyPath, "-p", strconv.Itoa(s.Port),
		u.Name+"@"+addr, command)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestSSHD logs in over two addresses of one sshd with the system client
// and checks what each user's sudo allows.
func TestSSHD(t *testing.T) {
	needRoot(t)
	r := newRig(t)
	admin, err := r.AddUser("orchrigadmin", SudoNoPassword)
	if err != nil {
		t.Fatalf("AddUser(orchrigadmin) = %v, want nil error", err)
	}
	asker, err := r.AddUser("orchrigasker", SudoPassword)
	if err != nil {
		t.Fatalf("AddUser(orchrigasker) = %v, want nil error", err)
	}
	plain, err := r.AddUser("orchrigplain", SudoNone)
	if err != nil {
		t.Fatalf("AddUser(orchrigplain) = %v, want nil error", err)
	}
	addrs := []string{"127.0.0.2", "127.0.0.3"}
	s, err := r.StartSSHD(addrs, []*User{admin, asker})
	if err != nil {
		t.Fatalf("StartSSHD(%v) = %v, want nil error", addrs, err)
	}
	ecdsaHosts := filepath.Join(r.Dir, "known_hosts_ecdsa")
	if err := s.WriteKnownHosts(ecdsaHosts, KeyECDSA); err != nil {
		t.Fatalf("WriteKnownHosts(ecdsa) = %v, want nil", err)
	}

	tests := []struct {
		name       string
		user       *User
		addr       string
		knownHosts string
		command    string
		wantOK     bool
		wantOut    string
	}{
		{"NoPasswordSudo", admin, "127.0.0.2", s.KnownHostsPath,
			"sudo -n true", true, ""},
		{"SecondAddress", admin, "127.0.0.3", s.KnownHostsPath,
			"sudo -n id -u", true, "0"},
		{"PlainShell", admin, "127.0.0.2", s.KnownHostsPath,
			"echo $0", true, "sh"},
		{"ECDSAKnownHosts", admin, "127.0.0.3", ecdsaHosts,
			"true", true, ""},
		{"PasswordSudoRefused", asker, "127.0.0.2", s.KnownHostsPath,
			"sudo -n true", false, "password is required"},
		{"PasswordUserLogsIn", asker, "127.0.0.2", s.KnownHostsPath,
			"id -un", true, "orchrigasker"},
		{"NotAllowedUser", plain, "127.0.0.2", s.KnownHostsPath,
			"true", false, "Permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := sshRun(t, s, tt.user, tt.addr, tt.knownHosts,
				tt.command)
			if (err == nil) != tt.wantOK {
				t.Fatalf("ssh %s@%s %q = %v (%s), want success %v",
					tt.user.Name, tt.addr, tt.command, err, out, tt.wantOK)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("ssh %s@%s %q output = %q, want it to contain %q",
					tt.user.Name, tt.addr, tt.command, out, tt.wantOut)
			}
		})
	}
}

// TestReplaceHostKey checks that a replaced key is refused with the old
// known_hosts and accepted with a rewritten one, by the same daemon.
func TestReplaceHostKey(t *testing.T) {
	needRoot(t)
	r := newRig(t)
	u, err := r.AddUser("orchrighk", SudoNone)
	if err != nil {
		t.Fatalf("AddUser(orchrighk) = %v, want nil error", err)
	}
	s, err := r.StartSSHD([]string{"127.0.0.4"}, []*User{u})
	if err != nil {
		t.Fatalf("StartSSHD = %v, want nil error", err)
	}
	pid := s.PID
	if out, err := sshRun(t, s, u, "127.0.0.4", s.KnownHostsPath,
		"true"); err != nil {
		t.Fatalf("ssh before ReplaceHostKey = %v (%s), want success", err, out)
	}

	if err := s.ReplaceHostKey(); err != nil {
		t.Fatalf("ReplaceHostKey() = %v, want nil", err)
	}
	if s.PID != pid {
		t.Errorf("PID after ReplaceHostKey = %d, want %d", s.PID, pid)
	}
	out, err := sshRun(t, s, u, "127.0.0.4", s.KnownHostsPath, "true")
	if err == nil || !strings.Contains(out, "HOST IDENTIFICATION HAS CHANGED") {
		t.Errorf("ssh with old known_hosts = %v (%s), want a changed key "+
			"refusal", err, out)
	}
	fresh := filepath.Join(r.Dir, "known_hosts_fresh")
	if err := s.WriteKnownHosts(fresh); err != nil {
		t.Fatalf("WriteKnownHosts = %v, want nil", err)
	}
	if out, err := sshRun(t, s, u, "127.0.0.4", fresh, "true"); err != nil {
		t.Errorf("ssh with new known_hosts = %v (%s), want success", err, out)
	}
}

// TestUserReuse checks that a leftover rig user is adopted and deleted on
// Close, and that a user the rig did not make is refused untouched.
func TestUserReuse(t *testing.T) {
	needRoot(t)
	mkUser(t, "orchrigleft", "-m", "-c", userMarker)
	mkUser(t, "orchrigother", "-c", "someone else", "-s", "/bin/false")

	r := newRig(t)
	if _, err := r.AddUser("orchrigleft", SudoNoPassword); err != nil {
		t.Errorf("AddUser(leftover) = %v, want nil error", err)
	}
	_, err := r.AddUser("orchrigother", SudoNoPassword)
	if !errors.Is(err, ErrForeignUser) {
		t.Errorf("AddUser(foreign) = %v, want %v", err, ErrForeignUser)
	}
	if _, err := r.AddUser("orchrigleft", SudoNone); err == nil {
		t.Errorf("AddUser(orchrigleft) twice = nil error, want an error")
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}

	if _, err := user.Lookup("orchrigleft"); err == nil {
		t.Errorf("user orchrigleft exists after Close, want it deleted")
	}
	other, err := user.Lookup("orchrigother")
	if err != nil || other.Name != "someone else" {
		t.Errorf("foreign user after Close = %+v, %v, want it unchanged",
			other, err)
	}
	if _, err := os.Stat("/etc/sudoers.d/orch-rig-orchrigother"); err == nil {
		t.Errorf("sudoers file for the foreign user exists, want none")
	}
}

// mkUser creates a user for a test and deletes it at the end.
func mkUser(t *testing.T, name string, args ...string) {
	t.Helper()
	args = append(args, name)
	if out, err := exec.Command("useradd", args...).
		CombinedOutput(); err != nil {
		t.Fatalf("useradd %s = %v (%s), want success", name, err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", "-r", name).Run() })
}

// TestCloseLeavesNothing builds one of everything and checks that Close
// removes all of it and that a second Close is harmless.
func TestCloseLeavesNothing(t *testing.T) {
	needRoot(t)
	r := newRig(t)
	u, err := r.AddUser("orchrigclose", SudoNoPassword)
	if err != nil {
		t.Fatalf("AddUser = %v, want nil error", err)
	}
	s, err := r.StartSSHD([]string{"127.0.0.5"}, []*User{u})
	if err != nil {
		t.Fatalf("StartSSHD = %v, want nil error", err)
	}
	f, err := r.MakeFS("ext4", 32, "deep/mnt")
	if err != nil {
		t.Fatalf("MakeFS = %v, want nil error", err)
	}
	if out, err := exec.Command("fsfreeze", "-f", f.Mount).
		CombinedOutput(); err != nil {
		t.Fatalf("fsfreeze -f = %v (%s), want success", err, out)
	}
	f.WriteProbe(100 * time.Millisecond) // left blocked until Close thaws
	sessions := openSession(t, s, u)

	if err := r.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
	assertGone(t, r, s, f)
	for _, p := range sessions {
		if p.alive() {
			t.Errorf("session process %d alive after Close, want ended",
				p.pid)
		}
	}
}

// openSession starts a remote command that would run for minutes and
// returns the session processes on the sshd side once it runs. The local
// ssh client is killed at the end of the test.
func openSession(t *testing.T, s *SSHD, u *User) []proc {
	t.Helper()
	cmd := exec.Command("ssh", "-F", "/dev/null", "-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile="+s.KnownHostsPath,
		"-o", "StrictHostKeyChecking=yes", "-i", u.KeyPath,
		"-p", strconv.Itoa(s.Port), u.Name+"@"+s.Addrs[0],
		"echo ready; exec sleep 300")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ssh = %v, want nil", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	buf := make([]byte, 6)
	if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("read from ssh session = %q, %v, want \"ready\"", buf, err)
	}
	procs := descendants(s.PID)
	if len(procs) == 0 {
		t.Fatalf("descendants(sshd %d) = none, want the session", s.PID)
	}
	return procs
}

// assertGone checks that no trace of the closed rig is left.
func assertGone(t *testing.T, r *Rig, s *SSHD, f *FS) {
	t.Helper()
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil || strings.Contains(string(mounts), r.Dir) {
		t.Errorf("mountinfo after Close mentions %s (read err %v)", r.Dir, err)
	}
	loops, err := exec.Command("losetup", "-l", "-n", "-O", "BACK-FILE").
		CombinedOutput()
	if err != nil || strings.Contains(string(loops), r.Dir) {
		t.Errorf("losetup -l after Close = %q, %v, want nothing under %s",
			loops, err, r.Dir)
	}
	if err := syscall.Kill(s.PID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(sshd pid %d, 0) after Close = %v, want ESRCH",
			s.PID, err)
	}
	if _, err := user.Lookup("orchrigclose"); err == nil {
		t.Errorf("user orchrigclose exists after Close, want it deleted")
	}
	if _, err := os.Stat("/etc/sudoers.d/orch-rig-orchrigclose"); err == nil {
		t.Errorf("sudoers file exists after Close, want it removed")
	}
	if _, err := os.Stat(r.Dir); !os.IsNotExist(err) {
		t.Errorf("Stat(%s) after Close = %v, want not exist", r.Dir, err)
	}
	if _, err := r.MakeFS("ext4", 32, "again"); !errors.Is(err, ErrClosed) {
		t.Errorf("MakeFS after Close = %v, want %v", err, ErrClosed)
	}
	dev := strings.TrimPrefix(f.Device, "/dev/")
	back, err := os.ReadFile("/sys/block/" + dev + "/loop/backing_file")
	if err == nil && strings.Contains(string(back), r.Dir) {
		t.Errorf("%s after Close is backed by %s, want detached",
			f.Device, back)
	}
}
