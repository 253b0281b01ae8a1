package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchestrate-dev/orchestrate/internal/ec2sim"
	"github.com/orchestrate-dev/orchestrate/internal/sshexec"
	"github.com/orchestrate-dev/orchestrate/test/rig"
)

// bastionSSHD is the bastion of the ProxyJump tests, once started.
var bastionSSHD *rig.SSHD

// startBastion starts a second rig sshd on 127.0.0.9 for world.user, the
// first time it is asked for; the rig stops it at teardown.
func startBastion(t *testing.T) *rig.SSHD {
	t.Helper()
	if bastionSSHD == nil {
		b, err := world.rig.StartSSHD([]string{"127.0.0.9"}, []*rig.User{world.user})
		if err != nil {
			t.Fatal(err)
		}
		bastionSSHD = b
	}
	return bastionSSHD
}

// TestDialThroughOpenSSHBastion dials the target sshd through the bastion
// sshd with sshexec in this process: real OpenSSH on both ends of the
// direct-tcpip channel, host keys of both checked.
func TestDialThroughOpenSSHBastion(t *testing.T) {
	begin(t)
	bastion := startBastion(t)
	knownHosts := filepath.Join(t.TempDir(), "known_hosts")
	writeConcat(t, knownHosts, world.sshd.KnownHostsPath, bastion.KnownHostsPath)
	t.Setenv("SSH_AUTH_SOCK", "")
	cfg := sshexec.Config{
		User:            world.user.Name,
		IdentityFiles:   []string{world.user.KeyPath},
		KnownHostsFiles: []string{knownHosts},
		ProxyJump: []sshexec.Target{{Name: "bastion", Addr: "127.0.0.9",
			Port: bastion.Port, User: world.user.Name}},
	}
	target := sshexec.Target{Name: "target", Addr: world.hosts[0].addr, Port: world.sshd.Port}

	logStart := fileSize(t, bastion.LogPath)
	targetLog := fileSize(t, world.sshd.LogPath)
	c, err := sshexec.Dial(context.Background(), target, cfg)
	if err != nil {
		t.Fatalf("Dial(%s via bastion) = %v, want nil", target.Addr, err)
	}
	defer c.Close()
	var out bytes.Buffer
	if err := c.Exec(context.Background(), "echo via-bastion", nil, &out, nil); err != nil || out.String() != "via-bastion\n" {
		t.Fatalf("Exec(echo via-bastion) = %q, %v, want %q, nil", out.String(), err, "via-bastion\n")
	}
	if pid, ok, err := dialledBy(world.sshd.LogPath, targetLog, target.Addr, target.Port, bastion.PID); err != nil || !ok {
		t.Errorf("connection to %s:%d was opened by pid %d (%v), want a process of the bastion sshd (pid %d)", target.Addr, target.Port, pid, err, bastion.PID)
	}
	c.Close()
	if log := readFrom(t, bastion.LogPath, logStart); !strings.Contains(log, "Accepted publickey for "+world.user.Name) {
		t.Errorf("bastion log has no login by %s:\n%s", world.user.Name, log)
	} else {
		t.Logf("bastion log:\n%s", log)
	}

	// The bastion's key is checked too: without it the dial is refused.
	cfg.KnownHostsFiles = []string{world.sshd.KnownHostsPath}
	if _, err := sshexec.Dial(context.Background(), target, cfg); !errors.Is(err, sshexec.ErrHostKeyUnknown) {
		t.Errorf("Dial(via bastion with unknown bastion key) = %v, want ErrHostKeyUnknown", err)
	}
}

// TestRunThroughProxyJump runs orchestrate against 127.0.0.2 with an
// ssh_config (--ssh-config) that sends it through a second sshd on
// 127.0.0.9 acting as the bastion. Both daemons share a source address
// (127.0.0.1) for loopback connections, so the proof is twofold: the
// bastion's log shows orchestrate logging in during the run, and the same
// run with the jump host pointed at a dead port fails to connect, which
// it could not if orchestrate dialled 127.0.0.2 directly.
func TestRunThroughProxyJump(t *testing.T) {
	begin(t)
	bastion := startBastion(t)
	knownHosts := filepath.Join(t.TempDir(), "known_hosts")
	writeConcat(t, knownHosts, world.sshd.KnownHostsPath, bastion.KnownHostsPath)
	h := world.hosts[0]
	hostsFile := writeHostsFile(t, hostLine(h, h.addr))

	tests := []struct {
		name     string
		jumpPort int
		wantCode int
	}{
		{"ThroughBastion", bastion.Port, 0},
		{"DeadBastion", deadPort(t), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sshConfig := filepath.Join(t.TempDir(), "ssh_config")
			body := fmt.Sprintf("Host %s\n  ProxyJump %s@127.0.0.9:%d\n", h.addr, world.user.Name, tt.jumpPort)
			if err := os.WriteFile(sshConfig, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			logStart := fileSize(t, bastion.LogPath)
			targetLog := fileSize(t, world.sshd.LogPath)
			srv, endpoint := emulator(t)
			// While CreateSnapshots is handled the SSH connection is open:
			// find who holds its client end.
			var mu sync.Mutex
			var owner int
			var ownerErr error
			var viaBastion, seen bool
			srv.OnCreateSnapshots(func(ec2sim.CreateEvent) {
				pid, ok, err := dialledBy(world.sshd.LogPath, targetLog, h.addr, world.sshd.Port, bastion.PID)
				mu.Lock()
				defer mu.Unlock()
				owner, viaBastion, ownerErr, seen = pid, ok, err, true
			})

			res := orchestrate(t, endpoint, "--hosts", hostsFile, "--ssh-config", sshConfig,
				"--known-hosts", knownHosts, "--output", "json")
			if res.code != tt.wantCode {
				t.Fatalf("orchestrate run via ProxyJump port %d: exit %d, want %d\nstderr:\n%s",
					tt.jumpPort, res.code, tt.wantCode, res.stderr)
			}
			rep := parseReport(t, res.stdout)
			if len(rep.Hosts) != 1 {
				t.Fatalf("report has %d hosts, want 1", len(rep.Hosts))
			}
			hr := rep.Hosts[0]
			bastionLog := readFrom(t, bastion.LogPath, logStart)
			login := "Accepted publickey for " + world.user.Name
			switch tt.wantCode {
			case 0:
				if hr.Status != "succeeded" || hr.Consistency != "application" {
					t.Errorf("host %s status %q consistency %q, want succeeded, application", hr.Destination, hr.Status, hr.Consistency)
				}
				if !strings.Contains(bastionLog, login) {
					t.Errorf("bastion log during the run has no %q: orchestrate did not go through it\n%s", login, bastionLog)
				}
				mu.Lock()
				if !seen || !viaBastion {
					t.Errorf("SSH connection to %s during CreateSnapshots: seen %v, opened by pid %d (%v), want a process of the bastion sshd (pid %d)", h.addr, seen, owner, ownerErr, bastion.PID)
				}
				mu.Unlock()
			default:
				if hr.FailedStep != "connect" {
					t.Errorf("host %s failed at %q (%s), want connect", hr.Destination, hr.FailedStep, hr.Error)
				}
				if strings.Contains(bastionLog, login) {
					t.Errorf("bastion log has %q although the jump host was a dead port", login)
				}
			}
		})
	}
	requireWritable(t, defaultWritable)
}

// defaultWritable is how long a thawed filesystem may take to accept a
// write.
const defaultWritable = 5 * time.Second

// deadPort returns a loopback port on 127.0.0.9 that nothing listens on.
func deadPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.9:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// writeConcat writes the contents of srcs, in order, to dst.
func writeConcat(t *testing.T, dst string, srcs ...string) {
	t.Helper()
	var b strings.Builder
	for _, s := range srcs {
		data, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	if err := os.WriteFile(dst, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fileSize returns the size of path, 0 if it does not exist.
func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// readFrom returns path's content from offset on.
func readFrom(t *testing.T, path string, offset int64) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if offset > int64(len(data)) {
		return ""
	}
	return string(data[offset:])
}

// connLine matches sshd's VERBOSE line for an incoming connection.
var connLine = regexp.MustCompile(`Connection from 127\.0\.0\.1 port (\d+) on (\S+) port (\d+)`)

// dialledBy finds, in the target sshd's log from offset on, the last
// connection to addr:port and returns the PID holding its client end and
// whether that process descends from ancestor. The connection must still
// be open. Both the bastion and orchestrate reach loopback from
// 127.0.0.1, so the source address proves nothing; the owner of the
// client socket does. It does not use t, so hooks may call it.
func dialledBy(logPath string, offset int64, addr string, port, ancestor int) (int, bool, error) {
	data, err := os.ReadFile(logPath)
	if err != nil {
		return 0, false, err
	}
	var srcPort int
	if offset <= int64(len(data)) {
		for _, m := range connLine.FindAllStringSubmatch(string(data[offset:]), -1) {
			if m[2] == addr && m[3] == strconv.Itoa(port) {
				srcPort, _ = strconv.Atoi(m[1])
			}
		}
	}
	if srcPort == 0 {
		return 0, false, fmt.Errorf("target sshd log has no connection to %s port %d", addr, port)
	}
	inode, err := clientSocketInode(srcPort, port)
	if err != nil {
		return 0, false, err
	}
	pid, err := socketOwner(inode)
	if err != nil {
		return 0, false, err
	}
	for p := pid; p > 1; p = parentPID(p) {
		if p == ancestor {
			return pid, true, nil
		}
	}
	return pid, false, nil
}

// clientSocketInode returns the inode of the IPv4 socket whose local port
// is lport and remote port rport.
func clientSocketInode(lport, rport int) (string, error) {
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return "", err
	}
	wantL, wantR := fmt.Sprintf(":%04X", lport), fmt.Sprintf(":%04X", rport)
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 9 && strings.HasSuffix(f[1], wantL) && strings.HasSuffix(f[2], wantR) {
			return f[9], nil
		}
	}
	return "", fmt.Errorf("no open TCP socket from port %d to port %d in /proc/net/tcp", lport, rport)
}

// socketOwner returns a PID with an open descriptor on socket inode.
func socketOwner(inode string) (int, error) {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	want := "socket:[" + inode + "]"
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		for _, fd := range fds {
			if l, _ := os.Readlink(filepath.Join("/proc", p.Name(), "fd", fd.Name())); l == want {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("no process holds socket inode %s", inode)
}

// parentPID returns pid's parent, or 0.
func parentPID(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	rest := s[strings.LastIndexByte(s, ')')+1:]
	f := strings.Fields(rest)
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}
