package hosts

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"reflect"
	"strings"
	"testing"
	"unicode"
)

func FuzzParse(f *testing.F) {
	seeds := []string{
		"db1.internal instance=i-0abc123def4567890 mounts=/data,/var/lib/x\n",
		"ubuntu@10.0.3.17:2222 mounts=/srv region=eu-west-1 # c\n",
		"web-2\n# comment\n\n[fd00::17]:22 user=u volumes=vol-0123abcd\n",
		`h mounts=/a\040b,/c\054d,/e\134f port=2222` + "\r\n",
		"fd00::1 instance=i-0123abcd\nFD00::1\n",
		"h mounts=/a/../b\nh user=x\n\xff\x01",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("fuzz", bytes.NewReader(data))
		if err != nil {
			checkErrorList(t, err)
			return
		}
		if len(file.Hosts) == 0 {
			t.Fatalf("Parse(%q) = no hosts and no error", data)
		}
		lines := make([]string, len(file.Hosts))
		for i, h := range file.Hosts {
			assertValidHost(t, h)
			lines[i] = Format(h)
		}

		// Formatting the hosts and parsing them again is lossless.
		text := strings.Join(lines, "\n")
		again, err := Parse("fuzz", strings.NewReader(text))
		if err != nil {
			t.Fatalf("Parse(Format(hosts of %q)) = %q, error %v",
				data, text, err)
		}
		for i := range file.Hosts {
			want := file.Hosts[i]
			want.Line = i + 1
			if got := again.Hosts[i]; !reflect.DeepEqual(got, want) {
				t.Errorf("Parse(Format(%+v)) = %+v, want the same",
					want, got)
			}
		}
	})
}

// checkErrorList asserts the shape of an error from Parse.
func checkErrorList(t *testing.T, err error) {
	t.Helper()
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("Parse error %v (%T), want an ErrorList", err, err)
	}
	if len(list) == 0 || len(list) > MaxErrors+1 {
		t.Fatalf("Parse error has %d entries, want 1-%d",
			len(list), MaxErrors+1)
	}
	for _, e := range list {
		if e.Line < 0 || e.Col < 0 || e.Msg == "" {
			t.Errorf("Parse error entry %+v, want line, col >= 0 and "+
				"a message", e)
		}
	}
}

// assertValidHost asserts what every host Parse accepts must satisfy.
func assertValidHost(t *testing.T, h Host) {
	t.Helper()
	for _, m := range h.Mounts {
		if !strings.HasPrefix(m, "/") || path.Clean(m) != m ||
			strings.ContainsFunc(m, unicode.IsControl) {
			t.Errorf("Parse accepted mount point %q, want absolute, "+
				"clean, no control characters", m)
		}
	}
	user, addr, port, err := SplitDestination(h.Destination)
	if err != nil || addr != h.Addr || (user != "" && user != h.User) ||
		(port != 0 && port != h.Port) {
		t.Errorf("SplitDestination(%q) = %q, %q, %d, %v, want %q, %q, "+
			"%d", h.Destination, user, addr, port, err,
			h.User, h.Addr, h.Port)
	}
	joined := JoinDestination(h.User, h.Addr, h.Port)
	u2, a2, p2, err := SplitDestination(joined)
	if err != nil || u2 != h.User || a2 != h.Addr || p2 != h.Port {
		t.Errorf("SplitDestination(%q) = %q, %q, %d, %v, want %q, %q, %d",
			joined, u2, a2, p2, err, h.User, h.Addr, h.Port)
	}
	if strings.HasPrefix(h.Destination, "-") ||
		strings.HasPrefix(h.User, "-") {
		t.Errorf("Parse accepted %+v, want nothing starting with '-'", h)
	}
}

// BenchmarkParse parses a hosts file close to MaxFileSize.
func BenchmarkParse(b *testing.B) {
	var sb strings.Builder
	for i := 0; sb.Len() < MaxFileSize-200; i++ {
		fmt.Fprintf(&sb, "u@db%d.internal:22 instance=i-%08x "+
			`mounts=/data,/var/lib/my\040sql volumes=vol-%08x # x`+"\n",
			i, i, i)
	}
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse("bench", bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
