package sshexec

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// jumpFixture is a target server behind one bastion, both on 127.0.0.1,
// both accepting the client key of the fixture; the bastion forwards to
// the target only.
type jumpFixture struct {
	*fixture
	bastion    *testServer
	bastionKey ssh.Signer
}

func newJumpFixture(t *testing.T) *jumpFixture {
	t.Helper()
	f := &jumpFixture{fixture: newFixture(t), bastionKey: newEd25519(t)}
	f.bastion = newTestServer(t, []ssh.Signer{f.bastionKey}, f.clientKey.PublicKey())
	f.bastion.allowForward(f.srv.ln.Addr().String())
	f.knownHosts = writeKnownHosts(t,
		knownhosts.Line([]string{f.srv.host()}, f.hostED.PublicKey()),
		knownhosts.Line([]string{f.bastion.host()}, f.bastionKey.PublicKey()))
	f.cfg.KnownHostsFiles = []string{f.knownHosts}
	f.cfg.ProxyJump = []Target{hopTarget(f.bastion, "bastion")}
	return f
}

// hopTarget is a ProxyJump hop for s.
func hopTarget(s *testServer, name string) Target {
	return Target{Name: name, Addr: "127.0.0.1", Port: s.port(), User: "op"}
}

func TestDialProxyJump(t *testing.T) {
	f := newJumpFixture(t)
	c := mustDial(t, f.srv.target(), f.cfg)

	var out bytes.Buffer
	if err := c.Exec(context.Background(), "echo through", nil, &out, nil); err != nil {
		t.Fatalf("Exec(echo through) via bastion = %v, want nil", err)
	}
	if got, want := out.String(), "through\n"; got != want {
		t.Errorf("Exec(echo through) stdout = %q, want %q", got, want)
	}
	if got, want := f.bastion.forwarded(), []string{f.srv.ln.Addr().String()}; !reflect.DeepEqual(got, want) {
		t.Errorf("bastion forwarded to %q, want %q", got, want)
	}
	if got, want := f.bastion.recorded(), []string{"channel:direct-tcpip"}; !reflect.DeepEqual(got, want) {
		t.Errorf("bastion received %q, want only %q (no session, no exec)", got, want)
	}
	if got := f.bastion.executed(); len(got) != 0 {
		t.Errorf("bastion executed %q, want nothing", got)
	}
	if got, want := c.HostKey().Marshal(), f.hostED.PublicKey().Marshal(); !bytes.Equal(got, want) {
		t.Errorf("HostKey() = %s, want the target's ed25519 key", ssh.FingerprintSHA256(c.HostKey()))
	}
	f.srv.assertNoForbiddenRequests(t)

	// Close takes the bastion connection down too.
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	wait(t, f.bastion.ended, "bastion connection end after Close")
}

func TestDialProxyJumpTwoHops(t *testing.T) {
	f := newJumpFixture(t)
	second := newTestServer(t, []ssh.Signer{f.bastionKey}, f.clientKey.PublicKey())
	second.allowForward(f.srv.ln.Addr().String())
	f.bastion.forwardTo = nil
	f.bastion.allowForward(second.ln.Addr().String())
	f.knownHosts = writeKnownHosts(t, readFile(t, f.knownHosts),
		knownhosts.Line([]string{second.host()}, f.bastionKey.PublicKey()))
	f.cfg.KnownHostsFiles = []string{f.knownHosts}
	f.cfg.ProxyJump = append(f.cfg.ProxyJump, hopTarget(second, "second"))

	c := mustDial(t, f.srv.target(), f.cfg)
	var out bytes.Buffer
	if err := c.Exec(context.Background(), "echo two", nil, &out, nil); err != nil || out.String() != "two\n" {
		t.Fatalf("Exec(echo two) via two hops = %q, %v, want %q, nil", out.String(), err, "two\n")
	}
	if got, want := f.bastion.forwarded(), []string{second.ln.Addr().String()}; !reflect.DeepEqual(got, want) {
		t.Errorf("first hop forwarded to %q, want %q", got, want)
	}
	if got, want := second.forwarded(), []string{f.srv.ln.Addr().String()}; !reflect.DeepEqual(got, want) {
		t.Errorf("second hop forwarded to %q, want %q", got, want)
	}
}

func TestDialProxyJumpRefused(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(t *testing.T, f *jumpFixture)
		wantIs   error // nil: any error
		wantText func(f *jumpFixture) []string
		// targetReached says whether the target may see a connection.
		targetReached bool
	}{
		{"BastionKeyUnknown", func(t *testing.T, f *jumpFixture) {
			f.cfg.KnownHostsFiles = []string{writeKnownHosts(t,
				knownhosts.Line([]string{f.srv.host()}, f.hostED.PublicKey()))}
		}, ErrHostKeyUnknown, texts("jump host bastion", "is unknown"), false},
		{"BastionKeyRecordedForAnotherPort", func(t *testing.T, f *jumpFixture) {
			// The bastion's key under the target's host:port must not
			// vouch for the bastion.
			f.cfg.KnownHostsFiles = []string{writeKnownHosts(t,
				knownhosts.Line([]string{f.srv.host()}, f.hostED.PublicKey()),
				knownhosts.Line([]string{f.srv.host()}, f.bastionKey.PublicKey()))}
		}, ErrHostKeyUnknown, func(f *jumpFixture) []string {
			return []string{"host key of bastion (" + f.bastion.host() + ") is unknown"}
		}, false},
		{"TargetKeyUnknown", func(t *testing.T, f *jumpFixture) {
			f.cfg.KnownHostsFiles = []string{writeKnownHosts(t,
				knownhosts.Line([]string{f.bastion.host()}, f.bastionKey.PublicKey()))}
		}, ErrHostKeyUnknown, func(f *jumpFixture) []string {
			return []string{"host key of test (" + f.srv.host() + ") is unknown"}
		}, true},
		{"TargetKeyChanged", func(t *testing.T, f *jumpFixture) {
			f.cfg.KnownHostsFiles = []string{writeKnownHosts(t,
				knownhosts.Line([]string{f.bastion.host()}, f.bastionKey.PublicKey()),
				knownhosts.Line([]string{f.srv.host()}, newEd25519(t).PublicKey()))}
		}, ErrHostKeyChanged, texts("host key of test", "does not match"), true},
		{"BastionRefusesKey", func(t *testing.T, f *jumpFixture) {
			f.bastion.allowed = nil
		}, ErrAuth, texts("jump host bastion", "authenticate as op"), false},
		{"ForwardingProhibited", func(t *testing.T, f *jumpFixture) {
			f.bastion.forwardTo = nil
		}, nil, func(f *jumpFixture) []string {
			return []string{"jump host bastion", "open a connection to " + f.srv.ln.Addr().String(), "prohibited"}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newJumpFixture(t)
			tt.setup(t, f)
			_, err := Dial(context.Background(), f.srv.target(), f.cfg)
			if err == nil {
				t.Fatalf("Dial(via bastion) = nil, want error")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Dial(via bastion) = %v, want %v", err, tt.wantIs)
			}
			for _, w := range tt.wantText(f) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Dial(via bastion) error %q, want it to contain %q", err, w)
				}
			}
			if got := f.srv.connections(); !tt.targetReached && got != 0 {
				t.Errorf("target connections = %d, want 0", got)
			}
			if got := f.srv.executed(); len(got) != 0 {
				t.Errorf("target executed %q, want nothing", got)
			}
			if f.bastion.connections() > 0 {
				wait(t, f.bastion.ended, "bastion connection closed after failed Dial")
			}
		})
	}
}

// texts returns a wantText that does not depend on the fixture.
func texts(want ...string) func(*jumpFixture) []string {
	return func(*jumpFixture) []string { return want }
}

func TestDialProxyJumpCancelAndTimeout(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		cancel  bool
		want    error
	}{
		{"Cancel", 0, true, context.Canceled},
		{"Timeout", 300 * time.Millisecond, false, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newJumpFixture(t)
			silent, accepted := silentListener(t)
			f.bastion.allowForward(hostportOf(silent))
			f.cfg.ConnectTimeout = tt.timeout
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()

			errc := make(chan error, 1)
			start := time.Now()
			go func() {
				_, err := Dial(ctx, silent, f.cfg)
				errc <- err
			}()
			wait(t, accepted, "bastion forwarding to the silent target")
			if tt.cancel {
				cancel()
			}
			err := wait(t, errc, "Dial return")
			if !errors.Is(err, tt.want) {
				t.Fatalf("Dial(silent target via bastion) = %v, want %v", err, tt.want)
			}
			if el := time.Since(start); el > safety/2 {
				t.Errorf("Dial(silent target via bastion) returned after %v, want promptly", el)
			}
			wait(t, f.bastion.ended, "bastion connection closed")
		})
	}
}

// hostportOf returns t's address for dialling.
func hostportOf(t Target) string {
	ep, _ := resolve(t, Config{})
	return ep.hostport
}
