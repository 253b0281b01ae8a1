package rig

// Tests of the parts that need neither root nor external tools.

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestSSHDConfigRender(t *testing.T) {
	c := sshdConfig{Port: 2222, Addrs: []string{"127.0.0.2", "127.0.0.3"},
		HostKeys: []string{"/d/ed", "/d/ec"}, PidFile: "/d/pid",
		AuthKeys: "/d/authorized_keys/%u", AllowUsers: []string{"a", "b"}}
	got := c.render()
	for _, want := range []string{
		"Port 2222\n", "ListenAddress 127.0.0.2\n",
		"ListenAddress 127.0.0.3\n", "HostKey /d/ed\n", "HostKey /d/ec\n",
		"PidFile /d/pid\n", "AuthorizedKeysFile /d/authorized_keys/%u\n",
		"StrictModes no\n", "UsePAM no\n", "PasswordAuthentication no\n",
		"KbdInteractiveAuthentication no\n",
		"PermitRootLogin prohibit-password\n", "AllowUsers a b\n",
		"LogLevel VERBOSE\n", "MaxStartups 100:30:200\n",
		"MaxSessions 50\n", "AllowAgentForwarding no\n",
		"PermitUserEnvironment no\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("render() = %q, want it to contain %q", got, want)
		}
	}

	c.AllowUsers = nil
	if got := c.render(); !strings.Contains(got, "DenyUsers *\n") ||
		strings.Contains(got, "AllowUsers") {
		t.Errorf("render() without users = %q, want DenyUsers * only", got)
	}
}

func TestKnownHostsLine(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	enc := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
	tests := []struct {
		addr string
		port int
		want string
	}{
		{"127.0.0.2", 2222, "[127.0.0.2]:2222 " + enc + "\n"},
		{"127.0.0.3", 22, "127.0.0.3 " + enc + "\n"},
		{"::1", 2200, "[::1]:2200 " + enc + "\n"},
	}
	for _, tt := range tests {
		got := knownHostsLine(tt.addr, tt.port, k)
		if got != tt.want {
			t.Errorf("knownHostsLine(%s, %d) = %q, want %q", tt.addr,
				tt.port, got, tt.want)
		}
	}
}

func TestInside(t *testing.T) {
	tests := []struct {
		name string
		want string // "" means an error
	}{
		{"a.txt", "/m/a.txt"},
		{"d/e/f", "/m/d/e/f"},
		{"d/../g", "/m/g"},
		{"./h", "/m/h"},
		{"..x", "/m/..x"},
		{"", ""},
		{".", ""},
		{"..", ""},
		{"../etc/passwd", ""},
		{"d/../../x", ""},
		{"/etc/passwd", ""},
	}
	for _, tt := range tests {
		got, err := inside("/m", tt.name)
		if (err != nil) != (tt.want == "") || got != tt.want {
			t.Errorf("inside(/m, %q) = %q, %v, want %q", tt.name, got, err,
				tt.want)
		}
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"orchrig", true},
		{"root", true},
		{"a_b-1", true},
		{"", false},
		{"Root", false},
		{"1abc", false},
		{"a b", false},
		{"a\nALL", false},
		{"a,b", false},
		{strings.Repeat("a", 32), false},
	}
	for _, tt := range tests {
		if got := validName.MatchString(tt.name); got != tt.want {
			t.Errorf("validName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestExt4Features(t *testing.T) {
	dump := "Filesystem volume name:   <none>\n" +
		"Filesystem features:      has_journal ext_attr needs_recovery " +
		"extent\nInode count:  100\n"
	feats := ext4Features(dump)
	tests := []struct {
		word string
		want bool
	}{
		{"needs_recovery", true},
		{"has_journal", true},
		{"needs", false},
		{"recovery", false},
	}
	for _, tt := range tests {
		if got := hasWord(feats, tt.word); got != tt.want {
			t.Errorf("hasWord(%q, %q) = %v, want %v", feats, tt.word, got,
				tt.want)
		}
	}
	if got := ext4Features("no such line"); got != "" {
		t.Errorf("ext4Features(no line) = %q, want empty", got)
	}
}

func TestTail(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b | c"},
		{"a\n\n  \nb", 5, "a | b"},
		{"", 3, ""},
	}
	for _, tt := range tests {
		if got := tail(tt.in, tt.n); got != tt.want {
			t.Errorf("tail(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestMissingToolsError(t *testing.T) {
	err := error(&MissingToolsError{Tools: []string{"sshd", "mkfs.xfs"}})
	for _, want := range []string{"sshd", "mkfs.xfs",
		"apt-get install openssh-server sudo xfsprogs e2fsprogs fdisk " +
			"util-linux"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Error() = %q, want it to contain %q", err, want)
		}
	}
}

func TestNewRefusesHiddenDir(t *testing.T) {
	parent := t.TempDir()
	if err := os.Chmod(parent, 0o700); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "rig")
	r, err := New(dir)
	if err == nil {
		r.Close()
		t.Fatalf("New(%s) under a 0700 parent = nil error, want an error",
			dir)
	}
}

// TestInputErrors checks the arguments refused before anything is made.
func TestInputErrors(t *testing.T) {
	r, err := New("")
	if err != nil {
		t.Fatalf("New(\"\") = %v, want nil error", err)
	}
	t.Cleanup(func() { r.Close() })
	many := make([]string, MaxListenAddrs+1)
	for i := range many {
		many[i] = "127.0.0.2"
	}
	tests := []struct {
		name string
		call func() error
	}{
		{"TooManyAddrs", func() error {
			_, err := r.StartSSHD(many, nil)
			return err
		}},
		{"NoAddrs", func() error { _, err := r.StartSSHD(nil, nil); return err }},
		{"NotLoopback", func() error {
			_, err := r.StartSSHD([]string{"10.0.0.1"}, nil)
			return err
		}},
		{"BadUserName", func() error {
			_, err := r.AddUser("bad name", SudoNone)
			return err
		}},
		{"BadSudoMode", func() error {
			_, err := r.AddUser("orchrigx", SudoMode(9))
			return err
		}},
		{"UnknownKind", func() error {
			_, err := r.MakeFS("btrfs", 400, "m")
			return err
		}},
		{"MountOnRoot", func() error {
			_, err := r.MakeFS("ext4", 32, "/")
			return err
		}},
		{"SmallXFS", func() error {
			_, err := r.MakeFS("xfs", MinXFSMiB-1, "m")
			return err
		}},
		{"CheckUnknownKind", func() error {
			return CheckImage("zfs", "/nonexistent", r.Dir, nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err == nil {
				t.Errorf("%s = nil error, want an error", tt.name)
			}
		})
	}

	if err := r.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	if _, err := r.AddUser("orchrigx", SudoNone); !errors.Is(err, ErrClosed) {
		t.Errorf("AddUser after Close = %v, want %v", err, ErrClosed)
	}
}

func TestParseStat(t *testing.T) {
	tail := " 0 0 0 0 0 0 0 0 0 0 20 0 1 0 4242 100 5"
	tests := []struct {
		line  string
		ok    bool
		pid   int
		ppid  int
		state string
		start string
	}{
		{"12 (sshd) S 1 12 12 0" + tail, true, 12, 1, "S", "4242"},
		{"7 (a b) c)) D 3 7 7 0" + tail, true, 7, 3, "D", "4242"},
		{"7 (short) S 3", false, 0, 0, "", ""},
		{"x (sshd) S 1 12 12" + tail, false, 0, 0, "", ""},
		{"no parens", false, 0, 0, "", ""},
	}
	for _, tt := range tests {
		st, ok := parseStat(tt.line)
		if ok != tt.ok || st.pid != tt.pid || st.ppid != tt.ppid ||
			st.state != tt.state || st.start != tt.start {
			t.Errorf("parseStat(%q) = %+v, %v, want pid %d ppid %d "+
				"state %q start %q, %v", tt.line, st, ok, tt.pid, tt.ppid,
				tt.state, tt.start, tt.ok)
		}
	}
}

func TestParseMountinfo(t *testing.T) {
	tests := []struct {
		line   string
		ok     bool
		mount  string
		source string
	}{
		{"36 25 7:0 / /tmp/r/mnt rw,relatime shared:1 - ext4 /dev/loop0 rw",
			true, "/tmp/r/mnt", "/dev/loop0"},
		{"36 25 7:0 / /tmp/a\\040b rw - xfs /dev/loop1 rw,nouuid",
			true, "/tmp/a b", "/dev/loop1"},
		{"36 25 7:0 / /x\\134y rw master:2 propagate_from:1 - ext4 /dev/l rw",
			true, `/x\y`, "/dev/l"},
		{"36 25 7:0 / /m rw - ext4", false, "", ""},
		{"garbage", false, "", ""},
	}
	for _, tt := range tests {
		m, src, ok := parseMountinfo(tt.line)
		if ok != tt.ok || m != tt.mount || src != tt.source {
			t.Errorf("parseMountinfo(%q) = %q, %q, %v, want %q, %q, %v",
				tt.line, m, src, ok, tt.mount, tt.source, tt.ok)
		}
	}
}

func TestUnescapeOctal(t *testing.T) {
	tests := []struct{ in, want string }{
		{`plain`, "plain"},
		{`a\040b\011c`, "a b\tc"},
		{`end\04`, `end\04`},
		{`bad\089`, `bad\089`},
	}
	for _, tt := range tests {
		if got := unescapeOctal(tt.in); got != tt.want {
			t.Errorf("unescapeOctal(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
