package sshexec

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// configHome makes a fresh $HOME holding files (path relative to home ->
// content) and returns it. "$HOME" in contents is replaced by the home.
func configHome(t *testing.T, files map[string]string) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	for name, body := range files {
		p := filepath.Join(home, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(body, "$HOME", home)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return home
}

// applied is what a test checks of Apply's result.
type applied struct {
	Target          Target
	IdentityFiles   []string
	KnownHostsFiles []string
	AcceptNew       bool
	ConnectTimeout  time.Duration
	Keepalive       time.Duration
	KeepaliveMax    int
	ProxyJump       []Target
}

func TestApplySSHConfig(t *testing.T) {
	local, err := localUser()
	if err != nil {
		t.Skipf("no local user name: %v", err)
	}
	base := Config{
		User:              "flaguser",
		Port:              2200,
		IdentityFiles:     []string{"/flag/id"},
		KnownHostsFiles:   []string{"/flag/known_hosts"},
		ConnectTimeout:    10 * time.Second,
		KeepaliveInterval: 5 * time.Second,
		KeepaliveCountMax: 3,
	}
	// unchanged is what Apply returns for base and an alias the file does
	// not mention.
	unchanged := func(alias string) applied {
		return applied{
			Target:          Target{Name: alias, Addr: alias, Port: 2200, User: "flaguser"},
			IdentityFiles:   []string{"/flag/id"},
			KnownHostsFiles: []string{"/flag/known_hosts"},
			ConnectTimeout:  10 * time.Second, Keepalive: 5 * time.Second, KeepaliveMax: 3,
		}
	}
	with := func(a applied, f func(*applied)) applied { f(&a); return a }

	tests := []struct {
		name     string
		files    map[string]string // relative to $HOME; .ssh/config is read
		target   Target
		explicit Explicit
		want     applied
	}{
		{"NoFile", nil, Target{Name: "db1", Addr: "db1"}, Explicit{}, unchanged("db1")},
		{"HostWildcard", map[string]string{".ssh/config": "Host *.internal\n  User ubuntu\n  Port 2222\n"},
			Target{Name: "db1.internal", Addr: "db1.internal"}, Explicit{},
			with(unchanged("db1.internal"), func(a *applied) { a.Target.User, a.Target.Port = "ubuntu", 2222 })},
		{"HostNoMatch", map[string]string{".ssh/config": "Host *.internal\n  User ubuntu\n"},
			Target{Name: "db1.external", Addr: "db1.external"}, Explicit{}, unchanged("db1.external")},
		{"NegatedPattern", map[string]string{".ssh/config": "Host *.internal !db2.internal\n  User ubuntu\n"},
			Target{Name: "db2.internal", Addr: "db2.internal"}, Explicit{}, unchanged("db2.internal")},
		{"FirstMatchWins", map[string]string{".ssh/config": "Host db1\n  User first\nHost *\n  User second\n  Port 2022\n"},
			Target{Name: "db1", Addr: "db1"}, Explicit{},
			with(unchanged("db1"), func(a *applied) { a.Target.User, a.Target.Port = "first", 2022 })},
		{"MatchHost", map[string]string{".ssh/config": "Match host db*\n  User matched\nMatch all\n  Port 2023\n"},
			Target{Name: "db7", Addr: "db7"}, Explicit{},
			with(unchanged("db7"), func(a *applied) { a.Target.User, a.Target.Port = "matched", 2023 })},
		{"IncludeRelativeToDotSSH", map[string]string{
			".ssh/config":        "Include conf.d/*.conf\nHost *\n  User late\n",
			".ssh/conf.d/a.conf": "Host db1\n  HostName 10.0.0.1\n  User included\n",
		}, Target{Name: "db1", Addr: "db1"}, Explicit{},
			with(unchanged("db1"), func(a *applied) { a.Target.Addr, a.Target.User = "10.0.0.1", "included" })},
		{"IncludeTildeInsideHost", map[string]string{
			".ssh/config": "Host db1\n  Include ~/more.conf\n",
			"more.conf":   "Port 2024\n",
		}, Target{Name: "db1", Addr: "db1"}, Explicit{},
			with(unchanged("db1"), func(a *applied) { a.Target.Port = 2024 })},
		{"IncludeInsideOtherHostIgnored", map[string]string{
			".ssh/config": "Host other\n  Include ~/more.conf\n",
			"more.conf":   "Port 2024\n",
		}, Target{Name: "db1", Addr: "db1"}, Explicit{}, unchanged("db1")},
		{"HostNameExpandsAlias", map[string]string{".ssh/config": "Host db1\n  HostName %h.example.com\n"},
			Target{Name: "db1", Addr: "db1"}, Explicit{},
			with(unchanged("db1"), func(a *applied) { a.Target.Addr = "db1.example.com" })},
		{"IdentityFileExpansions", map[string]string{
			".ssh/config":            "Host db1\n  HostName real\n  User ubuntu\n  Port 2201\n  IdentityFile ~/.ssh/%h-%r-%p\n  IdentityFile %d/keys/%u.key\n  IdentityFile ~/.ssh/missing\n",
			".ssh/real-ubuntu-2201":  "key",
			"keys/" + local + ".key": "key",
		}, Target{Name: "db1", Addr: "db1"}, Explicit{},
			with(unchanged("db1"), func(a *applied) {
				a.Target = Target{Name: "db1", Addr: "real", Port: 2201, User: "ubuntu"}
				a.IdentityFiles = []string{"$HOME/.ssh/real-ubuntu-2201", "$HOME/keys/" + local + ".key"}
			})},
		{"UserKnownHostsFileList", map[string]string{".ssh/config": "Host db1\n  UserKnownHostsFile ~/.ssh/kh1 %d/kh_%h\n"},
			Target{Name: "db1", Addr: "db1"}, Explicit{},
			with(unchanged("db1"), func(a *applied) { a.KnownHostsFiles = []string{"$HOME/.ssh/kh1", "$HOME/kh_db1"} })},
		{"ProxyJumpChain", map[string]string{".ssh/config": "Host db1\n  ProxyJump ops@bastion1:2200,bastion2\nHost bastion2\n  HostName 10.1.1.1\n  User jump\n  Port 2022\n"},
			Target{Name: "db1", Addr: "db1"}, Explicit{},
			with(unchanged("db1"), func(a *applied) {
				a.ProxyJump = []Target{
					{Name: "ops@bastion1:2200", Addr: "bastion1", Port: 2200, User: "ops"},
					{Name: "bastion2", Addr: "10.1.1.1", Port: 2022, User: "jump"},
				}
			})},
		{"ProxyJumpSpecWinsOverHopConfig", map[string]string{".ssh/config": "Host db1\n  ProxyJump me@[::1]:2300\nHost ::1\n  User other\n  Port 22\n"},
			Target{Name: "db1", Addr: "db1"}, Explicit{},
			with(unchanged("db1"), func(a *applied) {
				a.ProxyJump = []Target{{Name: "me@[::1]:2300", Addr: "::1", Port: 2300, User: "me"}}
			})},
		{"ProxyJumpNoneStopsWildcard", map[string]string{".ssh/config": "Host db1\n  ProxyJump none\nHost *\n  ProxyJump bastion\n"},
			Target{Name: "db1", Addr: "db1"}, Explicit{}, unchanged("db1")},
		{"StrictAcceptNew", map[string]string{".ssh/config": "StrictHostKeyChecking accept-new\n"},
			Target{Name: "db1", Addr: "db1"}, Explicit{},
			with(unchanged("db1"), func(a *applied) { a.AcceptNew = true })},
		{"StrictYesQuoted", map[string]string{".ssh/config": "StrictHostKeyChecking \"yes\"\n"},
			Target{Name: "db1", Addr: "db1"}, Explicit{}, unchanged("db1")},
		{"StrictNoIgnoredWhenExplicit", map[string]string{".ssh/config": "StrictHostKeyChecking no\n"},
			Target{Name: "db1", Addr: "db1"}, Explicit{AcceptNewHostKeys: true}, unchanged("db1")},
		{"Times", map[string]string{".ssh/config": "ConnectTimeout 1m30s\nServerAliveInterval 15\nServerAliveCountMax 4\n"},
			Target{Name: "db1", Addr: "db1"}, Explicit{},
			with(unchanged("db1"), func(a *applied) { a.ConnectTimeout, a.Keepalive, a.KeepaliveMax = 90*time.Second, 15*time.Second, 4 })},
		{"ServerAliveIntervalZeroKeepsKeepalives", map[string]string{".ssh/config": "ServerAliveInterval 0\n"},
			Target{Name: "db1", Addr: "db1"}, Explicit{}, unchanged("db1")},
		{"ExplicitWinsOverFile", map[string]string{".ssh/config": "Host db1\n  User fileuser\n  Port 2999\n  IdentityFile ~/.ssh/id\n  UserKnownHostsFile ~/kh\n  ConnectTimeout 3\n  ServerAliveInterval 9\n  ServerAliveCountMax 9\n  ProxyJump b\n",
			".ssh/id": "key"},
			Target{Name: "db1", Addr: "db1"},
			Explicit{User: true, Port: true, IdentityFiles: true, KnownHostsFiles: true,
				ConnectTimeout: true, KeepaliveInterval: true, KeepaliveCountMax: true, ProxyJump: true},
			unchanged("db1")},
		{"TargetUserAndPortWinOverFile", map[string]string{".ssh/config": "Host db1\n  User fileuser\n  Port 2999\n"},
			Target{Name: "root@db1:2022", Addr: "db1", User: "root", Port: 2022}, Explicit{},
			with(unchanged("db1"), func(a *applied) { a.Target = Target{Name: "root@db1:2022", Addr: "db1", User: "root", Port: 2022} })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := configHome(t, tt.files)
			sc, err := LoadConfig("")
			if err != nil {
				t.Fatalf("LoadConfig(\"\") = %v, want nil", err)
			}
			gt, gc, err := sc.Apply(tt.target, base, tt.explicit)
			if err != nil {
				t.Fatalf("Apply(%+v) = %v, want nil", tt.target, err)
			}
			got := applied{Target: gt, IdentityFiles: gc.IdentityFiles, KnownHostsFiles: gc.KnownHostsFiles,
				AcceptNew: gc.AcceptNewHostKeys, ConnectTimeout: gc.ConnectTimeout,
				Keepalive: gc.KeepaliveInterval, KeepaliveMax: gc.KeepaliveCountMax, ProxyJump: gc.ProxyJump}
			want := tt.want
			for _, list := range [][]string{want.IdentityFiles, want.KnownHostsFiles} {
				for i := range list {
					list[i] = strings.ReplaceAll(list[i], "$HOME", home)
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Apply(%+v) =\n %+v, want\n %+v", tt.target, got, want)
			}
		})
	}
}

func TestApplySSHConfigDefaults(t *testing.T) {
	configHome(t, map[string]string{".ssh/config": "Host db1\n  User fileuser\n  Port 2999\n"})
	sc, err := LoadConfig("")
	if err != nil {
		t.Fatalf("LoadConfig(\"\") = %v, want nil", err)
	}
	tests := []struct {
		name  string
		sc    *SSHConfig
		alias string
		cfg   Config
		want  Target
	}{
		{"FileBeatsDefaults", sc, "db1", Config{User: "def", Port: 2200}, Target{Name: "db1", Addr: "db1", User: "fileuser", Port: 2999}},
		{"DefaultsWithoutFile", sc, "db2", Config{User: "def", Port: 2200}, Target{Name: "db2", Addr: "db2", User: "def", Port: 2200}},
		{"PortDefault22", sc, "db2", Config{}, Target{Name: "db2", Addr: "db2", Port: 22}},
		{"NilConfig", nil, "db1", Config{User: "def"}, Target{Name: "db1", Addr: "db1", User: "def", Port: 22}},
		{"BracketsStripped", sc, "[::1]", Config{}, Target{Name: "[::1]", Addr: "::1", Port: 22}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := tt.sc.Apply(Target{Name: tt.alias, Addr: tt.alias}, tt.cfg, Explicit{})
			if err != nil || got != tt.want {
				t.Errorf("Apply(%s) = %+v, %v, want %+v, nil", tt.alias, got, err, tt.want)
			}
		})
	}
}

func TestApplySSHConfigErrors(t *testing.T) {
	tests := []struct {
		name   string
		config string
		want   []string
	}{
		{"StrictNo", "Host db1\n  StrictHostKeyChecking no\n", []string{"ssh config for db1", "StrictHostKeyChecking no", "never connects without checking host keys"}},
		{"StrictOff", "StrictHostKeyChecking off\n", []string{"StrictHostKeyChecking off"}},
		{"StrictBad", "StrictHostKeyChecking maybe\n", []string{`StrictHostKeyChecking "maybe"`}},
		{"BadPort", "Port 70000\n", []string{`Port "70000"`}},
		{"BadConnectTimeout", "ConnectTimeout soon\n", []string{`ConnectTimeout "soon"`}},
		{"BadCountMax", "ServerAliveCountMax 0\n", []string{`ServerAliveCountMax "0"`}},
		{"UnknownToken", "IdentityFile ~/.ssh/%Q\n", []string{"%Q is not supported"}},
		{"KnownHostsNone", "UserKnownHostsFile none\n", []string{"UserKnownHostsFile none"}},
		{"ProxyJumpURI", "ProxyJump ssh://b:22\n", []string{"ssh:// URIs are not supported"}},
		{"ProxyJumpBadPort", "ProxyJump b:0\n", []string{`port "0"`}},
		{"ProxyJumpEmptyHop", "ProxyJump a,,b\n", []string{"empty jump host"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			configHome(t, map[string]string{".ssh/config": tt.config})
			sc, err := LoadConfig("")
			if err != nil {
				t.Fatalf("LoadConfig(\"\") = %v, want nil", err)
			}
			_, _, err = sc.Apply(Target{Name: "db1", Addr: "db1"}, Config{}, Explicit{})
			if err == nil {
				t.Fatalf("Apply(db1) with %q = nil, want error", tt.config)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Apply(db1) with %q = %q, want it to contain %q", tt.config, err, w)
				}
			}
		})
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string // with $HOME for the home directory
	}{
		{"MatchExec", map[string]string{"cfg": "Host a\n  User b\nMatch exec \"true\"\n"},
			"sshexec: parse ssh config $HOME/cfg:3: Match Exec is not supported"},
		{"MatchUser", map[string]string{"cfg": "Match user root\n"},
			"sshexec: parse ssh config $HOME/cfg:1: unsupported Match criterion"},
		{"InIncludedFile", map[string]string{"cfg": "Include inc/*\n", ".ssh/inc/x": "\n\nMatch exec x\n"},
			"sshexec: parse ssh config $HOME/.ssh/inc/x:3:"},
		{"IncludeLoop", map[string]string{"cfg": "Include ~/cfg\n"},
			"Include nested more than 16 deep"},
		{"Unreadable", map[string]string{"cfg/x": ""}, "sshexec: read ssh config $HOME/cfg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := configHome(t, tt.files)
			path := filepath.Join(home, "cfg")
			_, err := LoadConfig(path)
			want := strings.ReplaceAll(tt.want, "$HOME", home)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("LoadConfig(%s) = %v, want an error containing %q", path, err, want)
			}
		})
	}
}

func TestLoadConfigMissingIsEmpty(t *testing.T) {
	home := configHome(t, nil)
	for _, path := range []string{"", filepath.Join(home, "nope")} {
		sc, err := LoadConfig(path)
		if err != nil {
			t.Fatalf("LoadConfig(%q) = %v, want nil", path, err)
		}
		if v, ok := sc.get("db1", "User"); ok {
			t.Errorf("LoadConfig(%q).get(db1, User) = %q, want unset", path, v)
		}
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"10", 10 * time.Second, true},
		{"90s", 90 * time.Second, true},
		{"1m30s", 90 * time.Second, true},
		{"1H", time.Hour, true},
		{"2d", 48 * time.Hour, true},
		{"1w", 7 * 24 * time.Hour, true},
		{"0", 0, true},
		{"", 0, false},
		{"-1", 0, false},
		{"5x", 0, false},
		{"1.5", 0, false},
	}
	for _, tt := range tests {
		got, err := parseTime(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseTime(%q) = %v, %v, want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseJump(t *testing.T) {
	tests := []struct {
		in   string
		want Target
		ok   bool
	}{
		{"bastion", Target{Name: "bastion", Addr: "bastion"}, true},
		{"ops@bastion:2200", Target{Name: "ops@bastion:2200", Addr: "bastion", User: "ops", Port: 2200}, true},
		{"[fd00::1]:22", Target{Name: "[fd00::1]:22", Addr: "fd00::1", Port: 22}, true},
		{"[fd00::1]", Target{Name: "[fd00::1]", Addr: "fd00::1"}, true},
		{"fd00::1", Target{Name: "fd00::1", Addr: "fd00::1"}, true},
		{"a@b@c", Target{Name: "a@b@c", Addr: "c", User: "a@b"}, true},
		{"@b", Target{}, false},
		{"b:x", Target{}, false},
		{"-oProxyCommand=x", Target{}, false},
		{"", Target{}, false},
	}
	for _, tt := range tests {
		got, err := parseJump(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("parseJump(%q) = %+v, %v, want %+v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
