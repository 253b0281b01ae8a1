package sshexec

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Defaults applied by Dial to zero Config fields.
const (
	DefaultConnectTimeout    = 10 * time.Second
	DefaultKeepaliveInterval = 5 * time.Second
	DefaultKeepaliveCountMax = 3
	tcpKeepAlive             = 15 * time.Second
)

// Target is one host to connect to.
type Target struct {
	Name string // for messages, e.g. the hosts-file destination
	Addr string // host name or IP literal, no brackets
	Port int    // 0 = 22
	User string // "" = Config.User, then the local user name
}

// Config holds the settings shared by every connection of a run. The zero
// value of each duration or count selects its default.
type Config struct {
	// User is the default remote user of the target. It does not apply
	// to ProxyJump hops, which log in as their own user or the local one.
	User string
	// Port is the default port of a target that names none; 0 means 22.
	// It does not apply to ProxyJump hops, which default to 22.
	Port int
	// IdentityFiles are private key files. A missing or unreadable file
	// is an error naming it. A passphrase-protected key is an error naming
	// the file, unless ssh-agent holds the same public key, in which case
	// the file is skipped with a debug log and the agent signs.
	IdentityFiles []string
	// UseAgent offers the keys of the ssh-agent at SSH_AUTH_SOCK, after the
	// file keys. An unset or unreachable SSH_AUTH_SOCK is logged and
	// ignored unless no other key is available.
	UseAgent bool
	// KnownHostsFiles are checked strictly. Missing files are skipped; if
	// none exists and AcceptNewHostKeys is false Dial fails before
	// connecting with ErrNoKnownHosts naming the first file. Empty means
	// DefaultKnownHostsFiles.
	KnownHostsFiles []string
	// AcceptNewHostKeys records an unknown host's key in the first
	// KnownHostsFiles entry (created 0600, its directory 0700). A changed
	// or revoked key is always refused.
	AcceptNewHostKeys bool
	// ConnectTimeout bounds TCP connect, SSH handshake and
	// authentication together.
	ConnectTimeout time.Duration
	// KeepaliveInterval is the period of keepalive@openssh.com requests.
	KeepaliveInterval time.Duration
	// KeepaliveCountMax is how many intervals may pass without any reply
	// before the connection is closed with ErrConnectionLost.
	KeepaliveCountMax int
	// ProxyJump lists the jump hosts to go through, first hop first, as
	// ssh -J does; empty means a direct connection. Each hop's host key
	// is checked against KnownHostsFiles under its own host:port, and
	// each hop authenticates with the same keys as the target. A hop's
	// empty User means the local user, its zero Port 22. The hop targets
	// do not get Config.User or Config.Port.
	ProxyJump []Target
	// Logger receives debug and warning events; nil discards them.
	Logger *slog.Logger
}

// logger returns cfg.Logger, or a logger that discards when it is nil.
func (cfg Config) logger() *slog.Logger {
	if cfg.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return cfg.Logger
}

// withDefaults returns cfg with zero fields replaced by their defaults.
func (cfg Config) withDefaults() Config {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.KeepaliveInterval <= 0 {
		cfg.KeepaliveInterval = DefaultKeepaliveInterval
	}
	if cfg.KeepaliveCountMax <= 0 {
		cfg.KeepaliveCountMax = DefaultKeepaliveCountMax
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.KnownHostsFiles) == 0 {
		cfg.KnownHostsFiles = DefaultKnownHostsFiles()
	}
	return cfg
}

// DefaultKnownHostsFiles returns ~/.ssh/known_hosts and
// ~/.ssh/known_hosts2, as OpenSSH does, or nil when the home directory is
// unknown.
func DefaultKnownHostsFiles() []string {
	home, err := os.UserHomeDir()
	if err != nil {
		return nil
	}
	dir := filepath.Join(home, ".ssh")
	return []string{
		filepath.Join(dir, "known_hosts"),
		filepath.Join(dir, "known_hosts2"),
	}
}

// DefaultIdentityFiles returns those of ~/.ssh/id_ed25519, id_ecdsa and
// id_rsa that exist, in that order.
func DefaultIdentityFiles() []string {
	home, err := os.UserHomeDir()
	if err != nil {
		return nil
	}
	var files []string
	for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
		p := filepath.Join(home, ".ssh", n)
		if _, err := os.Stat(p); err == nil {
			files = append(files, p)
		}
	}
	return files
}

// endpoint is a validated target with its defaults resolved.
type endpoint struct {
	name     string
	hostport string // host:port for dialing and known_hosts lookups
	user     string
}

// label names the endpoint in messages: "name (host:port)".
func (e endpoint) label() string {
	if e.name == "" || e.name == e.hostport {
		return e.hostport
	}
	return e.name + " (" + e.hostport + ")"
}

// resolve validates t and fills in port and user.
func resolve(t Target, cfg Config) (endpoint, error) {
	addr := strings.TrimSuffix(strings.TrimPrefix(t.Addr, "["), "]")
	if addr == "" {
		return endpoint{}, fmt.Errorf("sshexec: connect to %q: empty address", t.Name)
	}
	port := t.Port
	if port == 0 {
		port = cfg.Port
	}
	if port == 0 {
		port = 22
	}
	if port < 0 || port > 65535 {
		return endpoint{}, fmt.Errorf("sshexec: connect to %s: port %d out of range", t.Name, port)
	}
	ep := endpoint{
		name:     t.Name,
		hostport: net.JoinHostPort(addr, strconv.Itoa(port)),
		user:     t.User,
	}
	if ep.user == "" {
		ep.user = cfg.User
	}
	if ep.user == "" {
		u, err := localUser()
		if err != nil {
			return endpoint{}, fmt.Errorf("sshexec: connect to %s: pick a user: %w", ep.label(), err)
		}
		ep.user = u
	}
	return ep, nil
}

// localUser returns the name of the user running this process.
func localUser() (string, error) {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username, nil
	}
	if u := os.Getenv("USER"); u != "" {
		return u, nil
	}
	return "", errors.New("local user name unknown; set the user explicitly")
}
