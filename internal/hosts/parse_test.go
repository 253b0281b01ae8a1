package hosts

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// parseString parses s as the file "hosts.txt".
func parseString(t *testing.T, s string) (*File, error) {
	t.Helper()
	return Parse("hosts.txt", strings.NewReader(s))
}

// errorList asserts that err is an ErrorList and returns it.
func errorList(t *testing.T, err error) ErrorList {
	t.Helper()
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error %v (%T), want an ErrorList", err, err)
	}
	return list
}

func TestParse(t *testing.T) {
	const in = "# destination            options\n" +
		"db1.internal             instance=i-0abc123def4567890 " +
		"mounts=/data,/var/lib/mysql volumes=vol-0123456789abcdef0\n" +
		"\n" +
		"ubuntu@10.0.3.17:2222    mounts=/srv region=eu-west-1\n" +
		"web-2                    # an alias; the rest is discovered\n" +
		"\t[fd00::17]:2200\tuser=admin\tvolumes=vol-0123abcd,vol-89abcdef\r\n" +
		"db1.internal user=ec2-user port=2022 region=us-gov-west-1 # x\n" +
		"   # indented comment\n" +
		"x#y@h mounts=/a#b,/#\n" +
		"fd00::18 instance=i-0123abcd region=cn-north-1"
	want := []Host{{
		Line:        2,
		Destination: "db1.internal",
		Addr:        "db1.internal",
		InstanceID:  "i-0abc123def4567890",
		Mounts:      []string{"/data", "/var/lib/mysql"},
		Volumes:     []string{"vol-0123456789abcdef0"},
	}, {
		Line:        4,
		Destination: "ubuntu@10.0.3.17:2222",
		User:        "ubuntu",
		Addr:        "10.0.3.17",
		Port:        2222,
		Mounts:      []string{"/srv"},
		Region:      "eu-west-1",
	}, {
		Line:        5,
		Destination: "web-2",
		Addr:        "web-2",
	}, {
		Line:        6,
		Destination: "[fd00::17]:2200",
		User:        "admin",
		Addr:        "fd00::17",
		Port:        2200,
		Volumes:     []string{"vol-0123abcd", "vol-89abcdef"},
	}, {
		Line:        7,
		Destination: "db1.internal",
		User:        "ec2-user",
		Addr:        "db1.internal",
		Port:        2022,
		Region:      "us-gov-west-1",
	}, {
		Line:        9,
		Destination: "fd00::18",
		Addr:        "fd00::18",
		InstanceID:  "i-0123abcd",
		Region:      "cn-north-1",
	}}

	// "x#y@h" is not a comment, but not a valid user either.
	f, err := parseString(t, in)
	list := errorList(t, err)
	if len(list) != 1 || list[0].Line != 9 || f != nil {
		t.Fatalf("Parse(in) = %v, %v, want only an error on line 9",
			f, err)
	}

	in2 := strings.Replace(in, "x#y@h", "x@h", 1)
	want = append(want[:5], append([]Host{{
		Line:        9,
		Destination: "x@h",
		User:        "x",
		Addr:        "h",
		Mounts:      []string{"/a#b", "/#"},
	}}, want[5:]...)...)
	want[6].Line = 10
	f, err = parseString(t, in2)
	if err != nil {
		t.Fatalf("Parse(in) error:\n%v", err)
	}
	if f.Path != "hosts.txt" {
		t.Errorf("Parse(in).Path = %q, want %q", f.Path, "hosts.txt")
	}
	if !reflect.DeepEqual(f.Hosts, want) {
		t.Errorf("Parse(in).Hosts =\n%+v\nwant\n%+v", f.Hosts, want)
	}
}

func TestParseMountEscapes(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`/a\040b`, []string{"/a b"}},
		{`/a\134b`, []string{`/a\b`}},
		{`/a\054b,/c`, []string{"/a,b", "/c"}},
		{`/$HOME/'q'/"d"/` + "`x`", []string{`/$HOME/'q'/"d"/` + "`x`"}},
		{`/\040\040`, []string{"/  "}},
		{`/mnt/ünï`, []string{"/mnt/ünï"}},
		{"/", []string{"/"}},
	}
	for _, tt := range tests {
		f, err := parseString(t, "h mounts="+tt.in+"\n")
		if err != nil {
			t.Errorf("Parse(mounts=%s) error %v, want nil", tt.in, err)
			continue
		}
		if got := f.Hosts[0].Mounts; !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Parse(mounts=%s).Mounts = %q, want %q",
				tt.in, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		pos  string // "line:col" or "line" or "" for the whole file
		want string
	}{
		{"UnknownOption", "h\nh2\ndb1.internal   instance=i-0123abcd mount=/a\n",
			"3:36", `unknown option "mount" (want instance, mounts, ` +
				`volumes, region, user, port)`},
		{"NotAnOption", "h other", "1:3", `unexpected field "other"`},
		{"EmptyKey", "h =x", "1:3", `unknown option ""`},
		{"RepeatedOption", "h region=eu-west-1 region=eu-west-2", "1:20",
			"repeated option region= (first at column 3)"},
		{"RepeatedBadOption", "h port=x port=2", "1:10",
			"repeated option port="},
		{"EmptyValue", "h mounts=", "1:3", "empty value for mounts="},
		{"BadDestination", "  h:0 mounts=/a", "1:3",
			`invalid destination "h:0": invalid port "0"`},
		{"DashDestination", "-oProxyCommand=evil", "1:1", "starts with '-'"},
		{"InstanceUpper", "h instance=i-0ABC1234", "1:3",
			`invalid instance ID "i-0ABC1234"`},
		{"InstanceLength", "h instance=i-0abc123", "1:3",
			"8 or 17 lowercase hex digits"},
		{"InstancePrefix", "h instance=vol-0abc1234", "1:3",
			"invalid instance ID"},
		{"VolumeBad", "h volumes=vol-0123abcd,vol-xyz", "1:3",
			`invalid volume ID "vol-xyz"`},
		{"VolumeEmpty", "h volumes=vol-0123abcd,", "1:3",
			"empty element in volumes="},
		{"VolumeDuplicate", "h volumes=vol-0123abcd,vol-0123abcd", "1:3",
			`duplicate volume "vol-0123abcd"`},
		{"MountRelative", "h mounts=data", "1:3",
			`mount point "data" is not absolute`},
		{"MountTrailingSlash", "h mounts=/data/", "1:3",
			`mount point "/data/" is not normalised (want "/data")`},
		{"MountDoubleSlash", "h mounts=//data", "1:3", "not normalised"},
		{"MountDot", "h mounts=/a/./b", "1:3", "not normalised"},
		{"MountDotDot", "h mounts=/a/../b", "1:3", "not normalised"},
		{"MountEmptyElement", "h mounts=/a,,/b", "1:3",
			"empty element in mounts="},
		{"MountDuplicate", "h mounts=/a,/b,/a", "1:3",
			`duplicate mount point "/a"`},
		{"MountDuplicateEscaped", `h mounts=/a\040b,/a\040b`, "1:3",
			`duplicate mount point "/a b"`},
		{"MountTab", `h mounts=/a\011b`, "1:3",
			"control character U+0009"},
		{"MountBadEscape", `h mounts=/a\041`, "1:3",
			`invalid escape "\\041"`},
		{"MountStrayBackslash", `h mounts=/a\`, "1:3",
			`invalid escape "\\"`},
		{"MountShortEscape", `h mounts=/a\04`, "1:3",
			`invalid escape "\\04"`},
		{"MountEscapedSlashDot", `h mounts=/a/\056`, "1:3",
			"invalid escape"},
		{"RegionBad", "h region=EU-west-1", "1:3", `invalid region "EU-west-1"`},
		{"RegionNoNumber", "h region=eu-west", "1:3", "invalid region"},
		{"UserBad", "h user=-root", "1:3", "starts with '-'"},
		{"PortBad", "h port=70000", "1:3", `invalid port "70000"`},
		{"UserConflict", "alice@h user=bob", "1:9",
			`user=bob conflicts with user "alice"`},
		{"PortConflict", "h:22 port=2222", "1:6",
			"port=2222 conflicts with port 22"},
		{"DuplicateDestination", "db1\n\nDB1 # again\n", "3:1",
			`duplicate destination "db1" (first on line 1)`},
		{"DuplicateViaOptions", "bob@db1:22\ndb1 user=bob port=22", "2:1",
			`duplicate destination "bob@db1:22" (first on line 1)`},
		{"DuplicateIPv6", "[fd00::1]:22\n[FD00:0::1]:22", "2:1",
			`duplicate destination "[fd00::1]:22" (first on line 1)`},
		{"DuplicateBareIPv6", "fd00::1\n[fd00::1]", "2:1",
			"duplicate destination"},
		{"DuplicateInstance",
			"a instance=i-0123abcd\nb mounts=/ instance=i-0123abcd", "2:12",
			`duplicate instance ID "i-0123abcd" (first on line 1)`},
		{"ControlCharacter", "h mounts=/a\x01b", "1:12",
			"control character U+0001"},
		{"ControlInComment", "h\x7f # x", "1:2", "control character U+007F"},
		{"InvalidUTF8", "h\nh2 mounts=/a\xffb\n", "2:13", "invalid UTF-8"},
		{"InvalidUTF8InComment", "h # \xc3", "1:5", "invalid UTF-8"},
		{"LongLine", "h\nh2 # " + strings.Repeat("x", MaxLineLength), "2",
			"line is 4101 bytes long (want at most 4096)"},
		{"NoHosts", "# only\n\n   \n# comments\n", "", "no hosts"},
		{"Empty", "", "", "no hosts"},
		{"TooLarge", strings.Repeat("# comment\n", MaxFileSize/10+1), "",
			"file is larger than 1 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := parseString(t, tt.in)
			if f != nil {
				t.Errorf("Parse(%q) file = %+v, want nil", tt.in, f)
			}
			list := errorList(t, err)
			wantPrefix := "hosts.txt:"
			if tt.pos != "" {
				wantPrefix += tt.pos + ": "
			} else {
				wantPrefix = "hosts.txt: "
			}
			found := false
			for _, e := range list {
				got := e.Error()
				if strings.HasPrefix(got, wantPrefix) &&
					strings.Contains(got, tt.want) {
					found = true
				}
			}
			if !found {
				t.Errorf("Parse(%q) = %q, want %s...%s",
					tt.in, err, wantPrefix, tt.want)
			}
		})
	}
}
