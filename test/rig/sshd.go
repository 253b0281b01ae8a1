package rig

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// MaxListenAddrs is the most addresses one sshd listens on; OpenSSH
// refuses more ("Too many listen sockets"). Start one SSHD per 16 hosts.
const MaxListenAddrs = 16

// sshdPath is where Debian installs sshd; sshd re-executes itself on
// SIGHUP and needs an absolute path for that.
const sshdPath = "/usr/sbin/sshd"

// startTimeout bounds how long StartSSHD and ReplaceHostKey wait for the
// daemon to take connections.
const startTimeout = 10 * time.Second

// Host key types, as ssh.PublicKey.Type names them.
const (
	KeyEd25519 = ssh.KeyAlgoED25519
	KeyECDSA   = ssh.KeyAlgoECDSA256
)

// SSHD is a running OpenSSH daemon the rig started on loopback addresses.
// Its fields may be read concurrently, but ReplaceHostKey changes HostKeys
// and must not run alongside readers or other SSHD methods.
type SSHD struct {
	// Addrs are the addresses it listens on, all with the same Port.
	Addrs []string
	Port  int
	// PID is the daemon's process ID; it stays the same across SIGHUP.
	PID int
	// KnownHostsPath is a known_hosts file with one ssh-ed25519 line per
	// address ("[127.0.0.2]:PORT ssh-ed25519 …"), although the daemon
	// also has an ECDSA key. ReplaceHostKey does not rewrite it.
	KnownHostsPath string
	// HostKeys are the daemon's public host keys by type (KeyEd25519,
	// KeyECDSA).
	HostKeys map[string]ssh.PublicKey
	// LogPath is sshd's log file (LogLevel VERBOSE).
	LogPath string
	// ConfigPath is the sshd_config the daemon runs with.
	ConfigPath string

	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	logf func(format string, args ...any)
}

// StartSSHD starts /usr/sbin/sshd listening on one free port on every
// address in addrs (at most MaxListenAddrs), accepting public-key logins
// for the given users only, with fresh ed25519 and ECDSA host keys. It
// returns once every address accepts TCP connections, or fails with the
// tail of sshd's log within about ten seconds. Close stops the daemon.
func (r *Rig) StartSSHD(addrs []string, users []*User) (*SSHD, error) {
	n, err := r.begin()
	if err != nil {
		return nil, err
	}
	s, err := r.startSSHD(n, addrs, users)
	if err != nil {
		return nil, fmt.Errorf("rig: start sshd on %v: %w", addrs, err)
	}
	return s, nil
}

// startSSHD does the work of StartSSHD.
func (r *Rig) startSSHD(n int, addrs []string, users []*User) (*SSHD, error) {
	if len(addrs) == 0 || len(addrs) > MaxListenAddrs {
		return nil, fmt.Errorf("need 1 to %d addresses, have %d",
			MaxListenAddrs, len(addrs))
	}
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("address %q is not a loopback IP", a)
		}
	}
	port, err := freePort(addrs)
	if err != nil {
		return nil, err
	}

	s := &SSHD{Addrs: append([]string(nil), addrs...), Port: port,
		HostKeys: map[string]ssh.PublicKey{}, logf: r.logf,
		dir: filepath.Join(r.Dir, "sshd-"+strconv.Itoa(n))}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("make sshd dir: %w", err)
	}
	s.LogPath = filepath.Join(s.dir, "sshd.log")
	s.ConfigPath = filepath.Join(s.dir, "sshd_config")
	s.KnownHostsPath = filepath.Join(s.dir, "known_hosts")
	if err := s.writeHostKeys(); err != nil {
		return nil, err
	}
	if err := s.WriteKnownHosts(s.KnownHostsPath); err != nil {
		return nil, err
	}
	if err := s.writeConfig(r.Dir, users); err != nil {
		return nil, err
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, fmt.Errorf("make privilege separation dir: %w", err)
	}
	if _, err := run(sshdPath, "-t", "-f", s.ConfigPath); err != nil {
		return nil, fmt.Errorf("check config: %w", err)
	}

	if err := s.start(); err != nil {
		return nil, err
	}
	r.push(fmt.Sprintf("stop sshd pid %d", s.PID), s.stop)
	r.mu.Lock()
	r.sshds = append(r.sshds, s)
	r.mu.Unlock()
	if err := s.waitListening(nil); err != nil {
		return nil, err
	}
	r.logf("sshd pid %d listening on %v port %d", s.PID, addrs, port)
	return s, nil
}

// freePort picks a port the kernel gives for 127.0.0.1:0 that every addr
// can bind too. Another process may still take it before sshd does.
func freePort(addrs []string) (int, error) {
	var lastErr error
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("pick port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		lastErr = nil
		for _, a := range addrs {
			hp := net.JoinHostPort(a, strconv.Itoa(port))
			la, err := net.Listen("tcp", hp)
			if err != nil {
				lastErr = err
				break
			}
			la.Close()
		}
		if lastErr == nil {
			return port, nil
		}
	}
	return 0, fmt.Errorf("pick port free on %v: %w", addrs, lastErr)
}

// writeConfig writes sshd_config.
func (s *SSHD) writeConfig(rigDir string, users []*User) error {
	names := make([]string, 0, len(users))
	for _, u := range users {
		names = append(names, u.Name)
	}
	c := sshdConfig{
		Port:       s.Port,
		Addrs:      s.Addrs,
		HostKeys:   []string{s.hostKeyPath("ed25519"), s.hostKeyPath("ecdsa")},
		PidFile:    filepath.Join(s.dir, "sshd.pid"),
		AuthKeys:   filepath.Join(rigDir, "authorized_keys", "%u"),
		AllowUsers: names,
	}
	if err := os.WriteFile(s.ConfigPath, []byte(c.render()), 0o600); err != nil {
		return fmt.Errorf("write sshd config: %w", err)
	}
	return nil
}

// start runs sshd in the foreground as a child in its own process group.
func (s *SSHD) start() error {
	logFile, err := os.OpenFile(s.LogPath,
		os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open sshd log: %w", err)
	}
	defer logFile.Close()

	cmd := exec.Command(sshdPath, "-D", "-e", "-f", s.ConfigPath,
		"-E", s.LogPath)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", sshdPath, err)
	}
	s.cmd = cmd
	s.PID = cmd.Process.Pid
	s.done = make(chan struct{})
	go func() {
		cmd.Wait()
		close(s.done)
	}()
	return nil
}

// stop sends SIGTERM to the daemon, SIGKILL if it is still there after two
// seconds, and waits for it; then it ends the sessions it had forked.
func (s *SSHD) stop() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	// The sessions are found while they still descend from the daemon;
	// once it is gone they belong to init.
	sessions := descendants(s.PID)
	err := s.stopDaemon()
	return errors.Join(err, s.stopSessions(sessions))
}

// stopDaemon stops the listening daemon itself.
func (s *SSHD) stopDaemon() error {
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil &&
		!errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal sshd pid %d: %w", s.PID, err)
	}
	select {
	case <-s.done:
		return nil
	case <-time.After(2 * time.Second):
	}
	s.logf("sshd pid %d ignored SIGTERM, killing it", s.PID)
	if err := s.cmd.Process.Kill(); err != nil &&
		!errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill sshd pid %d: %w", s.PID, err)
	}
	select {
	case <-s.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("wait for sshd pid %d: still running", s.PID)
	}
}

// waitListening waits until every address answers with the SSH banner and,
// if want is set, offers that ed25519 host key.
func (s *SSHD) waitListening(want ssh.PublicKey) error {
	deadline := time.Now().Add(startTimeout)
	for _, a := range s.Addrs {
		hp := net.JoinHostPort(a, strconv.Itoa(s.Port))
		for {
			err := probe(hp, want)
			if err == nil {
				break
			}
			select {
			case <-s.done:
				return fmt.Errorf("sshd exited: %s",
					tailFile(s.LogPath, 15))
			default:
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("wait for %s: %w; sshd log: %s", hp, err,
					tailFile(s.LogPath, 15))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// errGotKey stops a handshake once the host key has been seen.
var errGotKey = errors.New("host key seen")

// probe connects to hp and reads the SSH banner; with want set it also
// runs the key exchange for ed25519 and fails unless the host offers want.
func probe(hp string, want ssh.PublicKey) error {
	conn, err := net.DialTimeout("tcp", hp, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if want == nil {
		buf := make([]byte, 4)
		if _, err := conn.Read(buf); err != nil {
			return fmt.Errorf("read banner: %w", err)
		}
		if string(buf) != "SSH-" {
			return fmt.Errorf("read banner: got %q", buf)
		}
		return nil
	}

	var got ssh.PublicKey
	cfg := &ssh.ClientConfig{
		User:              "probe",
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			got = k
			return errGotKey
		},
	}
	_, _, _, err = ssh.NewClientConn(conn, hp, cfg)
	if got == nil {
		return fmt.Errorf("read host key: %w", err)
	}
	if string(got.Marshal()) != string(want.Marshal()) {
		return errors.New("host still offers the old key")
	}
	return nil
}

// sshdConfig holds the variable parts of the daemon's configuration.
type sshdConfig struct {
	Port       int
	Addrs      []string
	HostKeys   []string
	PidFile    string
	AuthKeys   string
	AllowUsers []string
}

// render returns the sshd_config text. Settings not listed keep OpenSSH's
// defaults; AcceptEnv is left out because its default accepts nothing.
func (c sshdConfig) render() string {
	var b strings.Builder
	line := func(k string, v any) { fmt.Fprintf(&b, "%s %v\n", k, v) }

	line("Port", c.Port)
	for _, a := range c.Addrs {
		line("ListenAddress", a)
	}
	for _, k := range c.HostKeys {
		line("HostKey", k)
	}
	line("PidFile", c.PidFile)
	line("AuthorizedKeysFile", c.AuthKeys)

	// The scratch dir is not root-only, which StrictModes would refuse.
	line("StrictModes", "no")
	line("UsePAM", "no")
	line("PasswordAuthentication", "no")
	line("KbdInteractiveAuthentication", "no")
	line("PubkeyAuthentication", "yes")
	line("PermitRootLogin", "prohibit-password")
	if len(c.AllowUsers) > 0 {
		line("AllowUsers", strings.Join(c.AllowUsers, " "))
	} else {
		line("DenyUsers", "*")
	}

	line("LogLevel", "VERBOSE")
	line("MaxStartups", "100:30:200")
	line("MaxSessions", 50)
	line("AllowAgentForwarding", "no")
	line("PermitUserEnvironment", "no")
	line("UseDNS", "no")
	return b.String()
}
