package hosts

import (
	"strings"
	"testing"
)

func TestSplitDestination(t *testing.T) {
	tests := []struct {
		in   string
		user string
		addr string
		port int
	}{
		{"db1", "", "db1", 0},
		{"db1.internal", "", "db1.internal", 0},
		{"db1.internal.", "", "db1.internal.", 0},
		{"web_2", "", "web_2", 0},
		{"ubuntu@10.0.3.17:2222", "ubuntu", "10.0.3.17", 2222},
		{"ec2-user@host:22", "ec2-user", "host", 22},
		{"a.b_c-d@h", "a.b_c-d", "h", 0},
		{"10.0.0.1", "", "10.0.0.1", 0},
		{"h:65535", "", "h", 65535},
		{"h:1", "", "h", 1},
		{"[::1]:22", "", "::1", 22},
		{"[fd00::17]", "", "fd00::17", 0},
		{"root@[2001:db8::1]:2222", "root", "2001:db8::1", 2222},
		{"fd00::17", "", "fd00::17", 0},
		{"u@2001:db8::1", "u", "2001:db8::1", 0},
		{"::ffff:10.0.0.1", "", "::ffff:10.0.0.1", 0},
		{"::1:22", "", "::1:22", 0}, // more than one colon: no port
		{"0x7f.example", "", "0x7f.example", 0},
	}
	for _, tt := range tests {
		user, addr, port, err := SplitDestination(tt.in)
		if err != nil {
			t.Errorf("SplitDestination(%q) error %v, want nil", tt.in, err)
			continue
		}
		if user != tt.user || addr != tt.addr || port != tt.port {
			t.Errorf("SplitDestination(%q) = %q, %q, %d, want %q, %q, %d",
				tt.in, user, addr, port, tt.user, tt.addr, tt.port)
		}
	}
}

func TestSplitDestinationErrors(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"", "empty destination"},
		{"-oProxyCommand=x", "starts with '-'"},
		{"@h", "empty user"},
		{"-u@h", "starts with '-' (ssh would read it as an option)"},
		{"x@-h", "host \"-h\" starts with '-'"},
		{"u$@h", "invalid user"},
		{"a@b@c", "invalid host name \"b@c\""},
		{"u@", "empty host"},
		{"u@-h", "starts with '-'"},
		{":22", "empty host"},
		{"h:", "empty port"},
		{"h:0", "invalid port \"0\""},
		{"h:65536", "invalid port"},
		{"h:022", "invalid port"},
		{"h:+22", "invalid port"},
		{"h:ssh", "invalid port"},
		{"[::1]:", "empty port"},
		{"[::1]:0", "invalid port"},
		{"[::1", "missing ']'"},
		{"[::1]22", "unexpected \"22\" after ']'"},
		{"[10.0.0.1]:22", "invalid IPv6 address \"10.0.0.1\""},
		{"[db1]:22", "invalid IPv6 address"},
		{"fe80::1%eth0", "has a zone"},
		{"[fe80::1%eth0]:22", "has a zone"},
		{"1::2::3", "invalid IPv6 address"},
		{"10.0.0", "invalid IPv4 address"},
		{"10.0.0.256", "invalid IPv4 address"},
		{"010.0.0.1", "invalid IPv4 address"},
		{"1234", "invalid IPv4 address"},
		{"0x7f.1", "invalid IPv4 address"},
		{"a..b", "empty label"},
		{".a", "empty label"},
		{"a-.b", "starts or ends with '-'"},
		{"h/x", "character '/' not allowed"},
		{"db1#x", "character '#' not allowed"},
		{"höst", "character 'ö' not allowed"},
		{strings.Repeat("a", 64), "longer than 63 bytes"},
		{strings.Repeat("a.", 127) + "ab", "longer than 253 bytes"},
	}
	for _, tt := range tests {
		user, addr, port, err := SplitDestination(tt.in)
		if err == nil {
			t.Errorf("SplitDestination(%q) = %q, %q, %d, want error %q",
				tt.in, user, addr, port, tt.want)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "hosts: ") ||
			!strings.Contains(msg, tt.want) {
			t.Errorf("SplitDestination(%q) error %q, want hosts: ... %q",
				tt.in, msg, tt.want)
		}
	}
}

func TestJoinDestination(t *testing.T) {
	tests := []struct {
		user, addr string
		port       int
		want       string
	}{
		{"", "db1", 0, "db1"},
		{"u", "db1", 0, "u@db1"},
		{"u", "db1", 22, "u@db1:22"},
		{"", "::1", 0, "::1"},
		{"", "::1", 22, "[::1]:22"},
		{"u", "fd00::1", 2222, "u@[fd00::1]:2222"},
	}
	for _, tt := range tests {
		got := JoinDestination(tt.user, tt.addr, tt.port)
		if got != tt.want {
			t.Errorf("JoinDestination(%q, %q, %d) = %q, want %q",
				tt.user, tt.addr, tt.port, got, tt.want)
		}
		user, addr, port, err := SplitDestination(got)
		if err != nil || user != tt.user || addr != tt.addr ||
			port != tt.port {
			t.Errorf("SplitDestination(%q) = %q, %q, %d, %v, want %q, "+
				"%q, %d, nil", got, user, addr, port, err,
				tt.user, tt.addr, tt.port)
		}
	}
}

func TestDestinationKey(t *testing.T) {
	tests := []struct {
		user, addr string
		port       int
		want       string
	}{
		{"", "DB1.Internal", 0, "db1.internal"},
		{"Bob", "h", 22, "Bob@h:22"},
		{"", "FD00:0:0::1", 22, "[fd00::1]:22"},
		{"", "::ffff:10.0.0.1", 0, "::ffff:10.0.0.1"},
	}
	for _, tt := range tests {
		got := destinationKey(tt.user, tt.addr, tt.port)
		if got != tt.want {
			t.Errorf("destinationKey(%q, %q, %d) = %q, want %q",
				tt.user, tt.addr, tt.port, got, tt.want)
		}
	}
}
