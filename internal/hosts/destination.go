package hosts

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// SplitDestination splits an SSH destination, as the hosts file writes
// it, into its user ("" when not given), address (a host name, alias or
// IP literal, without brackets) and port (0 when not given).
//
// It accepts [user@]host[:port], [ipv6]:port, [ipv6], a bare IPv6 address
// (more than one colon and no brackets: never a port) and ssh_config Host
// aliases. It rejects an empty destination, anything starting with '-'
// (ssh would read it as an option), users with characters other than
// letters, digits, '.', '_' and '-', hosts that are neither host names nor
// IP literals (IPv6 zones included), and ports outside 1-65535 or written
// with a sign or leading zeros. The error says what was expected.
func SplitDestination(s string) (user, addr string, port int, err error) {
	user, addr, port, err = splitDestination(s)
	if err != nil {
		return "", "", 0, fmt.Errorf("hosts: split destination %q: %w",
			s, err)
	}
	return user, addr, port, nil
}

// JoinDestination is the inverse of SplitDestination: it writes user (if
// not ""), addr and port (if not 0) as one destination, bracketing an
// IPv6 address when a port follows it. It does not validate its input.
func JoinDestination(user, addr string, port int) string {
	s := addr
	if port != 0 {
		if strings.Contains(addr, ":") {
			s = "[" + addr + "]"
		}
		s += ":" + strconv.Itoa(port)
	}
	if user != "" {
		s = user + "@" + s
	}
	return s
}

// destinationKey returns the form of a destination that two lines naming
// the same user, host and port share: host names in lower case (ssh
// matches them so), IPv6 addresses in their canonical spelling.
func destinationKey(user, addr string, port int) string {
	if a, err := netip.ParseAddr(addr); err == nil {
		addr = a.String()
	} else {
		addr = strings.ToLower(addr)
	}
	return JoinDestination(user, addr, port)
}

// splitDestination is SplitDestination with errors that do not repeat the
// destination, for the parser to place in context.
func splitDestination(s string) (user, addr string, port int, err error) {
	if s == "" {
		return "", "", 0, errors.New("empty destination")
	}
	if s[0] == '-' {
		return "", "", 0, errors.New(
			"starts with '-' (ssh would read it as an option)")
	}

	hostport := s
	if u, rest, ok := strings.Cut(s, "@"); ok {
		if err := checkUser(u); err != nil {
			return "", "", 0, err
		}
		user, hostport = u, rest
	}

	addr, portText, hasPort, err := splitHostPort(hostport)
	if err != nil {
		return "", "", 0, err
	}
	if hasPort {
		if port, err = parsePort(portText); err != nil {
			return "", "", 0, err
		}
	}
	return user, addr, port, nil
}

// splitHostPort splits host[:port], [ipv6][:port] or a bare IPv6 address
// and checks the host.
func splitHostPort(s string) (addr, port string, hasPort bool, err error) {
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", false, errors.New(
				"missing ']' after the IPv6 address")
		}
		addr, rest := s[1:end], s[end+1:]
		if err := checkIPv6(addr); err != nil {
			return "", "", false, err
		}
		if rest == "" {
			return addr, "", false, nil
		}
		if rest[0] != ':' {
			return "", "", false, fmt.Errorf(
				"unexpected %q after ']' (want :port)", rest)
		}
		return addr, rest[1:], true, nil

	case strings.Count(s, ":") > 1:
		if err := checkIPv6(s); err != nil {
			return "", "", false, err
		}
		return s, "", false, nil
	}

	addr, port, hasPort = strings.Cut(s, ":")
	if err := checkHost(addr); err != nil {
		return "", "", false, err
	}
	return addr, port, hasPort, nil
}

// checkUser checks a user name: letters, digits, '.', '_' and '-', not
// starting with '-'.
func checkUser(u string) error {
	if u == "" {
		return errors.New("empty user before '@'")
	}
	if u[0] == '-' {
		return fmt.Errorf("user %q starts with '-'", u)
	}
	for _, r := range u {
		if !isAlnum(r) && r != '.' && r != '_' && r != '-' {
			return fmt.Errorf("invalid user %q: character %q not allowed "+
				"(want letters, digits, '.', '_' and '-')", u, r)
		}
	}
	return nil
}

// checkIPv6 checks an IPv6 literal without brackets and without a zone.
func checkIPv6(s string) error {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() {
		return fmt.Errorf("invalid IPv6 address %q", s)
	}
	if a.Zone() != "" {
		return fmt.Errorf("IPv6 address %q has a zone (not supported)", s)
	}
	return nil
}

// checkHost checks a host name, ssh_config alias or IPv4 literal. A name
// made only of numbers must be a valid dotted-quad IPv4 address: the
// resolver would read "10.1" or "0x7f.1" as an address too.
func checkHost(h string) error {
	if h == "" {
		return errors.New("empty host")
	}
	if h[0] == '-' {
		return fmt.Errorf("host %q starts with '-'", h)
	}
	if isNumeric(h) {
		if a, err := netip.ParseAddr(h); err != nil || !a.Is4() {
			return fmt.Errorf("invalid IPv4 address %q", h)
		}
		return nil
	}
	return checkHostname(h)
}

// checkHostname checks DNS-style labels (plus '_', which ssh_config
// aliases use), with at most one trailing dot.
func checkHostname(h string) error {
	name := strings.TrimSuffix(h, ".")
	if len(name) > 253 {
		return fmt.Errorf("host name %q is longer than 253 bytes", h)
	}
	for _, label := range strings.Split(name, ".") {
		if err := checkLabel(label); err != nil {
			return fmt.Errorf("invalid host name %q: %w", h, err)
		}
	}
	return nil
}

// checkLabel checks one label of a host name.
func checkLabel(l string) error {
	switch {
	case l == "":
		return errors.New("empty label")
	case len(l) > 63:
		return fmt.Errorf("label %q is longer than 63 bytes", l)
	case l[0] == '-' || l[len(l)-1] == '-':
		return fmt.Errorf("label %q starts or ends with '-'", l)
	}
	for _, r := range l {
		if !isAlnum(r) && r != '-' && r != '_' {
			return fmt.Errorf("character %q not allowed "+
				"(want letters, digits, '-', '_' and '.')", r)
		}
	}
	return nil
}

// isNumeric reports whether every label of h is a decimal or 0x number.
func isNumeric(h string) bool {
	for _, label := range strings.Split(h, ".") {
		digits := label
		if len(label) > 2 && (label[:2] == "0x" || label[:2] == "0X") {
			digits = label[2:]
		}
		if digits == "" {
			return false
		}
		for _, r := range digits {
			if !isHex(r) || (digits == label && (r < '0' || r > '9')) {
				return false
			}
		}
	}
	return true
}

// parsePort parses a decimal port 1-65535 without sign or leading zeros.
func parsePort(s string) (int, error) {
	if s == "" {
		return 0, errors.New("empty port (want 1-65535)")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 || s[0] < '1' || s[0] > '9' {
		return 0, fmt.Errorf("invalid port %q (want 1-65535)", s)
	}
	return n, nil
}

// isAlnum reports whether r is an ASCII letter or digit.
func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' ||
		r >= '0' && r <= '9'
}

// isHex reports whether r is an ASCII hex digit, either case.
func isHex(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'f' ||
		r >= 'A' && r <= 'F'
}
