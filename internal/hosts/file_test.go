package hosts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseReportsEveryError(t *testing.T) {
	in := "h1 mount=/a\n" +
		"h2 instance=x volumes=vol-1\n" +
		"ok mounts=/a\n" +
		"h1\n" +
		"bad:0 region=x\n"
	want := []string{
		`hosts.txt:1:4: unknown option "mount"`,
		`hosts.txt:2:4: invalid instance ID "x"`,
		`hosts.txt:2:15: invalid volume ID "vol-1"`,
		`hosts.txt:4:1: duplicate destination "h1" (first on line 1)`,
		`hosts.txt:5:1: invalid destination "bad:0"`,
		`hosts.txt:5:7: invalid region "x"`,
	}
	_, err := parseString(t, in)
	list := errorList(t, err)
	if len(list) != len(want) {
		t.Fatalf("Parse(in) = %d errors:\n%v\nwant %d", len(list), err,
			len(want))
	}
	for i, e := range list {
		if !strings.HasPrefix(e.Error(), want[i]) {
			t.Errorf("Parse(in) error %d = %q, want %q...", i, e, want[i])
		}
	}
}

func TestParseTooManyErrors(t *testing.T) {
	var b strings.Builder
	for i := range MaxErrors + 5 {
		fmt.Fprintf(&b, "h%d nope\n", i)
	}
	_, err := parseString(t, b.String())
	list := errorList(t, err)
	if len(list) != MaxErrors+1 {
		t.Fatalf("Parse(%d bad lines) = %d errors, want %d",
			MaxErrors+5, len(list), MaxErrors+1)
	}
	last := list[len(list)-1].Error()
	if want := "hosts.txt: too many errors (5 more not shown)"; last != want {
		t.Errorf("Parse(%d bad lines) last error = %q, want %q",
			MaxErrors+5, last, want)
	}
}

func TestParseAtLimits(t *testing.T) {
	// A line of exactly MaxLineLength bytes and CRLF endings are fine.
	line := "h # " + strings.Repeat("x", MaxLineLength-4)
	f, err := parseString(t, line+"\r\nh2\r\n")
	if err != nil || len(f.Hosts) != 2 {
		t.Fatalf("Parse(4096-byte line) = %v, %v, want 2 hosts", f, err)
	}

	// So is a file of exactly MaxFileSize bytes.
	pad := strings.Repeat("#", 99) + "\n"
	big := "h\n" + strings.Repeat(pad, (MaxFileSize-2)/100)
	big += strings.Repeat("#", MaxFileSize-len(big))
	if len(big) != MaxFileSize {
		t.Fatalf("test file is %d bytes, want %d", len(big), MaxFileSize)
	}
	if _, err := parseString(t, big); err != nil {
		t.Errorf("Parse(1 MiB file) error %v, want nil", err)
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{Path: "h.txt", Line: 3, Col: 24, Msg: "m"}, "h.txt:3:24: m"},
		{Error{Path: "h.txt", Line: 5, Msg: "m"}, "h.txt:5: m"},
		{Error{Path: "h.txt", Col: 7, Msg: "m"}, "h.txt: m"},
		{Error{Msg: "m"}, "m"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("(%+v).Error() = %q, want %q", tt.e, got, tt.want)
		}
	}
	list := ErrorList{&tests[0].e, &tests[1].e}
	if got, want := list.Error(), "h.txt:3:24: m\nh.txt:5: m"; got != want {
		t.Errorf("ErrorList.Error() = %q, want %q", got, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hosts.txt")
	if err := os.WriteFile(path, []byte("db1 mounts=/data\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil || f.Path != path || len(f.Hosts) != 1 ||
		f.Hosts[0].Addr != "db1" {
		t.Fatalf("Load(%q) = %+v, %v, want host db1", path, f, err)
	}

	missing := filepath.Join(dir, "missing.txt")
	_, err = Load(missing)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(%q) error %v, want fs.ErrNotExist", missing, err)
	}
	want := missing + ": open hosts file: no such file or directory"
	if err == nil || err.Error() != want {
		t.Errorf("Load(%q) error %q, want %q", missing, err, want)
	}

	_, err = Load(dir)
	if err == nil || !strings.HasPrefix(err.Error(),
		dir+": read hosts file: ") {
		t.Errorf("Load(%q) error %v, want %s: read hosts file: ...",
			dir, err, dir)
	}
}

func TestRequire(t *testing.T) {
	in := "a instance=i-0123abcd mounts=/a volumes=vol-0123abcd\n" +
		"b mounts=/b\n" +
		"\n" +
		"c volumes=vol-89abcdef instance=i-89abcdef\n"
	f, err := parseString(t, in)
	if err != nil {
		t.Fatalf("Parse(in) error %v", err)
	}
	all := Requirements{InstanceID: true, Mounts: true, Volumes: true}
	tests := []struct {
		r    Requirements
		want []string
	}{
		{Requirements{}, nil},
		{all, []string{
			"hosts.txt:2:1: missing instance= (give the EC2",
			"hosts.txt:2:1: missing volumes= (name the EBS volumes that back the mounts)",
			"hosts.txt:4:1: missing mounts= (name the mount",
		}},
		{Requirements{Volumes: true}, []string{
			"hosts.txt:2:1: missing volumes=",
		}},
	}
	for _, tt := range tests {
		err := f.Require(tt.r)
		if tt.want == nil {
			if err != nil {
				t.Errorf("Require(%+v) = %v, want nil", tt.r, err)
			}
			continue
		}
		list := errorList(t, err)
		if len(list) != len(tt.want) {
			t.Errorf("Require(%+v) = %v, want %d errors", tt.r, err,
				len(tt.want))
			continue
		}
		for i, e := range list {
			if !strings.HasPrefix(e.Error(), tt.want[i]) {
				t.Errorf("Require(%+v) error %d = %q, want %q...",
					tt.r, i, e, tt.want[i])
			}
		}
	}
}

func TestParseNoCascade(t *testing.T) {
	// A bad user= or port= leaves the destination unknown: no duplicate
	// is claimed on its behalf.
	tests := []struct {
		in   string
		want string
	}{
		{"db1\ndb1 user=-x", "hosts.txt:2:5: user \"-x\" starts with '-'"},
		{"db1\ndb1 port=", "hosts.txt:2:5: empty value for port="},
		{"db1\ndb1 user=a\x01", "hosts.txt:2:11: control character U+0001"},
	}
	for _, tt := range tests {
		_, err := parseString(t, tt.in)
		list := errorList(t, err)
		if len(list) != 1 || !strings.HasPrefix(list[0].Error(), tt.want) {
			t.Errorf("Parse(%q) = %q, want only %q...", tt.in, err, tt.want)
		}
	}
}

func TestParseRequiringReportsEverythingInOnePass(t *testing.T) {
	in := "db1 instance=i-nothex mounts=/data volumes=vol-0123456789abcdef0\n" +
		"db7\n" +
		"db8 instance=i-0123456789abcdef0 mounts=relative\n"
	_, err := ParseRequiring("h.txt", strings.NewReader(in),
		Requirements{InstanceID: true, Mounts: true, Volumes: true})
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("ParseRequiring = %v, want an ErrorList", err)
	}
	want := []string{"h.txt:1:", "h.txt:2:1: missing instance=", "h.txt:2:1: missing mounts=",
		"h.txt:2:1: missing volumes=", "h.txt:3:"}
	got := err.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("ParseRequiring errors lack %q:\n%s", w, got)
		}
	}
}
