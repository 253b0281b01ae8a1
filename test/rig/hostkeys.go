package rig

// This file makes the daemon's host keys and the known_hosts files that
// trust them.

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// writeHostKeys generates the ed25519 and ECDSA host keys.
func (s *SSHD) writeHostKeys() error {
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generate ed25519 host key: %w", err)
	}
	if err := s.writeHostKey("ed25519", edPriv); err != nil {
		return err
	}
	ecPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate ecdsa host key: %w", err)
	}
	return s.writeHostKey("ecdsa", ecPriv)
}

// writeHostKey writes one private host key and records its public half.
func (s *SSHD) writeHostKey(kind string, priv any) error {
	block, err := ssh.MarshalPrivateKey(priv, "orch-rig-host")
	if err != nil {
		return fmt.Errorf("encode %s host key: %w", kind, err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return fmt.Errorf("sign with %s host key: %w", kind, err)
	}

	// Write beside and rename, so a re-executing sshd never reads half.
	path := s.hostKeyPath(kind)
	draft := path + ".new"
	if err := writeFile(draft, pem.EncodeToMemory(block), 0o700,
		0o600); err != nil {
		return fmt.Errorf("write %s host key: %w", kind, err)
	}
	if err := os.Rename(draft, path); err != nil {
		return fmt.Errorf("write %s host key: %w", kind, err)
	}
	s.HostKeys[signer.PublicKey().Type()] = signer.PublicKey()
	return nil
}

// hostKeyPath is the file of the host key of one kind.
func (s *SSHD) hostKeyPath(kind string) string {
	return filepath.Join(s.dir, "ssh_host_"+kind+"_key")
}

// WriteKnownHosts writes a known_hosts file at path with one line per
// address and key type, for the given types (KeyEd25519 when none are
// given). An unknown type is an error and writes nothing.
func (s *SSHD) WriteKnownHosts(path string, types ...string) error {
	if len(types) == 0 {
		types = []string{KeyEd25519}
	}
	var b strings.Builder
	for _, a := range s.Addrs {
		for _, t := range types {
			k, ok := s.HostKeys[t]
			if !ok {
				return fmt.Errorf("rig: write known_hosts %s: no %q host key",
					path, t)
			}
			b.WriteString(knownHostsLine(a, s.Port, k))
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("rig: write known_hosts: %w", err)
	}
	return nil
}

// ReplaceHostKey gives the daemon a new ed25519 host key: it writes the key
// file, sends SIGHUP (sshd re-executes itself with the same PID and reads
// its keys again) and waits until every address offers the new key.
// HostKeys is updated; KnownHostsPath is left with the old key, which is
// what a test of a changed host key needs. If the wait fails the daemon
// may be stopped; Close still cleans up.
func (s *SSHD) ReplaceHostKey() error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("rig: replace host key: %w", err)
	}
	if err := s.writeHostKey("ed25519", priv); err != nil {
		return fmt.Errorf("rig: replace host key: %w", err)
	}
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		return fmt.Errorf("rig: replace host key: signal sshd pid %d: %w",
			s.PID, err)
	}
	if err := s.waitListening(s.HostKeys[KeyEd25519]); err != nil {
		return fmt.Errorf("rig: replace host key: %w", err)
	}
	return nil
}

// knownHostsLine returns one known_hosts line for addr:port and key, in
// the form OpenSSH writes: "[127.0.0.2]:2222 ssh-ed25519 AAAA…".
func knownHostsLine(addr string, port int, key ssh.PublicKey) string {
	hp := knownhosts.Normalize(net.JoinHostPort(addr, strconv.Itoa(port)))
	return knownhosts.Line([]string{hp}, key) + "\n"
}
