package sshexec

// This file gathers the keys offered to the server: identity files first,
// then ssh-agent. Only public-key authentication is used; the agent is
// never forwarded.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// keySet is the keys to offer for one handshake.
type keySet struct {
	signers []ssh.Signer
	methods []string // one description per signer, for AuthError
	agent   net.Conn // open during the handshake only; may be nil
}

// close releases the agent connection.
func (k *keySet) close() {
	if k.agent != nil {
		k.agent.Close()
	}
}

// loadKeys reads the identity files and asks the agent for its keys. It
// fails with ErrNoKey when nothing can be offered.
func loadKeys(ctx context.Context, ep endpoint, cfg Config) (*keySet, error) {
	ks := &keySet{}
	var agentKeys []ssh.Signer
	var agentErr error
	if cfg.UseAgent {
		agentKeys, agentErr = ks.openAgent(ctx, cfg.Logger)
	}

	for _, file := range cfg.IdentityFiles {
		s, err := loadIdentity(file, agentKeys, cfg.Logger)
		if err != nil {
			ks.close()
			return nil, err
		}
		if s == nil {
			continue
		}
		ks.add(s, "publickey "+file)
	}
	for _, s := range agentKeys {
		ks.add(s, "publickey agent")
	}

	if len(ks.signers) == 0 {
		ks.close()
		why := "no identity file given"
		if cfg.UseAgent && agentErr != nil {
			why += ", " + agentErr.Error()
		} else if cfg.UseAgent {
			why += ", ssh-agent holds no keys"
		}
		return nil, fmt.Errorf("sshexec: connect to %s: %w: pass --identity-file or start ssh-agent (%s)", ep.label(), ErrNoKey, why)
	}
	return ks, nil
}

// add appends s unless a key with the same public half is already there.
func (k *keySet) add(s ssh.Signer, what string) {
	pub := s.PublicKey().Marshal()
	for _, have := range k.signers {
		if bytes.Equal(have.PublicKey().Marshal(), pub) {
			return
		}
	}
	k.signers = append(k.signers, s)
	k.methods = append(k.methods, fmt.Sprintf("%s (%s %s)", what,
		s.PublicKey().Type(), ssh.FingerprintSHA256(s.PublicKey())))
}

// openAgent connects to SSH_AUTH_SOCK and returns the agent's signers.
// The connection stays open in k.agent for signing during the handshake.
func (k *keySet) openAgent(ctx context.Context, log *slog.Logger) ([]ssh.Signer, error) {
	sock := os.Getenv("SSH_AUTH_SOCK")
	if sock == "" {
		log.Debug("ssh-agent not used: SSH_AUTH_SOCK is not set")
		return nil, errors.New("SSH_AUTH_SOCK is not set")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		log.Debug("ssh-agent not reachable", "socket", sock, "err", err)
		return nil, fmt.Errorf("connect to ssh-agent: %w", err)
	}
	signers, err := agent.NewClient(conn).Signers()
	if err != nil {
		conn.Close()
		log.Debug("ssh-agent listing failed", "socket", sock, "err", err)
		return nil, fmt.Errorf("list ssh-agent keys: %w", err)
	}
	k.agent = conn
	log.Debug("ssh-agent keys", "socket", sock, "count", len(signers))
	return signers, nil
}

// loadIdentity parses one private key file. It returns nil, nil for a
// passphrase-protected key whose public half the agent holds.
func loadIdentity(file string, agentKeys []ssh.Signer, log *slog.Logger) (ssh.Signer, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("sshexec: read identity file %s: %w", file, err)
	}
	s, err := ssh.ParsePrivateKey(data)
	if err == nil {
		return s, nil
	}

	var pm *ssh.PassphraseMissingError
	if !errors.As(err, &pm) {
		return nil, fmt.Errorf("sshexec: parse identity file %s: %w", file, err)
	}
	if pm.PublicKey != nil && agentHolds(agentKeys, pm.PublicKey) {
		log.Debug("identity file is passphrase protected; using the agent's copy", "file", file)
		return nil, nil
	}
	return nil, fmt.Errorf("sshexec: load identity file %s: %w; add it to ssh-agent with ssh-add %s and run with the agent", file, err, shellWord(file))
}

// agentHolds reports whether one of keys has the public key pub.
func agentHolds(keys []ssh.Signer, pub ssh.PublicKey) bool {
	want := pub.Marshal()
	for _, k := range keys {
		if bytes.Equal(k.PublicKey().Marshal(), want) {
			return true
		}
	}
	return false
}

// shellWord quotes s for a hint the operator may paste into a shell.
func shellWord(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '_' || r == '-' ||
			r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' ||
			r >= '0' && r <= '9')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
