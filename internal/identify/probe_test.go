package identify

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	imdsID = "i-0123456789abcdef0"
	dmiID  = "i-0aaa1111bbbb2222c"
)

// TestReadScript runs the real script with the local /bin/sh against a
// local IMDSv2 server, once with curl and once with GNU wget as the client.
func TestReadScript(t *testing.T) {
	tests := []struct {
		name    string
		imds    imdsConfig
		down    bool   // nothing listens at the endpoint
		dmi     string // asset tag file body; "" means no file
		sources []string
		timeout time.Duration
		want    *Identity
		wantErr string // substring of an error matching ErrUnavailable
		anyErr  bool   // the error may be a hard one or ErrUnavailable
		check   func(t *testing.T, f *fakeIMDS, redirect *recorder)
	}{
		{name: "IMDSv2", want: &Identity{imdsID, SourceIMDS, "eu-west-1"},
			check: func(t *testing.T, f *fakeIMDS, _ *recorder) {
				if n := f.count("PUT", "/latest/api/token"); n != 1 {
					t.Errorf("token PUTs = %d, want 1", n)
				}
			}},
		{name: "DMIWins", dmi: dmiID + "\n", want: &Identity{dmiID, SourceDMI, ""},
			check: noRequests},
		{name: "DMIWithoutNewline", dmi: dmiID, want: &Identity{dmiID, SourceDMI, ""},
			check: noRequests},
		{name: "DMINotAnID", dmi: "Default string\n",
			want: &Identity{imdsID, SourceIMDS, "eu-west-1"}},
		{name: "DMIShortHex", dmi: "i-0123456\n",
			want: &Identity{imdsID, SourceIMDS, "eu-west-1"}},
		{name: "IMDSOnlySkipsDMI", dmi: dmiID, sources: []string{"imds"},
			want: &Identity{imdsID, SourceIMDS, "eu-west-1"}},
		{name: "IMDSFirst", dmi: dmiID, sources: []string{"imds", "dmi"},
			want: &Identity{imdsID, SourceIMDS, "eu-west-1"}},
		{name: "IMDSDownDMIAfter", down: true, dmi: dmiID,
			sources: []string{"imds", "dmi"}, want: &Identity{dmiID, SourceDMI, ""}},
		{name: "DMIOnlyAbsent", sources: []string{"dmi"},
			wantErr: "dmi: no readable asset tag", check: noRequests},
		{name: "Down", down: true, wantErr: "no IMDSv2 token"},
		{name: "TokenHangs", imds: imdsConfig{hangToken: true}, timeout: 5 * time.Second,
			wantErr: "no IMDSv2 token"},
		{name: "ShortTimeoutHangs", imds: imdsConfig{hangToken: true},
			timeout: 700 * time.Millisecond, wantErr: "timed out"},
		{name: "IMDSv1Only", imds: imdsConfig{v1Only: true}, wantErr: "IMDSv1 only",
			check: func(t *testing.T, f *fakeIMDS, _ *recorder) {
				if n := f.count("GET", "/latest/meta-data/instance-id"); n != 0 {
					t.Errorf("instance-id GETs without a token = %d, want 0", n)
				}
			}},
		{name: "JunkID", imds: imdsConfig{junkID: "<html>oops</html>"},
			wantErr: "not an instance id"},
		{name: "SixteenHexID", imds: imdsConfig{junkID: "i-0123456789abcdef"},
			wantErr: "not an instance id"},
		{name: "IDWithExtraLine", imds: imdsConfig{junkID: imdsID + "\nID dmi " + dmiID},
			wantErr: "not an instance id"},
		{name: "HugeID", imds: imdsConfig{junkID: strings.Repeat("i-0123456789abcdef0", 1<<16)},
			wantErr: "not an instance id"},
		{name: "JunkToken", imds: imdsConfig{token: "abc def\r\nX-Evil: 1"},
			wantErr: "no IMDSv2 token",
			check: func(t *testing.T, f *fakeIMDS, _ *recorder) {
				if n := f.count("GET", "/latest/meta-data/instance-id"); n != 0 {
					t.Errorf("instance-id GETs after a junk token = %d, want 0", n)
				}
			}},
		{name: "RedirectNotFollowed", imds: imdsConfig{redirectTo: "redirect"},
			wantErr: "i", anyErr: true, // curl: a body that is no ID; wget: an error
			check: func(t *testing.T, _ *fakeIMDS, redirect *recorder) {
				if n := len(redirect.all()); n != 0 {
					t.Errorf("redirect target saw %d request(s), want 0", n)
				}
			}},
		{name: "ChallengeNotAnswered", imds: imdsConfig{challenge: true},
			wantErr: "no instance id from"},
		{name: "NoRegion", imds: imdsConfig{noRegion: true},
			want: &Identity{imdsID, SourceIMDS, ""}},
		{name: "JunkRegion", imds: imdsConfig{region: "<b>eu-west-1</b>"},
			want: &Identity{imdsID, SourceIMDS, ""}},
		{name: "RegionHangs", imds: imdsConfig{hangRegion: true}, timeout: 1500 * time.Millisecond,
			want: &Identity{imdsID, SourceIMDS, ""}},
	}
	for _, client := range []string{"curl", "wget"} {
		for _, tt := range tests {
			t.Run(client+"/"+tt.name, func(t *testing.T) {
				proxy, proxyURL := startRecorder(t)
				redirect, redirectURL := startRecorder(t)
				f := &fakeIMDS{imdsConfig: tt.imds, id: imdsID}
				if f.redirectTo != "" {
					f.redirectTo = redirectURL + "/latest/meta-data/instance-id"
				}
				ep := f.start(t, "127.0.0.1:0")
				if tt.down {
					ep = deadEndpoint(t)
				}
				r := newLocalRunner(t, proxyURL, client)
				opts := Options{Endpoint: ep, Sources: tt.sources, Timeout: tt.timeout,
					testOnlyDMIPath: writeDMI(t, tt.dmi)}
				limit := opts.Timeout
				if limit == 0 {
					limit = DefaultTimeout
				}

				start := time.Now()
				got, err := Read(context.Background(), r, opts)
				took := time.Since(start)

				if took > limit+time.Second {
					t.Errorf("Read took %s, want within the %s timeout", took, limit)
				}
				if tt.anyErr {
					if err == nil || got != nil || !strings.Contains(err.Error(), tt.wantErr) {
						t.Errorf("Read = %+v, %v; want an error", got, err)
					}
				} else {
					assertIdentity(t, got, err, tt.want, tt.wantErr)
				}
				if tt.check != nil {
					tt.check(t, f, redirect)
				}
				assertNoCredentials(t, proxy, &f.recorder, redirect)
			})
		}
	}
}

// TestReadIPv6Loopback proves a bracketed IPv6 endpoint works (curl needs
// -g not to read the brackets as a glob), as with [fd00:ec2::254].
func TestReadIPv6Loopback(t *testing.T) {
	for _, client := range []string{"curl", "wget"} {
		t.Run(client, func(t *testing.T) {
			proxy, proxyURL := startRecorder(t)
			f := &fakeIMDS{id: imdsID, imdsConfig: imdsConfig{region: "us-east-1"}}
			ep := f.start(t, "[::1]:0")
			if !strings.HasPrefix(ep, "http://[::1]:") {
				t.Fatalf("endpoint = %q, want http://[::1]:port", ep)
			}
			r := newLocalRunner(t, proxyURL, client)
			got, err := Read(context.Background(), r,
				Options{Endpoint: ep + "/", testOnlyDMIPath: writeDMI(t, "")})
			assertIdentity(t, got, err, &Identity{imdsID, SourceIMDS, "us-east-1"}, "")
			assertNoCredentials(t, proxy, &f.recorder)
		})
	}
}

// TestReadNoUsableClient covers hosts where IMDS cannot be asked: no client
// at all, or a busybox wget that cannot send PUT, which must never be run
// for a request.
func TestReadNoUsableClient(t *testing.T) {
	busybox := "#!/bin/sh\nprintf '%s\\n' \"$*\" >>\"$0.log\"\n" +
		"echo 'BusyBox v1.36.1 multi-call binary.'\n" +
		"echo 'Usage: wget [-cqS] [--spider] [-O FILE] [-o LOGFILE] [--header STR]'\n" +
		"echo '[--post-data STR | --post-file FILE] [-Y on/off] [-T SEC] URL...'\n"
	tests := []struct {
		name, fakeWget, wantErr string
	}{
		{"NoClient", "", "neither curl nor wget"},
		{"BusyboxWget", busybox, "cannot send PUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxy, proxyURL := startRecorder(t)
			f := &fakeIMDS{id: imdsID}
			ep := f.start(t, "127.0.0.1:0")
			r := newLocalRunner(t, proxyURL)
			wget := filepath.Join(r.path, "wget")
			if tt.fakeWget != "" {
				if err := os.WriteFile(wget, []byte(tt.fakeWget), 0o755); err != nil {
					t.Fatal(err)
				}
			}

			got, err := Read(context.Background(), r,
				Options{Endpoint: ep, testOnlyDMIPath: writeDMI(t, "")})
			assertIdentity(t, got, err, nil, tt.wantErr)
			if n := len(f.all()); n != 0 {
				t.Errorf("metadata server saw %d request(s), want 0", n)
			}
			if tt.fakeWget != "" {
				log, _ := os.ReadFile(wget + ".log")
				if string(log) != "--help\n" {
					t.Errorf("busybox wget ran with %q, want only --help", log)
				}
			}
			assertNoCredentials(t, proxy)
		})
	}
}

// TestReadThenCheck is the identity gate as the caller uses it: the right
// ID passes, a wrong one is a MismatchError naming both.
func TestReadThenCheck(t *testing.T) {
	proxy, proxyURL := startRecorder(t)
	f := &fakeIMDS{id: imdsID, imdsConfig: imdsConfig{region: "us-east-1"}}
	ep := f.start(t, "127.0.0.1:0")
	r := newLocalRunner(t, proxyURL, "curl")
	id, err := Read(context.Background(), r,
		Options{Endpoint: ep, testOnlyDMIPath: writeDMI(t, "")})
	if err != nil {
		t.Fatalf("Read = %v, want an identity", err)
	}

	if err := Check(id, imdsID); err != nil {
		t.Errorf("Check(%v, %s) = %v, want nil", id, imdsID, err)
	}
	err = Check(id, dmiID)
	var me *MismatchError
	if !errors.As(err, &me) || *me != (MismatchError{imdsID, dmiID, SourceIMDS}) {
		t.Errorf("Check(%v, %s) = %v, want MismatchError{%s, %s, imds}",
			id, dmiID, err, imdsID, dmiID)
	}
	assertNoCredentials(t, proxy, &f.recorder)
}

func noRequests(t *testing.T, f *fakeIMDS, _ *recorder) {
	t.Helper()
	if got := f.all(); len(got) != 0 {
		t.Errorf("metadata server saw %v, want no request", got)
	}
}

// deadEndpoint returns a loopback URL nothing listens on: a port that was
// just bound and released.
func deadEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// assertIdentity checks Read's result against want, or against an error
// matching ErrUnavailable whose text holds wantErr.
func assertIdentity(t *testing.T, got *Identity, err error, want *Identity, wantErr string) {
	t.Helper()
	if wantErr != "" {
		// An answer that is not an instance ID is a hard error, so that
		// --verify-identity auto does not take it for "no metadata".
		hard := wantErr == "not an instance id"
		if err == nil || errors.Is(err, ErrUnavailable) == hard || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("Read = %v, %v; want an error holding %q (ErrUnavailable: %v)", got, err, wantErr, !hard)
		}
		if got != nil {
			t.Errorf("Read = %+v with an error, want nil", got)
		}
		return
	}
	if err != nil || got == nil || *got != *want {
		t.Errorf("Read = %+v, %v; want %+v, nil", got, err, want)
	}
}
