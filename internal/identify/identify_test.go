package identify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestNormalise(t *testing.T) {
	tests := []struct {
		name     string
		in       Options
		endpoint string
		sources  []string
		timeout  time.Duration
		wantErr  string
	}{
		{name: "Defaults", endpoint: DefaultEndpoint,
			sources: []string{"dmi", "imds"}, timeout: 5 * time.Second},
		{name: "TrailingSlash", in: Options{Endpoint: "http://127.0.0.1:8080/"},
			endpoint: "http://127.0.0.1:8080", sources: []string{"dmi", "imds"},
			timeout: 5 * time.Second},
		{name: "IPv6", in: Options{Endpoint: "http://[fd00:ec2::254]", Sources: []string{"imds"},
			Timeout: time.Second}, endpoint: "http://[fd00:ec2::254]",
			sources: []string{"imds"}, timeout: time.Second},
		{name: "HTTPS", in: Options{Endpoint: "https://127.0.0.1:1/p"},
			endpoint: "https://127.0.0.1:1/p", sources: []string{"dmi", "imds"},
			timeout: 5 * time.Second},
		{name: "FTP", in: Options{Endpoint: "ftp://127.0.0.1"}, wantErr: "want an http or https URL"},
		{name: "NoScheme", in: Options{Endpoint: "127.0.0.1"}, wantErr: "want an http or https URL"},
		{name: "NoHost", in: Options{Endpoint: "http://"}, wantErr: "no host"},
		{name: "UserInfo", in: Options{Endpoint: "http://u:pw@127.0.0.1"},
			wantErr: "must not hold a user or password"},
		{name: "Query", in: Options{Endpoint: "http://127.0.0.1/?a=b"}, wantErr: "query or fragment"},
		{name: "EmptyQuery", in: Options{Endpoint: "http://127.0.0.1/?"}, wantErr: "query or fragment"},
		{name: "Fragment", in: Options{Endpoint: "http://127.0.0.1/#x"}, wantErr: "query or fragment"},
		{name: "Space", in: Options{Endpoint: "http://127.0.0.1/ -o/tmp/x"}, wantErr: "space or control"},
		{name: "Newline", in: Options{Endpoint: "http://127.0.0.1\n"}, wantErr: "space or control"},
		{name: "EmptySources", in: Options{Sources: []string{}}, wantErr: "no identity source"},
		{name: "UnknownSource", in: Options{Sources: []string{"dmi", "tags"}},
			wantErr: `unknown identity source "tags"`},
		{name: "RepeatedSource", in: Options{Sources: []string{"imds", "imds"}},
			wantErr: `"imds" given twice`},
		{name: "NegativeTimeout", in: Options{Timeout: -time.Second}, wantErr: "negative timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := normalise(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) ||
					!strings.HasPrefix(err.Error(), "identify: ") {
					t.Errorf("normalise(%+v) = %v, want identify: error holding %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("normalise(%+v) = %v, want nil", tt.in, err)
			}
			if got.Endpoint != tt.endpoint || !reflect.DeepEqual(got.Sources, tt.sources) ||
				got.Timeout != tt.timeout || got.testOnlyDMIPath != dmiPath {
				t.Errorf("normalise(%+v) = %+v, want endpoint %q, sources %q, timeout %s, dmi %s",
					tt.in, got, tt.endpoint, tt.sources, tt.timeout, dmiPath)
			}
		})
	}
}

func TestParseAnswer(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    *Identity
		noID    []string
		wantErr string
	}{
		{name: "DMI", out: "ID dmi i-0123abcd\n", want: &Identity{"i-0123abcd", "dmi", ""}},
		{name: "IMDSRegion", out: "ID imds i-0123456789abcdef0\nREGION us-gov-west-1\n",
			want: &Identity{"i-0123456789abcdef0", "imds", "us-gov-west-1"}},
		{name: "BannerFirst", out: "Welcome!\nID is your friend\nID imds i-0123abcd\n",
			want: &Identity{"i-0123abcd", "imds", ""}},
		{name: "BadRegionDropped", out: "ID imds i-0123abcd\nREGION ../etc\n",
			want: &Identity{"i-0123abcd", "imds", ""}},
		{name: "RegionBeforeIDIgnored", out: "REGION us-east-1\nID imds i-0123abcd\n",
			want: &Identity{"i-0123abcd", "imds", ""}},
		{name: "RegionNotFromDMI", out: "ID dmi i-0123abcd\nREGION us-east-1\n",
			want: &Identity{"i-0123abcd", "dmi", ""}},
		{name: "NoID", out: "NOID dmi:absent imds:no-token\n",
			noID: []string{"dmi:absent", "imds:no-token"}},
		{name: "NoIDBare", out: "NOID\n", noID: []string{}},
		{name: "Empty", out: "", wantErr: "printed no answer"},
		{name: "OnlyBanner", out: "hello\n", wantErr: "printed no answer"},
		{name: "UpperHex", out: "ID imds i-0123ABCD\n", wantErr: "not an instance id"},
		{name: "NineHex", out: "ID imds i-0123abcde\n", wantErr: "not an instance id"},
		{name: "Volume", out: "ID imds vol-0123abcd\n", wantErr: "not an instance id"},
		{name: "UnknownSource", out: "ID tags i-0123abcd\n", wantErr: "malformed answer"},
		{name: "ExtraField", out: "ID imds i-0123abcd x\n", wantErr: "malformed answer"},
		{name: "MissingID", out: "ID imds\n", wantErr: "malformed answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAnswer([]byte(tt.out))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || got.id != nil {
					t.Errorf("parseAnswer(%q) = %+v, %v; want error holding %q", tt.out, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseAnswer(%q) = %v, want nil", tt.out, err)
			}
			if !reflect.DeepEqual(got.id, tt.want) ||
				(tt.noID != nil && !reflect.DeepEqual(got.noID, tt.noID)) {
				t.Errorf("parseAnswer(%q) = %+v %q, want %+v %q", tt.out, got.id, got.noID, tt.want, tt.noID)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	id := &Identity{InstanceID: "i-0123456789abcdef0", Source: SourceDMI}
	tests := []struct {
		name     string
		id       *Identity
		want     string
		mismatch *MismatchError
		unavail  bool
		wantErr  string
	}{
		{name: "Match", id: id, want: "i-0123456789abcdef0"},
		{name: "Mismatch", id: id, want: "i-0fedcba9876543210",
			mismatch: &MismatchError{"i-0123456789abcdef0", "i-0fedcba9876543210", "dmi"}},
		{name: "CaseMatters", id: id, want: "i-0123456789ABCDEF0", wantErr: "invalid instance id"},
		{name: "NilIdentity", want: "i-0123abcd", unavail: true},
		{name: "BadWant", id: id, want: "", wantErr: "invalid instance id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.id, tt.want)
			var me *MismatchError
			switch {
			case tt.mismatch != nil:
				if !errors.As(err, &me) || *me != *tt.mismatch {
					t.Errorf("Check(%+v, %s) = %v, want %+v", tt.id, tt.want, err, tt.mismatch)
				}
			case tt.unavail:
				if !errors.Is(err, ErrUnavailable) {
					t.Errorf("Check(nil, %s) = %v, want ErrUnavailable", tt.want, err)
				}
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || errors.As(err, &me) {
					t.Errorf("Check(%+v, %q) = %v, want error holding %q", tt.id, tt.want, err, tt.wantErr)
				}
			case err != nil:
				t.Errorf("Check(%+v, %s) = %v, want nil", tt.id, tt.want, err)
			}
		})
	}
}

func TestMismatchErrorText(t *testing.T) {
	err := &MismatchError{Got: "i-0123abcd", Want: "i-0fedcba9", Source: SourceIMDS}
	want := "identify: host reports instance i-0123abcd (from instance metadata), want i-0fedcba9"
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestCommandArguments runs the built command with a stand-in script that
// prints its arguments, so quoting and defaults are checked as the remote
// shell reads them. Nothing contacts any address.
func TestCommandArguments(t *testing.T) {
	old := script
	t.Cleanup(func() { script = old })
	script = `printf '[%s]' "$0" "$@"`

	tests := []struct {
		name string
		in   Options
		want string
	}{
		{"Defaults", Options{},
			"[orchestrate-identify][" + DefaultEndpoint + "][dmi imds][2][" + dmiPath + "]"},
		{"Quoted", Options{Endpoint: "http://127.0.0.1/a'b$(id)`id`", Sources: []string{"imds"},
			Timeout: 500 * time.Millisecond, testOnlyDMIPath: "/tmp/it's"},
			"[orchestrate-identify][http://127.0.0.1/a'b$(id)`id`][imds][1][/tmp/it's]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := normalise(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			cmd := command(o)
			if strings.Contains(cmd, "sudo") {
				t.Errorf("command(%+v) = %q, want no sudo", tt.in, cmd)
			}
			c := exec.Command("/bin/sh", "-c", cmd)
			c.Dir = t.TempDir()
			out, err := c.Output()
			if got := string(out); err != nil || got != tt.want {
				t.Errorf("command(%+v) ran as %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestStepSeconds(t *testing.T) {
	tests := []struct {
		whole time.Duration
		want  int
	}{
		{5 * time.Second, 2}, {2 * time.Second, 2}, {1500 * time.Millisecond, 2},
		{time.Second, 1}, {100 * time.Millisecond, 1},
	}
	for _, tt := range tests {
		if got := stepSeconds(tt.whole); got != tt.want {
			t.Errorf("stepSeconds(%s) = %d, want %d", tt.whole, got, tt.want)
		}
	}
}

// fakeRunner prints out and returns err, or blocks until ctx ends when
// block is set, like a hung connection.
type fakeRunner struct {
	out   string
	err   error
	block bool
}

func (f fakeRunner) Exec(ctx context.Context, cmd string, stdin io.Reader,
	stdout, stderr io.Writer) error {
	for _, a := range metadataAddrs {
		if strings.Contains(cmd, a) {
			return fmt.Errorf("test runner: refusing a command naming %s", a)
		}
	}
	io.WriteString(stdout, f.out)
	if f.block {
		<-ctx.Done()
		return ctx.Err()
	}
	return f.err
}

func TestReadRunnerOutcomes(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	lost := errors.New("sshexec: connection lost")
	tests := []struct {
		name    string
		ctx     context.Context
		r       Runner
		want    *Identity
		is      error // errors.Is target
		notIs   error
		wantErr string
	}{
		{name: "IDThenFailure", r: fakeRunner{out: "ID imds i-0123abcd\n", err: lost},
			want: &Identity{"i-0123abcd", "imds", ""}},
		{name: "RunFailure", r: fakeRunner{err: lost}, is: lost, notIs: ErrUnavailable,
			wantErr: "identify: run probe"},
		{name: "LyingHost", r: fakeRunner{out: "ID imds i-XYZ\n"}, notIs: ErrUnavailable,
			wantErr: "not an instance id"},
		{name: "Hung", r: fakeRunner{block: true}, is: ErrUnavailable, wantErr: "timed out after 200ms"},
		{name: "Cancelled", ctx: cancelled, r: fakeRunner{block: true},
			is: context.Canceled, notIs: ErrUnavailable},
		{name: "UnknownReason", r: fakeRunner{out: "NOID imds:martian\n"}, is: ErrUnavailable,
			wantErr: `unknown reason "imds:martian"`},
		{name: "NilRunner", wantErr: "identify: no runner", notIs: ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			opts := Options{Endpoint: "http://127.0.0.1:9", Timeout: 200 * time.Millisecond}
			start := time.Now()
			got, err := Read(ctx, tt.r, opts)
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("Read took %s, want within the 200ms timeout", took)
			}
			if tt.want != nil {
				if err != nil || got == nil || *got != *tt.want {
					t.Errorf("Read = %+v, %v; want %+v, nil", got, err, tt.want)
				}
				return
			}
			if got != nil || err == nil ||
				(tt.is != nil && !errors.Is(err, tt.is)) ||
				(tt.notIs != nil && errors.Is(err, tt.notIs)) ||
				!strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Read = %+v, %v; want error holding %q, is %v, not %v",
					got, err, tt.wantErr, tt.is, tt.notIs)
			}
		})
	}
}

func TestCapped(t *testing.T) {
	c := &capped{max: 8}
	for i := 0; i < 10; i++ {
		c.Write([]byte("0123456789"))
	}
	c.Write([]byte("ID end\n"))
	got := c.String()
	if len(got) < 8 || len(got) > 16 || !strings.HasSuffix(got, "ID end\n") {
		t.Errorf("capped after 107 bytes = %q, want 8-16 bytes ending in the last write", got)
	}
}
