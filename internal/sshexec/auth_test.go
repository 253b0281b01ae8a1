package sshexec

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// startAgent serves an in-memory keyring holding keys on a unix socket
// and points SSH_AUTH_SOCK at it for the test.
func startAgent(t *testing.T, keys ...ed25519.PrivateKey) {
	t.Helper()
	ring := agent.NewKeyring()
	for _, k := range keys {
		if err := ring.Add(agent.AddedKey{PrivateKey: k, Comment: "test"}); err != nil {
			t.Fatalf("add key to agent: %v", err)
		}
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatalf("listen on %s: %v", sock, err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				agent.ServeAgent(ring, conn)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	t.Setenv("SSH_AUTH_SOCK", sock)
}

func TestAgentAuth(t *testing.T) {
	f := newFixture(t)
	startAgent(t, f.clientPriv)
	f.cfg.IdentityFiles = nil
	f.cfg.UseAgent = true

	c := mustDial(t, f.srv.target(), f.cfg)
	if err := c.Exec(context.Background(), "exit 0", nil, nil, nil); err != nil {
		t.Fatalf("Exec over agent-authenticated client = %v, want nil", err)
	}
	f.srv.assertNoForbiddenRequests(t)
	for _, r := range f.srv.recorded() {
		if strings.Contains(r, "agent") {
			t.Errorf("server received %q, want no agent forwarding", r)
		}
	}
}

func TestAgentWithoutMatchingKey(t *testing.T) {
	f := newFixture(t)
	_, other, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	startAgent(t, other)
	f.cfg.IdentityFiles = nil
	f.cfg.UseAgent = true

	_, err = Dial(context.Background(), f.srv.target(), f.cfg)
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("Dial(agent with other key) = %v, want *AuthError", err)
	}
	if len(ae.Methods) != 1 || !strings.Contains(ae.Methods[0], "agent") {
		t.Errorf("AuthError.Methods = %q, want one agent entry", ae.Methods)
	}
}

func TestPassphraseProtectedKeyFile(t *testing.T) {
	tests := []struct {
		name      string
		agentHold bool
		wantErr   bool
	}{
		{"NoAgent", false, true},
		{"AgentHoldsKey", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			keyFile := writeKeyFile(t, f.clientPriv, "secret")
			f.cfg.IdentityFiles = []string{keyFile}
			if tt.agentHold {
				startAgent(t, f.clientPriv)
				f.cfg.UseAgent = true
			}

			c, err := Dial(context.Background(), f.srv.target(), f.cfg)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Dial(%s) = %v, want nil", tt.name, err)
				}
				c.Close()
				return
			}
			var pm *ssh.PassphraseMissingError
			if !errors.As(err, &pm) {
				t.Fatalf("Dial(%s) = %v, want *ssh.PassphraseMissingError", tt.name, err)
			}
			if !strings.Contains(err.Error(), keyFile) {
				t.Errorf("Dial(%s) error %q does not name %s", tt.name, err, keyFile)
			}
			if got := f.srv.connections(); got != 0 {
				t.Errorf("server connections = %d, want 0 (fail before dialing)", got)
			}
		})
	}
}

func TestMissingIdentityFile(t *testing.T) {
	f := newFixture(t)
	missing := filepath.Join(t.TempDir(), "id_missing")
	f.cfg.IdentityFiles = []string{missing}

	_, err := Dial(context.Background(), f.srv.target(), f.cfg)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("Dial(missing identity) = %v, want error naming %s", err, missing)
	}
}
