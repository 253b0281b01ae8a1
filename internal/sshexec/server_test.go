package sshexec

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// testServer is an in-process SSH server on 127.0.0.1 that accepts
// public-key auth for given keys and interprets a tiny command set:
//
//	echo ARGS    print ARGS and a newline, exit 0
//	echoerr ARGS print ARGS to stderr, exit 0
//	cat          copy stdin to stdout until EOF, exit 0
//	exit N       exit with status N
//	kill SIG     end with exit-signal SIG
//	sleep        wait for end of input, then exit 0
//	drop         close the TCP connection without answering
//
// It records every request it receives so tests can assert what the
// client never asks for.
type testServer struct {
	t        *testing.T
	ln       net.Listener
	hostKeys []ssh.Signer
	allowed  []ssh.PublicKey

	mu       sync.Mutex
	conns    []net.Conn
	accepted int
	requests []string // "global:TYPE", "channel:TYPE", "session:TYPE"
	execs    []string

	// forwardTo lists the host:port destinations a direct-tcpip channel
	// may reach; nil refuses every channel but sessions.
	forwardTo map[string]bool
	forwards  []string      // direct-tcpip destinations asked for
	ended     chan struct{} // one value per connection that ended

	keepalives chan struct{} // one value per keepalive, when not full
	started    chan string   // command, when it starts
	inputEnded chan string   // command, when its stdin reaches EOF
	wg         sync.WaitGroup
}

// newTestServer starts a server with the given host keys that accepts
// the allowed client keys. It stops at test cleanup.
func newTestServer(t *testing.T, hostKeys []ssh.Signer, allowed ...ssh.PublicKey) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &testServer{
		t:          t,
		ln:         ln,
		hostKeys:   hostKeys,
		allowed:    allowed,
		keepalives: make(chan struct{}, 100),
		ended:      make(chan struct{}, 100),
		started:    make(chan string, 100),
		inputEnded: make(chan string, 100),
	}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.stop)
	return s
}

// stop closes the listener and every connection and waits for handlers.
func (s *testServer) stop() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// port returns the listening port.
func (s *testServer) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// host returns the known_hosts name of the server.
func (s *testServer) host() string {
	return knownhosts.Normalize(s.ln.Addr().String())
}

// target returns a Target for the server.
func (s *testServer) target() Target {
	return Target{Name: "test", Addr: "127.0.0.1", Port: s.port(), User: "op"}
}

func (s *testServer) record(kind, typ string) {
	s.mu.Lock()
	s.requests = append(s.requests, kind+":"+typ)
	s.mu.Unlock()
}

// recorded returns the requests seen so far.
func (s *testServer) recorded() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// executed returns the exec'd commands seen so far.
func (s *testServer) executed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.execs...)
}

// connections returns the number of TCP connections accepted.
func (s *testServer) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

func (s *testServer) config() *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			for _, a := range s.allowed {
				if bytes.Equal(a.Marshal(), k.Marshal()) {
					return nil, nil
				}
			}
			return nil, errors.New("key not allowed")
		},
	}
	for _, k := range s.hostKeys {
		cfg.AddHostKey(k)
	}
	return cfg
}

func (s *testServer) serve() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, conn)
		s.accepted++
		s.mu.Unlock()
		s.wg.Add(1)
		go s.handle(conn)
	}
}

func (s *testServer) handle(conn net.Conn) {
	defer s.wg.Done()
	defer func() {
		select {
		case s.ended <- struct{}{}:
		default:
		}
	}()
	defer conn.Close()
	sc, chans, reqs, err := ssh.NewServerConn(conn, s.config())
	if err != nil {
		return
	}
	defer sc.Close()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for r := range reqs {
			s.record("global", r.Type)
			if r.Type == "keepalive@openssh.com" {
				select {
				case s.keepalives <- struct{}{}:
				default:
				}
			}
			// Unknown requests fail, as OpenSSH answers keepalives.
			r.Reply(false, nil)
		}
	}()
	for nc := range chans {
		s.record("channel", nc.ChannelType())
		if nc.ChannelType() == "direct-tcpip" {
			s.forward(nc)
			continue
		}
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		s.wg.Add(1)
		go s.session(conn, ch, creqs)
	}
}

// forward serves a direct-tcpip channel to an allowed destination,
// recording every destination asked for.
func (s *testServer) forward(nc ssh.NewChannel) {
	var p struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
		nc.Reject(ssh.ConnectionFailed, "bad direct-tcpip request")
		return
	}
	dest := net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port)))
	s.mu.Lock()
	s.forwards = append(s.forwards, dest)
	allowed := s.forwardTo[dest]
	s.mu.Unlock()
	if !allowed {
		nc.Reject(ssh.Prohibited, "forwarding to "+dest+" not allowed")
		return
	}
	out, err := net.Dial("tcp", dest)
	if err != nil {
		nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		out.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		io.Copy(out, ch)
		out.Close()
	}()
	go func() {
		defer s.wg.Done()
		io.Copy(ch, out)
		ch.Close()
	}()
}

// allowForward lets direct-tcpip channels reach the given host:ports.
func (s *testServer) allowForward(dests ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.forwardTo == nil {
		s.forwardTo = map[string]bool{}
	}
	for _, d := range dests {
		s.forwardTo[d] = true
	}
}

// forwarded returns the direct-tcpip destinations asked for so far.
func (s *testServer) forwarded() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.forwards...)
}

// session answers a session's requests and runs its exec command.
func (s *testServer) session(conn net.Conn, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer s.wg.Done()
	defer ch.Close()
	for r := range reqs {
		s.record("session", r.Type)
		if r.Type != "exec" {
			r.Reply(false, nil)
			continue
		}
		var p struct{ Command string }
		if err := ssh.Unmarshal(r.Payload, &p); err != nil {
			r.Reply(false, nil)
			continue
		}
		r.Reply(true, nil)
		s.mu.Lock()
		s.execs = append(s.execs, p.Command)
		s.mu.Unlock()
		notify(s.started, p.Command)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.run(conn, ch, p.Command)
		}()
	}
}

// run interprets one command and ends the channel with its status.
func (s *testServer) run(conn net.Conn, ch ssh.Channel, cmd string) {
	name, arg, _ := strings.Cut(cmd, " ")
	status := 0
	switch name {
	case "echo":
		fmt.Fprintln(ch, arg)
	case "echoerr":
		fmt.Fprintln(ch.Stderr(), arg)
	case "cat":
		io.Copy(ch, ch)
		notify(s.inputEnded, cmd)
	case "sleep":
		io.Copy(io.Discard, ch)
		notify(s.inputEnded, cmd)
	case "exit":
		status, _ = strconv.Atoi(arg)
	case "kill":
		sig := struct {
			Signal     string
			CoreDumped bool
			Error      string
			Lang       string
		}{Signal: arg}
		ch.SendRequest("exit-signal", false, ssh.Marshal(sig))
		ch.Close()
		return
	case "drop":
		conn.Close()
		return
	default:
		fmt.Fprintf(ch.Stderr(), "%s: not found\n", name)
		status = 127
	}
	st := struct{ Status uint32 }{uint32(status)}
	ch.SendRequest("exit-status", false, ssh.Marshal(st))
	ch.Close()
}

// notify sends v on ch unless ch is full.
func notify(ch chan string, v string) {
	select {
	case ch <- v:
	default:
	}
}

// newEd25519 returns a fresh ed25519 signer.
func newEd25519(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generate ed25519 key: %v", err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatalf("ed25519 signer: %v", err)
	}
	return s
}

// newECDSA returns a fresh P-256 signer.
func newECDSA(t *testing.T) ssh.Signer {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate ecdsa key: %v", err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatalf("ecdsa signer: %v", err)
	}
	return s
}

// writeKeyFile writes signer's private key in OpenSSH format, encrypted
// when passphrase is not empty, and returns its path.
func writeKeyFile(t *testing.T, priv ed25519.PrivateKey, passphrase string) string {
	t.Helper()
	var block *pem.Block
	var err error
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "test")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "test", []byte(passphrase))
	}
	if err != nil {
		t.Fatalf("marshal private key: %v", err)
	}
	p := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatalf("write key file: %v", err)
	}
	return p
}

// writeKnownHosts writes lines to a new known_hosts file.
func writeKnownHosts(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "known_hosts")
	data := strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatalf("write known_hosts: %v", err)
	}
	return p
}

// assertNoForbiddenRequests fails if the client asked for anything but
// sessions, exec and keepalives.
func (s *testServer) assertNoForbiddenRequests(t *testing.T) {
	t.Helper()
	allowed := map[string]bool{
		"global:keepalive@openssh.com": true,
		"channel:session":              true,
		"session:exec":                 true,
	}
	for _, r := range s.recorded() {
		if !allowed[r] {
			t.Errorf("server received request %q, want only %v", r, allowed)
		}
	}
}
