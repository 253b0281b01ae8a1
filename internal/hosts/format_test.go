package hosts

import (
	"reflect"
	"testing"
)

func TestEscapeMount(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"/data", "/data"},
		{"/a b", `/a\040b`},
		{"/a\tb", `/a\011b`},
		{"/a,b", `/a\054b`},
		{`/a\b`, `/a\134b`},
		{`/\040`, `/\134040`},
		{"/$x 'y'", `/$x\040'y'`},
	}
	for _, tt := range tests {
		got := escapeMount(tt.in)
		if got != tt.want {
			t.Errorf("escapeMount(%q) = %q, want %q", tt.in, got, tt.want)
		}
		back, err := unescapeMount(got)
		if err != nil || back != tt.in {
			t.Errorf("unescapeMount(%q) = %q, %v, want %q, nil",
				got, back, err, tt.in)
		}
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		h    Host
		want string
	}{
		{Host{Destination: "web-2", Addr: "web-2"}, "web-2"},
		{Host{
			Destination: "u@[fd00::1]:22",
			User:        "u",
			Addr:        "fd00::1",
			Port:        22,
			InstanceID:  "i-0123abcd",
			Mounts:      []string{"/a b", "/c,d"},
			Volumes:     []string{"vol-0123abcd", "vol-89abcdef"},
			Region:      "eu-west-1",
		}, `u@[fd00::1]:22 instance=i-0123abcd mounts=/a\040b,/c\054d ` +
			"volumes=vol-0123abcd,vol-89abcdef region=eu-west-1"},
		{Host{Destination: "h", User: "bob", Addr: "h", Port: 2222},
			"h user=bob port=2222"},
		{Host{Destination: "bob@h", User: "bob", Addr: "h", Port: 2222},
			"bob@h port=2222"},
	}
	for _, tt := range tests {
		got := Format(tt.h)
		if got != tt.want {
			t.Errorf("Format(%+v) = %q, want %q", tt.h, got, tt.want)
			continue
		}
		f, err := parseString(t, got)
		if err != nil {
			t.Errorf("Parse(%q) error %v", got, err)
			continue
		}
		tt.h.Line = 1
		if !reflect.DeepEqual(f.Hosts[0], tt.h) {
			t.Errorf("Parse(%q) = %+v, want %+v", got, f.Hosts[0], tt.h)
		}
	}
}
