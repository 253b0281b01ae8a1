package sshexec

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

var (
	// ErrHostKeyUnknown means no known_hosts file holds a key for the host.
	ErrHostKeyUnknown = errors.New("host key is unknown")
	// ErrHostKeyChanged means known_hosts holds keys for the host but none
	// matches the key the server offered: possibly a man-in-the-middle.
	ErrHostKeyChanged = errors.New("host key has changed")
	// ErrHostKeyRevoked means the offered key is marked @revoked.
	ErrHostKeyRevoked = errors.New("host key is revoked")
	// ErrConnectionLost means the connection ended without Close being
	// called: the peer closed it, the network failed or keepalives went
	// unanswered.
	ErrConnectionLost = errors.New("connection lost")
	// ErrAuth means the server refused every key that was offered.
	ErrAuth = errors.New("authentication failed")
	// ErrNoKey means there was no key to offer: no identity file and no
	// usable ssh-agent.
	ErrNoKey = errors.New("no SSH key")
	// ErrNoKnownHosts means none of the known_hosts files exists and new
	// host keys may not be recorded.
	ErrNoKnownHosts = errors.New("no known_hosts file")
	// ErrClosed means the client was closed by its owner.
	ErrClosed = errors.New("client closed")
)

// ExitError reports a remote command that exited with a non-zero status
// or was killed by a signal. The command ran; retrying it is up to the
// caller.
type ExitError struct {
	// Status is the exit status; for a signal it is 128 plus the signal
	// number when the signal is known, else 128.
	Status int
	// Signal is the signal name without "SIG" (e.g. "TERM"), or "".
	Signal string
}

// Error returns "sshexec: remote command exited with status N", or names
// the signal when the command was killed by one.
func (e *ExitError) Error() string {
	if e.Signal != "" {
		return fmt.Sprintf("sshexec: remote command killed by signal %s", e.Signal)
	}
	return fmt.Sprintf("sshexec: remote command exited with status %d", e.Status)
}

// HostKeyError reports a host key that was refused. Kind is one of
// ErrHostKeyUnknown, ErrHostKeyChanged or ErrHostKeyRevoked, and
// errors.Is matches it.
type HostKeyError struct {
	// Name is the target's name for messages (Target.Name).
	Name string
	// Host is the name looked up in known_hosts, e.g. "[127.0.0.2]:2222".
	Host string
	// Kind is ErrHostKeyUnknown, ErrHostKeyChanged or ErrHostKeyRevoked.
	Kind error
	// Key is the key the server offered.
	Key ssh.PublicKey
	// KnownHostsFiles are the files that were consulted.
	KnownHostsFiles []string
	// Line is "file:line" of the recorded key that did not match
	// (changed) or of the @revoked entry (revoked); "" when unknown.
	Line string
}

// Error names the host and the offered key's SHA256 fingerprint and gives
// the operator a hint for each kind of failure.
func (e *HostKeyError) Error() string {
	who := e.Host
	if e.Name != "" && e.Name != e.Host {
		who = e.Name + " (" + e.Host + ")"
	}
	key := "unknown key"
	if e.Key != nil {
		key = e.Key.Type() + " key " + ssh.FingerprintSHA256(e.Key)
	}
	files := strings.Join(e.KnownHostsFiles, ", ")
	switch e.Kind {
	case ErrHostKeyUnknown:
		return fmt.Sprintf("sshexec: host key of %s is unknown: %s is not in %s; verify the fingerprint out of band, then add it with ssh-keyscan or run with --accept-new-host-keys", who, key, files)
	case ErrHostKeyChanged:
		file := e.Line
		if i := strings.LastIndexByte(file, ':'); i > 0 {
			file = file[:i]
		}
		return fmt.Sprintf("sshexec: host key of %s does not match known_hosts: server offered %s; the host key has changed: possible man-in-the-middle; if the host was rebuilt, remove the old line (%s) with ssh-keygen -f '%s' -R '%s'", who, key, e.Line, file, e.Host)
	case ErrHostKeyRevoked:
		return fmt.Sprintf("sshexec: host key of %s is revoked (%s): server offered %s; refusing to connect", who, e.Line, key)
	}
	return fmt.Sprintf("sshexec: host key of %s refused: %s: %v", who, key, e.Kind)
}

// Unwrap returns Kind.
func (e *HostKeyError) Unwrap() error { return e.Kind }

// AuthError reports that the server refused every key offered. It
// matches ErrAuth with errors.Is.
type AuthError struct {
	// User is the remote user name.
	User string
	// Host names the target, e.g. "db1 (10.0.3.17:22)".
	Host string
	// Methods describes what was offered, one entry per key, e.g.
	// "publickey /home/op/.ssh/id_ed25519 (ssh-ed25519 SHA256:...)".
	Methods []string
	// Err is the underlying handshake error.
	Err error
}

// Error names the user, host and keys tried.
func (e *AuthError) Error() string {
	return fmt.Sprintf("sshexec: authenticate as %s to %s: server refused every key (tried %s): %v; check the user's authorized_keys or pass --identity-file", e.User, e.Host, strings.Join(e.Methods, ", "), e.Err)
}

// Unwrap returns ErrAuth and the underlying error.
func (e *AuthError) Unwrap() []error { return []error{ErrAuth, e.Err} }
