package sshexec

// This file applies ssh_config to one destination. Precedence, highest
// first: the target's own user and port (from its hosts-file line), the
// Config values the caller marks Explicit (set by the operator on the
// command line), ssh_config, then the Config values as defaults.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Explicit marks the Config fields the operator set on the command line
// (a flag or its environment variable), which win over ssh_config. A
// false field lets ssh_config replace the Config value, which is then
// only a default. Target.User and Target.Port, when not empty, always win:
// they come from the host's own line, like user@host and -p for ssh.
type Explicit struct {
	User              bool // Config.User (--user)
	Port              bool // Config.Port (--port)
	IdentityFiles     bool // Config.IdentityFiles (--identity-file)
	KnownHostsFiles   bool // Config.KnownHostsFiles (--known-hosts)
	AcceptNewHostKeys bool // Config.AcceptNewHostKeys (--accept-new-host-keys)
	ConnectTimeout    bool // Config.ConnectTimeout (--connect-timeout)
	KeepaliveInterval bool // Config.KeepaliveInterval (--keepalive)
	KeepaliveCountMax bool // Config.KeepaliveCountMax
	ProxyJump         bool // Config.ProxyJump
}

// Apply returns t and cfg with the ssh_config settings for the alias
// t.Addr applied: HostName (t.Addr becomes it; %h and %% expanded), User,
// Port, IdentityFile (all entries, ~ and %h %n %p %r %u %d %i %%
// expanded; entries naming missing files are dropped, as OpenSSH does,
// and "none" means no file), ProxyJump ([user@]host[:port] hops
// separated by commas, or "none"; each hop's HostName, User and Port come
// from ssh_config for the hop's own alias unless the spec gives them; a
// hop naming no user logs in as the local user, on port 22),
// UserKnownHostsFile (space-separated, expanded like IdentityFile),
// StrictHostKeyChecking (yes or ask: strict; accept-new:
// AcceptNewHostKeys; no or off: an error, since orchestrate never runs
// without host-key checking), ConnectTimeout, ServerAliveInterval (to
// KeepaliveInterval; 0, which disables keepalives in OpenSSH, is ignored)
// and ServerAliveCountMax. Times take OpenSSH's format: seconds, or
// numbers with s, m, h, d or w.
//
// The returned Target has Port set; its User is set unless neither the
// target, cfg nor the file names one (Dial then uses the local user).
// t.Name is kept for messages. Errors name the alias and the bad
// setting; t and cfg are not used then. A nil c applies nothing but the
// defaults.
func (c *SSHConfig) Apply(t Target, cfg Config, explicit Explicit) (Target, Config, error) {
	alias := strings.TrimSuffix(strings.TrimPrefix(t.Addr, "["), "]")
	fail := func(format string, a ...any) (Target, Config, error) {
		return Target{}, Config{}, fmt.Errorf("sshexec: ssh config for %s: %s", alias, fmt.Sprintf(format, a...))
	}
	if alias == "" {
		return fail("empty address")
	}
	out := t

	// Host name, user and port first: the other settings expand them.
	out.Addr = alias
	if v, ok := c.get(alias, "HostName"); ok {
		h, err := expand(v, tokens{"h": alias, "n": alias}, "")
		if err != nil {
			return fail("HostName %q: %v", v, err)
		}
		out.Addr = h
	}
	if out.User == "" {
		out.User = pick(explicit.User, cfg.User, c.value(alias, "User"))
	}
	if out.Port == 0 {
		var err error
		if out.Port, err = c.port(alias, cfg.Port, explicit.Port); err != nil {
			return fail("%v", err)
		}
	}
	local, _ := localUser()
	remote := out.User
	if remote == "" {
		remote = local
	}
	tok := tokens{"h": out.Addr, "n": alias, "p": strconv.Itoa(out.Port),
		"r": remote, "u": local, "d": c.homeDir(), "i": strconv.Itoa(os.Getuid())}

	if err := c.applyFiles(alias, tok, &cfg, explicit); err != nil {
		return fail("%v", err)
	}
	if err := c.applyHostKeyPolicy(alias, &cfg, explicit); err != nil {
		return fail("%v", err)
	}
	if err := c.applyTimes(alias, &cfg, explicit); err != nil {
		return fail("%v", err)
	}
	if !explicit.ProxyJump {
		if v, ok := c.get(alias, "ProxyJump"); ok {
			hops, err := c.jumpHops(v, tok)
			if err != nil {
				return fail("ProxyJump %q: %v", v, err)
			}
			cfg.ProxyJump = hops
		}
	}
	return out, cfg, nil
}

// value returns the first value of key for alias, "" if unset.
func (c *SSHConfig) value(alias, key string) string {
	v, _ := c.get(alias, key)
	return v
}

// pick returns the explicit value if marked, else the file's value if
// set, else the default.
func pick(isExplicit bool, def, file string) string {
	if !isExplicit && file != "" {
		return file
	}
	return def
}

// port resolves the port for alias: explicit, file, default, 22.
func (c *SSHConfig) port(alias string, def int, isExplicit bool) (int, error) {
	if v, ok := c.get(alias, "Port"); ok && !isExplicit {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return 0, fmt.Errorf("Port %q: want 1 to 65535", v)
		}
		return p, nil
	}
	if def == 0 {
		def = 22
	}
	return def, nil
}

// homeDir returns the home directory for ~ and %d.
func (c *SSHConfig) homeDir() string {
	if c != nil && c.home != "" {
		return c.home
	}
	h, _ := os.UserHomeDir()
	return h
}

// applyFiles sets IdentityFiles and KnownHostsFiles from the file.
func (c *SSHConfig) applyFiles(alias string, tok tokens, cfg *Config, explicit Explicit) error {
	if ids := c.getAll(alias, "IdentityFile"); len(ids) > 0 && !explicit.IdentityFiles {
		files := []string{}
		for _, v := range ids {
			if strings.EqualFold(v, "none") {
				continue
			}
			p, err := expand(v, tok, c.homeDir())
			if err != nil {
				return fmt.Errorf("IdentityFile %q: %v", v, err)
			}
			if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
				cfg.logger().Debug("ssh config identity file missing", "host", alias, "file", p)
				continue
			}
			files = append(files, p)
		}
		cfg.IdentityFiles = files
	}

	if v, ok := c.get(alias, "UserKnownHostsFile"); ok && !explicit.KnownHostsFiles {
		var files []string
		for _, f := range strings.Fields(v) {
			if strings.EqualFold(f, "none") {
				return errors.New("UserKnownHostsFile none: orchestrate needs a known_hosts file to check host keys")
			}
			p, err := expand(strings.Trim(f, `"`), tok, c.homeDir())
			if err != nil {
				return fmt.Errorf("UserKnownHostsFile %q: %v", v, err)
			}
			files = append(files, p)
		}
		cfg.KnownHostsFiles = files
	}
	return nil
}

// applyHostKeyPolicy maps StrictHostKeyChecking onto AcceptNewHostKeys.
func (c *SSHConfig) applyHostKeyPolicy(alias string, cfg *Config, explicit Explicit) error {
	v, ok := c.get(alias, "StrictHostKeyChecking")
	if !ok || explicit.AcceptNewHostKeys {
		return nil
	}
	switch strings.ToLower(v) {
	case "yes", "ask":
		cfg.AcceptNewHostKeys = false
	case "accept-new":
		cfg.AcceptNewHostKeys = true
	case "no", "off":
		return fmt.Errorf("StrictHostKeyChecking %s: orchestrate never connects without checking host keys; use yes, or accept-new to record unknown keys", v)
	default:
		return fmt.Errorf("StrictHostKeyChecking %q: want yes, accept-new or ask", v)
	}
	return nil
}

// applyTimes sets the connect timeout and keepalive settings.
func (c *SSHConfig) applyTimes(alias string, cfg *Config, explicit Explicit) error {
	if v, ok := c.get(alias, "ConnectTimeout"); ok && !explicit.ConnectTimeout {
		d, err := parseTime(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("ConnectTimeout %q: want a time above zero, e.g. 10 or 1m30s", v)
		}
		cfg.ConnectTimeout = d
	}
	if v, ok := c.get(alias, "ServerAliveInterval"); ok && !explicit.KeepaliveInterval {
		d, err := parseTime(v)
		if err != nil || d < 0 {
			return fmt.Errorf("ServerAliveInterval %q: want a time, e.g. 5 or 1m", v)
		}
		if d > 0 {
			cfg.KeepaliveInterval = d
		}
	}
	if v, ok := c.get(alias, "ServerAliveCountMax"); ok && !explicit.KeepaliveCountMax {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("ServerAliveCountMax %q: want a count of 1 or more", v)
		}
		cfg.KeepaliveCountMax = n
	}
	return nil
}

// jumpHops parses a ProxyJump value into hops, applying each hop's own
// HostName, User and Port from the file.
func (c *SSHConfig) jumpHops(v string, tok tokens) ([]Target, error) {
	if strings.EqualFold(v, "none") {
		return nil, nil
	}
	v, err := expand(v, tokens{"h": tok["h"], "n": tok["n"], "p": tok["p"], "r": tok["r"]}, "")
	if err != nil {
		return nil, err
	}
	var hops []Target
	for _, spec := range strings.Split(v, ",") {
		hop, err := parseJump(strings.TrimSpace(spec))
		if err != nil {
			return nil, err
		}
		alias := hop.Addr
		if h, ok := c.get(alias, "HostName"); ok {
			if hop.Addr, err = expand(h, tokens{"h": alias, "n": alias}, ""); err != nil {
				return nil, fmt.Errorf("jump host %s: HostName %q: %v", alias, h, err)
			}
		}
		if hop.User == "" {
			hop.User = c.value(alias, "User")
		}
		if hop.Port == 0 {
			if hop.Port, err = c.port(alias, 22, false); err != nil {
				return nil, fmt.Errorf("jump host %s: %v", alias, err)
			}
		}
		hops = append(hops, hop)
	}
	return hops, nil
}

// parseJump parses one [user@]host[:port] hop; IPv6 needs brackets with
// a port.
func parseJump(spec string) (Target, error) {
	t := Target{Name: spec}
	if spec == "" {
		return t, errors.New("empty jump host")
	}
	if strings.Contains(spec, "://") {
		return t, fmt.Errorf("jump host %q: ssh:// URIs are not supported; write [user@]host[:port]", spec)
	}
	hostport := spec
	if i := strings.LastIndex(spec, "@"); i >= 0 {
		t.User, hostport = spec[:i], spec[i+1:]
		if t.User == "" {
			return t, fmt.Errorf("jump host %q: empty user", spec)
		}
	}

	host, portText := hostport, ""
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, portText = h, p
	} else if strings.HasPrefix(hostport, "[") && strings.HasSuffix(hostport, "]") {
		host = hostport[1 : len(hostport)-1]
	} else if strings.Count(hostport, ":") == 1 {
		return t, fmt.Errorf("jump host %q: %v", spec, err)
	}
	if host == "" || strings.HasPrefix(host, "-") {
		return t, fmt.Errorf("jump host %q: bad host name", spec)
	}
	t.Addr = host
	if portText != "" {
		p, err := strconv.Atoi(portText)
		if err != nil || p < 1 || p > 65535 {
			return t, fmt.Errorf("jump host %q: port %q: want 1 to 65535", spec, portText)
		}
		t.Port = p
	}
	return t, nil
}

// tokens maps % letters to their values for expand.
type tokens map[string]string

// expand replaces %x tokens in s and, when home is not empty, a leading
// ~ or ~/. An unknown token is an error, as in OpenSSH.
func expand(s string, tok tokens, home string) (string, error) {
	if home != "" && (s == "~" || strings.HasPrefix(s, "~/")) {
		s = home + s[1:]
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 == len(s) {
			return "", errors.New("% at end of value")
		}
		i++
		if s[i] == '%' {
			b.WriteByte('%')
			continue
		}
		v, ok := tok[string(s[i])]
		if !ok {
			return "", fmt.Errorf("token %%%c is not supported here", s[i])
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// parseTime parses an OpenSSH time: a sequence of numbers, each with an
// optional unit s, m, h, d or w (seconds when none).
func parseTime(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty time")
	}
	units := map[byte]time.Duration{'s': time.Second, 'm': time.Minute,
		'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}
	var total time.Duration
	for s != "" {
		n := 0
		for n < len(s) && s[n] >= '0' && s[n] <= '9' {
			n++
		}
		if n == 0 || n > 9 {
			return 0, fmt.Errorf("bad time %q", s)
		}
		v, _ := strconv.Atoi(s[:n])
		unit := time.Second
		s = s[n:]
		if s != "" {
			if u, ok := units[s[0]|0x20]; ok {
				unit = u
				s = s[1:]
			}
		}
		total += time.Duration(v) * unit
	}
	return total, nil
}
