package e2e

// This file proves that no credential of the operator reaches a host: a
// whole job runs against an in-process SSH server that records everything
// the client sends and everything the host answers, with marker values in
// every place the AWS SDK and ssh-agent take credentials from. It needs no
// root: the host's privileged tools are fakes (testdata/credentials/bin).

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/orchestrate-dev/orchestrate/internal/ec2sim"
	"github.com/orchestrate-dev/orchestrate/internal/run"
)

func TestCredentialsNeverReachHost(t *testing.T) {
	bin := world.bin
	if bin == "" {
		var err error
		if bin, err = buildOrchestrate(t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	marks := newCredMarkers()
	checkLeakFinder(t, marks)

	host := newFakeHost(t)
	priv, signer := newClientKey(t)
	srv := newRecordingServer(t, host, signer.PublicKey(), "ops")
	ka := startKeyAgent(t, priv)
	emu, url, tokens := credEmulator(t, marks, host)
	// A slow call keeps the connection up long enough for keepalives.
	emu.SetLatency("CreateSnapshots", time.Second)

	hostsFile := writeHostsFile(t, fmt.Sprintf("%s instance=%s mounts=%s volumes=%s",
		srv.addr(), host.instance, strings.Join(host.mounts, ","),
		strings.Join(host.vols, ",")))
	res := runWithMarkers(t, bin, marks, ka.sock, "--hosts", hostsFile,
		"--endpoint-url", url, "--region", testRegion,
		"--known-hosts", srv.knownHosts, "--user", "ops",
		"--output", "json", "--wait", "--freeze-timeout", "10s",
		"--keepalive", "200ms", "--connect-timeout", "10s")

	if host.partial != "" {
		checkPrepareRefused(t, res)
	} else {
		checkJobSucceeded(t, res, emu, host)
	}
	checkSignedLocally(t, emu, marks, tokens.seen())
	if n := ka.signs(); n == 0 {
		t.Errorf("ssh-agent signatures = 0, want >= 1: the login did not use the agent, so its forwarding is not tested")
	}
	rec := srv.rec.snapshot()
	rec.log(t, host)
	checkNotVacuous(t, rec, host.partial == "")
	checkRequestTypes(t, rec)
	checkAgentNotReachable(t, rec)
	for _, leak := range findLeaks(rec, marks) {
		t.Errorf("credential reached the host: %s", leak)
	}
	if host.partial == "" {
		return
	}
	why := "only the no-leak checks ran (the job stopped at prepare): " + host.partial
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: a skip is a failure here)", why)
	}
	t.Skip(why)
}

// credMarkers are the secret values placed where credentials come from.
// The env ones are what the emulator accepts; the file ones must be
// ignored but must not leak either.
type credMarkers struct {
	envKey, envSecret, envToken  string
	profile                      string
	fileKey, fileSecret, fileTok string
	cfgKey, cfgSecret, cfgTok    string
}

func newCredMarkers() credMarkers {
	key := func() string { return "AKIA" + randFrom("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16) }
	secret := func() string { return randFrom(alnum, 40) }
	token := func() string { return "IQoJ" + randFrom(alnum, 120) }
	return credMarkers{
		envKey: key(), envSecret: secret(), envToken: token(),
		profile: "ops-" + randFrom("abcdefghijklmnopqrstuvwxyz", 12),
		fileKey: key(), fileSecret: secret(), fileTok: token(),
		cfgKey: key(), cfgSecret: secret(), cfgTok: token(),
	}
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randFrom(alphabet string, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// named returns every marker with the name of where it was put.
func (m credMarkers) named() map[string]string {
	return map[string]string{
		"AWS_ACCESS_KEY_ID": m.envKey, "AWS_SECRET_ACCESS_KEY": m.envSecret,
		"AWS_SESSION_TOKEN": m.envToken, "AWS_PROFILE": m.profile,
		"credentials-file aws_access_key_id":     m.fileKey,
		"credentials-file aws_secret_access_key": m.fileSecret,
		"credentials-file aws_session_token":     m.fileTok,
		"config-file aws_access_key_id":          m.cfgKey,
		"config-file aws_secret_access_key":      m.cfgSecret,
		"config-file aws_session_token":          m.cfgTok,
	}
}

// runWithMarkers runs the binary with the markers in its environment and
// AWS files, and SSH_AUTH_SOCK at sock. No identity file is given, so the
// login key comes from the agent.
func runWithMarkers(t *testing.T, bin string, m credMarkers, sock string, args ...string) result {
	t.Helper()
	home := t.TempDir()
	creds := filepath.Join(home, "aws-credentials")
	conf := filepath.Join(home, "aws-config")
	writeFile(t, creds, fmt.Sprintf("[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\naws_session_token = %s\n",
		m.profile, m.fileKey, m.fileSecret, m.fileTok))
	writeFile(t, conf, fmt.Sprintf("[profile %s]\nregion = %s\naws_access_key_id = %s\naws_secret_access_key = %s\naws_session_token = %s\n",
		m.profile, testRegion, m.cfgKey, m.cfgSecret, m.cfgTok))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"run"}, args...)...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"AWS_ACCESS_KEY_ID=" + m.envKey, "AWS_SECRET_ACCESS_KEY=" + m.envSecret,
		"AWS_SESSION_TOKEN=" + m.envToken, "AWS_PROFILE=" + m.profile,
		"AWS_SHARED_CREDENTIALS_FILE=" + creds, "AWS_CONFIG_FILE=" + conf,
		"AWS_EC2_METADATA_DISABLED=true", "SSH_AUTH_SOCK=" + sock,
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + noMetadata,
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run orchestrate: %v", err)
	}
	t.Logf("orchestrate run\nexit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	return result{out.String(), errb.String(), code}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// checkJobSucceeded asserts the whole job ran: exit 0, the host's report,
// its snapshots in the emulator and the agent's fsfreeze calls in order.
func checkJobSucceeded(t *testing.T, res result, emu *ec2sim.Server, h *fakeHost) {
	t.Helper()
	if res.code != 0 {
		t.Errorf("exit code = %d, want 0", res.code)
	}
	rep := parseReport(t, res.stdout)
	if rep.Status != run.StatusSucceeded || len(rep.Hosts) != 1 {
		t.Fatalf("report status %q with %d hosts, want succeeded with 1", rep.Status, len(rep.Hosts))
	}
	hr := rep.Hosts[0]
	if hr.Status != run.StatusSucceeded || hr.Consistency != "application" || len(hr.Snapshots) != len(h.vols) {
		t.Errorf("host = %s %q with %d snapshots (%s), want succeeded application with %d",
			hr.Status, hr.Consistency, len(hr.Snapshots), hr.Error, len(h.vols))
	}
	var got []string
	for _, s := range emu.Snapshots() {
		if s.Tags["orchestrate:run-id"] == rep.RunID {
			got = append(got, s.VolumeID)
		}
	}
	slices.Sort(got)
	if want := slices.Sorted(slices.Values(h.vols)); !slices.Equal(got, want) {
		t.Errorf("emulator snapshots of run %s are of volumes %v, want %v", rep.RunID, got, want)
	}

	log, _ := os.ReadFile(h.log)
	want := fmt.Sprintf("sudo\nfsfreeze -f %s\nfsfreeze -f %s\nfsfreeze -u %s\nfsfreeze -u %s\n",
		h.mounts[0], h.mounts[1], h.mounts[1], h.mounts[0])
	if string(log) != want {
		t.Errorf("fake tools log:\n%s\nwant:\n%s", log, want)
	}
}

// checkPrepareRefused is the partial run: the agent could not write /run.
func checkPrepareRefused(t *testing.T, res result) {
	t.Helper()
	rep := parseReport(t, res.stdout)
	if res.code != 1 || len(rep.Hosts) != 1 || rep.Hosts[0].FailedStep != run.StepPrepare {
		t.Errorf("exit %d, report %+v, want exit 1 failed at prepare (no writable /run)", res.code, rep)
	}
}

// checkSignedLocally proves the credentials were used where they belong:
// every EC2 call was signed with the env key and sent the env token.
func checkSignedLocally(t *testing.T, emu *ec2sim.Server, m credMarkers, tokens []string) {
	t.Helper()
	calls := emu.Calls()
	if len(calls) == 0 {
		t.Fatal("the emulator got no EC2 call")
	}
	for _, c := range calls {
		if c.AccessKeyID != m.envKey || (c.Code != "" && c.Code != "DryRunOperation") {
			t.Errorf("call %s signed by %q answered %q, want signed by AWS_ACCESS_KEY_ID %q and accepted",
				c.Action, c.AccessKeyID, c.Code, m.envKey)
		}
	}
	for i, tok := range tokens {
		if tok != m.envToken {
			t.Errorf("call #%d X-Amz-Security-Token = %.20q…, want AWS_SESSION_TOKEN", i, tok)
		}
	}
	if len(tokens) != len(calls) {
		t.Errorf("requests with a token = %d, want %d (every call)", len(tokens), len(calls))
	}
}

// checkNotVacuous fails unless the recorder saw the job: the agent's exec,
// its protocol both ways and the raw stream. full asks for a whole job.
func checkNotVacuous(t *testing.T, rec recording, full bool) {
	t.Helper()
	if !slices.ContainsFunc(rec.execs, func(e string) bool { return strings.Contains(e, "orchestrate-agent") }) {
		t.Fatalf("recorded exec commands = %d (%.60q), want the agent's: the recorder saw nothing to check",
			len(rec.execs), rec.execs)
	}
	in, out := rec.data("stdin"), rec.data("stdout")
	if !bytes.Contains(out, []byte("HELLO")) || rec.rawIn == 0 || rec.rawOut == 0 {
		t.Fatalf("recorded agent output %q, raw bytes in/out %d/%d, want HELLO and traffic both ways",
			out, rec.rawIn, rec.rawOut)
	}
	if full && (!bytes.Contains(in, []byte("FREEZE")) || !bytes.Contains(out, []byte("FROZE"))) {
		t.Errorf("recorded stdin %q, stdout %q: want FREEZE in and FROZE out", in, out)
	}
	if full && !slices.ContainsFunc(rec.events, func(e event) bool { return e.kind == "global-request" }) {
		t.Errorf("recorded no global request during a 1s call with --keepalive 200ms: the keepalive path went unchecked")
	}
}

// checkRequestTypes allows one session channel per command, exec in it,
// and keepalives: nothing that carries environment, a terminal, X11 or
// the agent.
func checkRequestTypes(t *testing.T, rec recording) {
	t.Helper()
	forbidden := []string{"env", "pty-req", "x11-req", "auth-agent-req@openssh.com",
		"subsystem", "shell"}
	for _, e := range rec.events {
		switch e.kind {
		case "channel-open":
			if e.typ != "session" {
				t.Errorf("client opened a %q channel, want only session", e.typ)
			}
		case "global-request":
			if e.typ != "keepalive@openssh.com" {
				t.Errorf("client sent global request %q, want only keepalive@openssh.com", e.typ)
			}
		case "channel-request":
			if slices.Contains(forbidden, e.typ) {
				t.Errorf("client sent channel request %q (payload %q), want none of %v",
					e.typ, e.data, forbidden)
			} else if e.typ != "exec" && e.typ != "signal" {
				t.Errorf("client sent channel request %q, want only exec (or signal)", e.typ)
			}
		case "auth":
			if e.typ != "none" && e.typ != "publickey" {
				t.Errorf("client tried auth method %q, want only publickey", e.typ)
			}
		}
	}
}

// checkAgentNotReachable asserts that the host, asking the client for an
// agent channel as sshd does for a forwarded agent, was refused.
func checkAgentNotReachable(t *testing.T, rec recording) {
	t.Helper()
	if rec.agentProbe == "" {
		t.Errorf("the agent channel probe did not run")
	} else if !strings.HasPrefix(rec.agentProbe, "rejected") {
		t.Errorf("host opening auth-agent@openssh.com: %s, want rejected", rec.agentProbe)
	}
}

// leakForms is every string whose presence in the traffic would mean 8 or
// more characters of m got there: raw, hex, or base64 (9-byte windows
// cover every alignment of an encoded run of 11 or more).
func leakForms(m string) []string {
	var forms []string
	for i := 0; i+8 <= len(m); i++ {
		s := []byte(m[i : i+8])
		forms = append(forms, string(s), hex.EncodeToString(s),
			strings.ToUpper(hex.EncodeToString(s)))
	}
	for i := 0; i+9 <= len(m); i++ {
		s := []byte(m[i : i+9])
		forms = append(forms, base64.StdEncoding.EncodeToString(s),
			base64.URLEncoding.EncodeToString(s))
	}
	return forms
}

// findLeaks searches every recorded item for every form of every marker.
func findLeaks(rec recording, m credMarkers) []string {
	var leaks []string
	for name, v := range m.named() {
		forms := leakForms(v)
		for _, item := range rec.items() {
			for _, f := range forms {
				if bytes.Contains(item.data, []byte(f)) {
					leaks = append(leaks, fmt.Sprintf("%s (as %q) in %s", name, f, item.where))
					break
				}
			}
		}
	}
	slices.Sort(leaks)
	return leaks
}

// checkLeakFinder proves findLeaks sees a marker in each form it claims.
func checkLeakFinder(t *testing.T, m credMarkers) {
	t.Helper()
	v := m.envSecret
	for _, planted := range []string{v, v[5:13], hex.EncodeToString([]byte(v[3:20])),
		base64.StdEncoding.EncodeToString([]byte("x" + v[7:19])),
		base64.RawURLEncoding.EncodeToString([]byte("ab" + v))} {
		rec := recording{events: []event{{kind: "stdin", data: []byte("<" + planted + ">")}}}
		if len(findLeaks(rec, m)) == 0 {
			t.Fatalf("findLeaks misses planted %q: the leak check is broken", planted)
		}
	}
}

// fakeHost is the "instance": a work directory, two directories playing
// mount points, the fake tools, and an optional private /run.
type fakeHost struct {
	work, tools, runDir, log string
	mounts, vols             []string
	instance, rootVol        string
	ns                       string // FAKE_NS for the fake sudo: "", "root" or "user"
	partial                  string // why only part of the job can run
}

func newFakeHost(t *testing.T) *fakeHost {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := &fakeHost{work: filepath.Join(dir, "home"), tools: filepath.Join(dir, "bin"),
		runDir: filepath.Join(dir, "run"), log: filepath.Join(dir, "tools.log"),
		instance: "i-" + randHex(17), rootVol: "vol-" + randHex(17)}
	for i := range 2 {
		h.mounts = append(h.mounts, filepath.Join(dir, fmt.Sprintf("mnt%d", i+1)))
		h.vols = append(h.vols, "vol-"+randHex(17))
	}
	for _, d := range append([]string{h.work, h.tools, h.runDir}, h.mounts...) {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h.installTools(t)
	h.pickRun(t)
	return h
}

func (h *fakeHost) installTools(t *testing.T) {
	t.Helper()
	src := filepath.Join("testdata", "credentials", "bin")
	ents, err := os.ReadDir(src)
	if err != nil || len(ents) == 0 {
		t.Fatalf("fake tools in %s: %v (%d files)", src, err, len(ents))
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err == nil {
			err = os.WriteFile(filepath.Join(h.tools, e.Name()), b, 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// pickRun gives the agent a private, writable /run: a mount namespace (as
// root) or a user and mount namespace (otherwise). As root without
// namespaces the agent uses the real /run, with device numbers no loop
// device has, so its locks meet no other test's.
func (h *fakeHost) pickRun(t *testing.T) {
	t.Helper()
	tries := [][]string{{"--user", "--map-root-user", "--mount"}}
	if os.Geteuid() == 0 {
		tries = [][]string{{"--mount"}}
	}
	for _, flags := range tries {
		args := append(flags, "--", "/bin/sh", "-c", `mount --bind "$0" /run`, h.runDir)
		out, err := exec.Command("unshare", args...).CombinedOutput()
		if err == nil {
			h.ns = map[bool]string{true: "root", false: "user"}[os.Geteuid() == 0]
			return
		}
		t.Logf("no private /run with unshare %v: %v %s", flags, err, out)
	}
	if os.Geteuid() != 0 {
		h.partial = "not root and no user namespaces, so the agent cannot write /run/orchestrate"
	}
}

// env is the environment of a command the host runs: set by the host, not
// by anything the client sent.
func (h *fakeHost) env() []string {
	var mounts []string
	for i, m := range h.mounts {
		mounts = append(mounts, fmt.Sprintf("7:%d %s", 1048000+i, m))
	}
	return []string{"PATH=" + h.tools + ":/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + h.work, "FAKE_LOG=" + h.log, "FAKE_NS=" + h.ns,
		"FAKE_RUN=" + h.runDir, "FAKE_MOUNTS=" + strings.Join(mounts, "\n")}
}

// leftovers lists the live processes in one of pgids that carry this
// host's environment, so a recycled process group is never touched.
func (h *fakeHost) leftovers(pgids []int) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		i := bytes.LastIndexByte(stat, ')')
		if err != nil || i < 0 {
			continue
		}
		// After "pid (comm)": state, ppid, pgrp.
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 3 {
			continue
		}
		pg, _ := strconv.Atoi(f[2])
		env, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if slices.Contains(pgids, pg) &&
			slices.Contains(strings.Split(string(env), "\x00"), "FAKE_LOG="+h.log) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// newClientKey makes the operator's login key: an ed25519 key the test's
// ssh-agent holds and the host accepts.
func newClientKey(t *testing.T) (ed25519.PrivateKey, ssh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return priv, s
}

// credEmulator is an emulator holding the host's instance and volumes that
// accepts only the env key, behind a handler noting each session token.
func credEmulator(t *testing.T, m credMarkers, h *fakeHost) (*ec2sim.Server, string, *tokenLog) {
	t.Helper()
	az := testRegion + "a"
	inst := ec2sim.Instance{ID: h.instance, RootDeviceName: "/dev/xvda", AvailabilityZone: az,
		BlockDeviceMappings: []ec2sim.Mapping{{DeviceName: "/dev/xvda", VolumeID: h.rootVol}}}
	vols := []ec2sim.Volume{{ID: h.rootVol, AvailabilityZone: az}}
	for i, v := range h.vols {
		inst.BlockDeviceMappings = append(inst.BlockDeviceMappings,
			ec2sim.Mapping{DeviceName: fmt.Sprintf("/dev/sd%c", 'f'+i), VolumeID: v})
		vols = append(vols, ec2sim.Volume{ID: v, SizeGiB: 1, AvailabilityZone: az})
	}
	fx := &ec2sim.Fixture{Region: testRegion, Instances: []ec2sim.Instance{inst}, Volumes: vols,
		Credentials: []ec2sim.Credential{{AccessKeyID: m.envKey, SecretAccessKey: m.envSecret}}}
	srv, err := ec2sim.New(fx, ec2sim.Options{SnapshotDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	tl := &tokenLog{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tl.add(r.Header.Get("X-Amz-Security-Token"))
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return srv, ts.URL, tl
}

type tokenLog struct {
	mu     sync.Mutex
	tokens []string
}

func (l *tokenLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tokens = append(l.tokens, s)
}

func (l *tokenLog) seen() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.tokens)
}

// keyAgent is an in-memory ssh-agent on a unix socket that counts the
// signatures it makes.
type keyAgent struct {
	agent.Agent
	sock string
	mu   sync.Mutex
	n    int
}

func startKeyAgent(t *testing.T, key ed25519.PrivateKey) *keyAgent {
	t.Helper()
	kr := agent.NewKeyring()
	if err := kr.Add(agent.AddedKey{PrivateKey: key}); err != nil {
		t.Fatal(err)
	}
	ka := &keyAgent{Agent: kr, sock: filepath.Join(t.TempDir(), "agent.sock")}
	ln, err := net.Listen("unix", ka.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { agent.ServeAgent(ka, c); c.Close() }()
		}
	}()
	return ka
}

// Sign signs with the keyring and counts.
func (a *keyAgent) Sign(key ssh.PublicKey, data []byte) (*ssh.Signature, error) {
	a.mu.Lock()
	a.n++
	a.mu.Unlock()
	return a.Agent.Sign(key, data)
}

func (a *keyAgent) signs() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

// event is one thing the client sent (or the host answered), as recorded.
type event struct {
	kind string // auth, global-request, channel-open, channel-request, stdin, stdout, stderr
	typ  string
	data []byte
}

// recorder collects everything that crosses the connection.
type recorder struct {
	mu         sync.Mutex
	events     []event
	execs      []string
	raw        [2]bytes.Buffer // client to host, host to client
	agentProbe string
}

func (r *recorder) add(kind, typ string, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, event{kind, typ, bytes.Clone(data)})
}

// recording is a copy of what the recorder holds.
type recording struct {
	events        []event
	execs         []string
	rawIn, rawOut int
	raw           [2][]byte
	agentProbe    string
}

func (r *recorder) snapshot() recording {
	r.mu.Lock()
	defer r.mu.Unlock()
	return recording{events: slices.Clone(r.events), execs: slices.Clone(r.execs),
		rawIn: r.raw[0].Len(), rawOut: r.raw[1].Len(),
		raw:        [2][]byte{bytes.Clone(r.raw[0].Bytes()), bytes.Clone(r.raw[1].Bytes())},
		agentProbe: r.agentProbe}
}

// log summarises what was recorded, so a reader sees what was checked.
func (rec recording) log(t *testing.T, h *fakeHost) {
	t.Helper()
	kinds := map[string][]string{}
	for _, e := range rec.events {
		if e.kind != "stdin" && e.kind != "stdout" && e.kind != "stderr" {
			kinds[e.kind] = append(kinds[e.kind], e.typ)
		}
	}
	var cmdLen int
	if len(rec.execs) > 0 {
		cmdLen = len(rec.execs[0])
	}
	t.Logf("recorded: %v; %d exec (%d bytes); stdin %q; stdout %q; stderr %q; "+
		"raw bytes in/out %d/%d; agent probe %s; private /run: %q",
		kinds, len(rec.execs), cmdLen, rec.data("stdin"), rec.data("stdout"),
		rec.data("stderr"), rec.rawIn, rec.rawOut, rec.agentProbe, h.ns)
}

// data joins the recorded channel data of one kind (stdin, stdout, stderr).
func (rec recording) data(kind string) []byte {
	var b []byte
	for _, e := range rec.events {
		if e.kind == kind {
			b = append(b, e.data...)
		}
	}
	return b
}

type item struct {
	where string
	data  []byte
}

// items is every searchable thing: each request's type and payload, each
// stream joined, and the raw TCP bytes (the cleartext banner included).
func (rec recording) items() []item {
	var out []item
	for i, e := range rec.events {
		if e.kind == "stdin" || e.kind == "stdout" || e.kind == "stderr" {
			continue
		}
		out = append(out, item{fmt.Sprintf("%s %q (#%d)", e.kind, e.typ, i),
			append([]byte(e.typ+"\x00"), e.data...)})
	}
	for _, k := range []string{"stdin", "stdout", "stderr"} {
		out = append(out, item{"channel data " + k, rec.data(k)})
	}
	return append(out, item{"raw bytes client to host", rec.raw[0]},
		item{"raw bytes host to client", rec.raw[1]})
}

// tapConn records the raw bytes of a connection in both directions.
type tapConn struct {
	net.Conn
	rec *recorder
}

func (c tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.rec.mu.Lock()
	c.rec.raw[0].Write(p[:n])
	c.rec.mu.Unlock()
	return n, err
}

func (c tapConn) Write(p []byte) (int, error) {
	c.rec.mu.Lock()
	c.rec.raw[1].Write(p)
	c.rec.mu.Unlock()
	return c.Conn.Write(p)
}

// tapWriter records what the host writes to the client on one stream.
type tapWriter struct {
	kind string
	rec  *recorder
	w    io.Writer
}

func (w tapWriter) Write(p []byte) (int, error) {
	w.rec.add(w.kind, "", p)
	return w.w.Write(p)
}

// tapReader records what the client sends on a channel.
type tapReader struct {
	rec *recorder
	r   io.Reader
}

func (r tapReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.rec.add("stdin", "", p[:n])
	}
	return n, err
}

// recordingServer is an SSH server on 127.0.0.1 that records everything
// and runs each exec'd command on the fake host with /bin/sh -c.
type recordingServer struct {
	t          *testing.T
	ln         net.Listener
	cfg        *ssh.ServerConfig
	host       *fakeHost
	rec        recorder
	knownHosts string

	mu    sync.Mutex
	conns []net.Conn
	pgids []int
	wg    sync.WaitGroup
}

func newRecordingServer(t *testing.T, h *fakeHost, allowed ssh.PublicKey, user string) *recordingServer {
	t.Helper()
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	s := &recordingServer{t: t, host: h}
	s.cfg = &ssh.ServerConfig{
		PublicKeyCallback: func(md ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if md.User() == user && bytes.Equal(k.Marshal(), allowed.Marshal()) {
				return nil, nil
			}
			return nil, fmt.Errorf("key %s for %q not allowed", ssh.FingerprintSHA256(k), md.User())
		},
		AuthLogCallback: func(md ssh.ConnMetadata, method string, err error) {
			s.rec.add("auth", method, []byte(md.User()+"\x00"+string(md.ClientVersion())))
		},
	}
	s.cfg.AddHostKey(hostKey)
	if s.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	s.knownHosts = filepath.Join(t.TempDir(), "known_hosts")
	writeFile(t, s.knownHosts, knownhosts.Line([]string{knownhosts.Normalize(s.addr())},
		hostKey.PublicKey())+"\n")
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.stop)
	return s
}

func (s *recordingServer) addr() string { return s.ln.Addr().String() }

// stop closes everything and kills what is left of the commands it ran
// (the agent's timer and watchdog sleep on): only processes in one of their
// process groups whose environment names this host's log.
func (s *recordingServer) stop() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	pgids := slices.Clone(s.pgids)
	s.mu.Unlock()
	for _, pid := range s.host.leftovers(pgids) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	s.wg.Wait()
}

func (s *recordingServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handleConn(tapConn{c, &s.rec})
		}()
	}
}

func (s *recordingServer) handleConn(c net.Conn) {
	defer c.Close()
	sc, chans, reqs, err := ssh.NewServerConn(c, s.cfg)
	if err != nil {
		s.t.Logf("recording server: handshake: %v", err)
		return
	}
	defer sc.Close()
	go func() {
		for r := range reqs {
			s.rec.add("global-request", r.Type, r.Payload)
			if r.WantReply {
				r.Reply(false, nil) // as OpenSSH answers keepalive@openssh.com
			}
		}
	}()
	for nc := range chans {
		s.rec.add("channel-open", nc.ChannelType(), nc.ExtraData())
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.Prohibited, "only session channels here")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go s.handleSession(sc, ch, creqs)
	}
}

// handleSession runs the first exec request and refuses every other
// request, recording all of them.
func (s *recordingServer) handleSession(sc *ssh.ServerConn, ch ssh.Channel, reqs <-chan *ssh.Request) {
	started := false
	for r := range reqs {
		s.rec.add("channel-request", r.Type, r.Payload)
		var exe struct{ Command string }
		if r.Type != "exec" || started || ssh.Unmarshal(r.Payload, &exe) != nil {
			if r.WantReply {
				r.Reply(false, nil)
			}
			continue
		}
		started = true
		s.rec.mu.Lock()
		s.rec.execs = append(s.rec.execs, exe.Command)
		s.rec.mu.Unlock()
		s.probeAgent(sc)
		r.Reply(true, nil)
		go s.runExec(ch, exe.Command)
	}
}

// probeAgent does what sshd does for a forwarded agent: it asks the client
// for an auth-agent@openssh.com channel. A client that forwards no agent
// rejects it.
func (s *recordingServer) probeAgent(sc *ssh.ServerConn) {
	s.rec.mu.Lock()
	done := s.rec.agentProbe != ""
	s.rec.mu.Unlock()
	if done {
		return
	}
	res := make(chan string, 1)
	go func() {
		ch, reqs, err := sc.OpenChannel("auth-agent@openssh.com", nil)
		var oce *ssh.OpenChannelError
		switch {
		case errors.As(err, &oce):
			res <- "rejected: " + oce.Error()
		case err != nil:
			res <- "inconclusive: " + err.Error()
		default:
			go ssh.DiscardRequests(reqs)
			ch.Close()
			res <- "accepted: the client forwards an agent"
		}
	}()
	var got string
	select {
	case got = <-res:
	case <-time.After(5 * time.Second):
		got = "inconclusive: no answer in 5s"
	}
	s.rec.mu.Lock()
	s.rec.agentProbe = got
	s.rec.mu.Unlock()
}

// runExec runs command with /bin/sh -c in the host's work directory, with
// the host's environment, its input and output wired to ch, and sends its
// exit status.
func (s *recordingServer) runExec(ch ssh.Channel, command string) {
	defer ch.Close()
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Dir, cmd.Env = s.host.work, s.host.env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout = tapWriter{"stdout", &s.rec, ch}
	cmd.Stderr = tapWriter{"stderr", &s.rec, ch.Stderr()}
	cmd.WaitDelay = 2 * time.Second
	stdin, err := cmd.StdinPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		fmt.Fprintf(ch.Stderr(), "recording server: start: %v\n", err)
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{127}))
		return
	}
	s.mu.Lock()
	s.pgids = append(s.pgids, cmd.Process.Pid)
	s.mu.Unlock()

	// Not waited for: a Read on the channel ends when the channel closes.
	go func() {
		io.Copy(stdin, tapReader{&s.rec, ch})
		stdin.Close()
	}()
	status := 0
	if err := cmd.Wait(); err != nil {
		status = 255
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() >= 0 {
			status = ee.ExitCode()
		}
	}
	ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status)}))
}
