package identify

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// canaries are secrets planted in the probe's environment and in the
// curl, wget and netrc configuration files of its HOME. None may reach a
// request.
var canaries = []string{
	"AKIACANARY0000000000", "canarySecretKey0000000000000000000000000",
	"canarySessionToken000", "canaryNetrcPassword", "canaryRcBearer",
}

// metadataAddrs are the real metadata addresses; a test command naming one
// fails the test instead of running.
var metadataAddrs = []string{"169.254.169.254", "fd00:ec2::254", "[fd00:ec2"}

// localRunner runs the probe with the local /bin/sh, with PATH limited to
// the tools a test chooses, a HOME full of poisoned client configuration,
// AWS credentials and proxies in its environment. Like sshexec it returns
// as soon as ctx ends, killing the whole process group it started.
type localRunner struct {
	path string // the only PATH directory
	env  []string
	ran  []string
}

func newLocalRunner(t *testing.T, proxy string, tools ...string) *localRunner {
	t.Helper()
	home := t.TempDir()
	files := map[string]string{
		".curlrc": "-u leak:canaryNetrcPassword\n-L\n" +
			"-H \"Authorization: Bearer canaryRcBearer\"\n--proxy " + proxy + "\n",
		".wgetrc": "header = Authorization: Bearer canaryRcBearer\n" +
			"use_proxy = on\nhttp_proxy = " + proxy + "\nmax_redirect = 5\n",
		".netrc": "machine 127.0.0.1 login leak password canaryNetrcPassword\n" +
			"machine ::1 login leak password canaryNetrcPassword\n" +
			"default login leak password canaryNetrcPassword\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(home, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r := &localRunner{path: toolDir(t, tools...)}
	r.env = []string{"PATH=" + r.path, "HOME=" + home, "CURL_HOME=" + home,
		"XDG_CONFIG_HOME=" + home, "LC_ALL=C",
		"AWS_ACCESS_KEY_ID=" + canaries[0], "AWS_SECRET_ACCESS_KEY=" + canaries[1],
		"AWS_SESSION_TOKEN=" + canaries[2],
		"http_proxy=" + proxy, "HTTP_PROXY=" + proxy, "https_proxy=" + proxy,
		"ALL_PROXY=" + proxy, "all_proxy=" + proxy}
	return r
}

// toolDir makes a directory holding links to dd and the named tools only.
func toolDir(t *testing.T, tools ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range append([]string{"dd"}, tools...) {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Skipf("%s not installed: %v", name, err)
		}
		if err := os.Symlink(p, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func (r *localRunner) Exec(ctx context.Context, cmd string, stdin io.Reader,
	stdout, stderr io.Writer) error {
	for _, a := range metadataAddrs {
		if strings.Contains(cmd, a) {
			return fmt.Errorf("test runner: refusing a command naming %s", a)
		}
	}
	r.ran = append(r.ran, cmd)
	c := exec.CommandContext(ctx, "/bin/sh", "-c", cmd)
	c.Env = r.env
	c.Stdin, c.Stdout, c.Stderr = stdin, stdout, stderr
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = 2 * time.Second
	return c.Run()
}

// request is one request a fake server saw.
type request struct {
	Method, Path string
	Header       http.Header
}

// recorder keeps every request a server saw.
type recorder struct {
	mu   sync.Mutex
	reqs []request
}

func (rec *recorder) add(r *http.Request) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.reqs = append(rec.reqs, request{r.Method, r.URL.RequestURI(), r.Header.Clone()})
}

func (rec *recorder) all() []request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]request(nil), rec.reqs...)
}

// startRecorder serves 200 "i-0badbadbadbadbad0" to anything, recording
// it: a stand-in for a proxy or a redirect target that must never be hit.
func startRecorder(t *testing.T) (*recorder, string) {
	t.Helper()
	rec := &recorder{}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		io.WriteString(w, "i-0badbadbadbadbad0")
	}))
	t.Cleanup(s.Close)
	return rec, s.URL
}

// imdsConfig says how a fakeIMDS misbehaves; the zero value behaves.
type imdsConfig struct {
	region     string // placement/region answer; "" means eu-west-1
	v1Only     bool   // no token endpoint; GETs need no token
	token      string // issued token; "" means a fresh valid one
	junkID     string // served as the instance ID when set
	redirectTo string // the instance ID answers with a redirect here
	hangToken  bool   // the token request never answers
	hangRegion bool   // the region request never answers
	noRegion   bool   // the region path is 404
	challenge  bool   // the instance ID is 401 with a Basic challenge
}

// fakeIMDS is an IMDSv2 service: PUT /latest/api/token needs a TTL header
// of 1 to 21600 s; a GET without a token it issued gets 401.
type fakeIMDS struct {
	imdsConfig
	recorder
	id string

	stop   chan struct{}
	mu     sync.Mutex
	issued map[string]bool
}

// start serves f on addr ("127.0.0.1:0" or "[::1]:0") and returns its URL.
func (f *fakeIMDS) start(t *testing.T, addr string) string {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("listen on %s: %v", addr, err)
	}
	f.stop, f.issued = make(chan struct{}), map[string]bool{}
	if f.region == "" {
		f.region = "eu-west-1"
	}
	s := httptest.NewUnstartedServer(f)
	s.Listener.Close()
	s.Listener = l
	s.Start()
	t.Cleanup(s.Close)
	t.Cleanup(func() { close(f.stop) }) // runs first: frees hung handlers
	return s.URL
}

func (f *fakeIMDS) hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-f.stop:
	}
}

func (f *fakeIMDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.add(r)
	if r.URL.Path == "/latest/api/token" {
		f.serveToken(w, r)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	f.mu.Lock()
	ok := f.issued[r.Header.Get("X-aws-ec2-metadata-token")]
	f.mu.Unlock()
	if !ok && !f.v1Only {
		http.Error(w, "", http.StatusUnauthorized)
		return
	}

	switch r.URL.Path {
	case "/latest/meta-data/instance-id":
		switch {
		case f.challenge:
			w.Header().Set("WWW-Authenticate", `Basic realm="imds"`)
			http.Error(w, "", http.StatusUnauthorized)
		case f.redirectTo != "":
			http.Redirect(w, r, f.redirectTo, http.StatusFound)
		case f.junkID != "":
			io.WriteString(w, f.junkID)
		default:
			io.WriteString(w, f.id)
		}
	case "/latest/meta-data/placement/region":
		switch {
		case f.hangRegion:
			f.hang(r)
		case f.noRegion:
			http.NotFound(w, r)
		default:
			io.WriteString(w, f.region)
		}
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeIMDS) serveToken(w http.ResponseWriter, r *http.Request) {
	switch {
	case f.v1Only:
		http.NotFound(w, r)
		return
	case r.Method != http.MethodPut:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	case f.hangToken:
		f.hang(r)
		return
	}
	ttl, err := strconv.Atoi(r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds"))
	if err != nil || ttl < 1 || ttl > 21600 {
		http.Error(w, "bad ttl", http.StatusBadRequest)
		return
	}
	tok := f.token
	if tok == "" {
		tok = "AQAEAFakeToken_" + strconv.FormatInt(time.Now().UnixNano(), 36) + "=="
	}
	f.mu.Lock()
	f.issued[tok] = true
	f.mu.Unlock()
	io.WriteString(w, tok)
}

// count returns how many requests f saw for method and path.
func (f *fakeIMDS) count(method, path string) int {
	n := 0
	for _, r := range f.all() {
		if r.Method == method && r.Path == path {
			n++
		}
	}
	return n
}

// assertNoCredentials fails t if any request carried an Authorization
// header or any canary, or if the proxy saw anything at all.
func assertNoCredentials(t *testing.T, proxy *recorder, servers ...*recorder) {
	t.Helper()
	if got := proxy.all(); len(got) != 0 {
		t.Errorf("proxy saw %d request(s), want 0: %v", len(got), got)
	}
	for _, s := range servers {
		for _, r := range s.all() {
			for _, h := range []string{"Authorization", "Proxy-Authorization", "Cookie"} {
				if v := r.Header.Get(h); v != "" {
					t.Errorf("%s %s carried %s: %q, want none", r.Method, r.Path, h, v)
				}
			}
			dump := r.Path + fmt.Sprint(r.Header)
			for _, c := range canaries {
				if strings.Contains(dump, c) {
					t.Errorf("%s %s carried secret %q", r.Method, r.Path, c)
				}
			}
		}
	}
}

// writeDMI writes a fake asset tag file and returns its path; body ""
// returns a path that does not exist.
func writeDMI(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "board_asset_tag")
	if body == "" {
		return p
	}
	if err := os.WriteFile(p, []byte(body), 0o444); err != nil {
		t.Fatal(err)
	}
	return p
}
