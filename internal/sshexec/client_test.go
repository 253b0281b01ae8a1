package sshexec

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// safety bounds how long a test waits for an event that must happen; it
// guards against hangs and is not a speed assertion.
const safety = 10 * time.Second

// fixture is a server with ecdsa and ed25519 host keys, a client key file
// it accepts, and a known_hosts file holding only the ed25519 host key.
type fixture struct {
	srv        *testServer
	hostED     ssh.Signer
	hostEC     ssh.Signer
	clientPriv ed25519.PrivateKey
	clientKey  ssh.Signer
	knownHosts string
	cfg        Config
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	t.Setenv("SSH_AUTH_SOCK", "")
	f := &fixture{hostED: newEd25519(t), hostEC: newECDSA(t)}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generate client key: %v", err)
	}
	f.clientPriv = priv
	f.clientKey, err = ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatalf("client signer: %v", err)
	}
	f.srv = newTestServer(t, []ssh.Signer{f.hostEC, f.hostED},
		f.clientKey.PublicKey())
	f.knownHosts = writeKnownHosts(t,
		knownhosts.Line([]string{f.srv.host()}, f.hostED.PublicKey()))
	f.cfg = Config{
		IdentityFiles:   []string{writeKeyFile(t, priv, "")},
		KnownHostsFiles: []string{f.knownHosts},
	}
	return f
}

// mustDial dials and closes the client at cleanup.
func mustDial(t *testing.T, tg Target, cfg Config) *Client {
	t.Helper()
	c, err := Dial(context.Background(), tg, cfg)
	if err != nil {
		t.Fatalf("Dial(%s) = %v, want nil", tg.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// wait fails the test if ch yields nothing within the safety bound.
func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(safety):
		t.Fatalf("%s did not happen", what)
	}
	var zero T
	return zero
}

func TestDialAndExecOverOneConnection(t *testing.T) {
	f := newFixture(t)
	c := mustDial(t, f.srv.target(), f.cfg)

	if got, want := c.User(), "op"; got != want {
		t.Errorf("User() = %q, want %q", got, want)
	}
	for _, word := range []string{"one", "two", "three"} {
		var out bytes.Buffer
		if err := c.Exec(context.Background(), "echo "+word, nil, &out, nil); err != nil {
			t.Fatalf("Exec(echo %s) = %v, want nil", word, err)
		}
		if got, want := out.String(), word+"\n"; got != want {
			t.Errorf("Exec(echo %s) stdout = %q, want %q", word, got, want)
		}
	}
	if got, want := f.srv.connections(), 1; got != want {
		t.Errorf("server connections = %d, want %d", got, want)
	}
	if err := c.Err(); err != nil {
		t.Errorf("Err() on live client = %v, want nil", err)
	}
	f.srv.assertNoForbiddenRequests(t)
}

// The server offers ecdsa and ed25519; known_hosts holds only ed25519.
// Go's default preference picks ecdsa and fails; Dial must not.
func TestDialHostKeyAlgorithmTrap(t *testing.T) {
	f := newFixture(t)

	cb, err := knownhosts.New(f.knownHosts)
	if err != nil {
		t.Fatalf("knownhosts.New: %v", err)
	}
	naive := &ssh.ClientConfig{
		User:            "op",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(f.clientKey)},
		HostKeyCallback: cb,
	}
	conn, err := ssh.Dial("tcp", f.srv.ln.Addr().String(), naive)
	if err == nil {
		conn.Close()
		t.Fatalf("ssh.Dial with default host key algorithms = nil, want key mismatch (the trap this test guards)")
	}
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) || len(ke.Want) == 0 {
		t.Fatalf("ssh.Dial with default host key algorithms = %v, want knownhosts key mismatch", err)
	}

	c := mustDial(t, f.srv.target(), f.cfg)
	if got, want := c.HostKey().Type(), ssh.KeyAlgoED25519; got != want {
		t.Errorf("HostKey().Type() = %q, want %q", got, want)
	}
}

func TestDialWrongClientKey(t *testing.T) {
	f := newFixture(t)
	_, wrong, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	keyFile := writeKeyFile(t, wrong, "")
	f.cfg.IdentityFiles = []string{keyFile}

	_, err = Dial(context.Background(), f.srv.target(), f.cfg)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("Dial(wrong key) = %v, want ErrAuth", err)
	}
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("Dial(wrong key) = %T, want *AuthError", err)
	}
	if got, want := ae.User, "op"; got != want {
		t.Errorf("AuthError.User = %q, want %q", got, want)
	}
	if len(ae.Methods) != 1 || !strings.Contains(ae.Methods[0], keyFile) {
		t.Errorf("AuthError.Methods = %q, want one entry naming %s", ae.Methods, keyFile)
	}
	if got := f.srv.executed(); len(got) != 0 {
		t.Errorf("server executed %q, want nothing", got)
	}
}

func TestDialNoKey(t *testing.T) {
	f := newFixture(t)
	f.cfg.IdentityFiles = nil
	f.cfg.UseAgent = true // but SSH_AUTH_SOCK is empty

	_, err := Dial(context.Background(), f.srv.target(), f.cfg)
	if !errors.Is(err, ErrNoKey) {
		t.Fatalf("Dial(no key) = %v, want ErrNoKey", err)
	}
	if !strings.Contains(err.Error(), "--identity-file") {
		t.Errorf("Dial(no key) error %q has no --identity-file hint", err)
	}
	if got := f.srv.connections(); got != 0 {
		t.Errorf("server connections = %d, want 0 (fail before dialing)", got)
	}
}

// silentListener accepts TCP connections and never speaks SSH.
func silentListener(t *testing.T) (Target, <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	accepted := make(chan struct{}, 1)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { conn.Close() })
			accepted <- struct{}{}
		}
	}()
	t.Cleanup(func() { ln.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	return Target{Name: "silent", Addr: "127.0.0.1", Port: port, User: "op"}, accepted
}

func TestDialHandshakeTimeout(t *testing.T) {
	f := newFixture(t)
	tg, _ := silentListener(t)
	f.cfg.ConnectTimeout = 100 * time.Millisecond

	_, err := Dial(context.Background(), tg, f.cfg)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial(silent server) = %v, want context.DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), "silent") {
		t.Errorf("Dial(silent server) error %q does not name the target", err)
	}
}

func TestDialCancelDuringHandshake(t *testing.T) {
	f := newFixture(t)
	tg, accepted := silentListener(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	errc := make(chan error, 1)
	go func() {
		_, err := Dial(ctx, tg, f.cfg)
		errc <- err
	}()
	wait(t, accepted, "accept")
	cancel()
	if err := wait(t, errc, "Dial return"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Dial(cancelled) = %v, want context.Canceled", err)
	}
}

func TestCloseEndsClient(t *testing.T) {
	f := newFixture(t)
	c := mustDial(t, f.srv.target(), f.cfg)

	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	wait(t, c.Done(), "Done after Close")
	if err := c.Err(); !errors.Is(err, ErrClosed) {
		t.Errorf("Err() after Close = %v, want ErrClosed", err)
	}
	if err := c.Exec(context.Background(), "echo x", nil, nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Exec after Close = %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
}

func TestResolveTarget(t *testing.T) {
	tests := []struct {
		name    string
		target  Target
		cfgUser string
		want    endpoint
	}{
		{"DefaultPort", Target{Addr: "db1", User: "u"}, "",
			endpoint{hostport: "db1:22", user: "u"}},
		{"ConfigUser", Target{Name: "n", Addr: "10.0.0.1", Port: 2222}, "ubuntu",
			endpoint{name: "n", hostport: "10.0.0.1:2222", user: "ubuntu"}},
		{"IPv6", Target{Addr: "::1", Port: 2222, User: "u"}, "",
			endpoint{hostport: "[::1]:2222", user: "u"}},
		{"Bracketed", Target{Addr: "[::1]", User: "u"}, "",
			endpoint{hostport: "[::1]:22", user: "u"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolve(tt.target, Config{User: tt.cfgUser})
			if err != nil || got != tt.want {
				t.Errorf("resolve(%+v) = %+v, %v, want %+v", tt.target, got, err, tt.want)
			}
		})
	}

	for _, bad := range []Target{{Name: "empty"}, {Addr: "h", Port: 70000}} {
		if _, err := resolve(bad, Config{User: "u"}); err == nil {
			t.Errorf("resolve(%+v) = nil error, want error", bad)
		}
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return string(b)
}
