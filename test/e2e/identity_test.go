package e2e

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/orchestrate-dev/orchestrate/internal/run"
)

// imdsMock is an IMDSv2 server on loopback that reports instanceID. The
// test hosts are this machine, so the host's probe reaches it directly.
func imdsMock(t *testing.T, instanceID string) (string, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" &&
			r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") != "":
			w.Write([]byte("e2e-token-AAAA"))
		case r.Method == http.MethodGet && r.Header.Get("X-aws-ec2-metadata-token") != "e2e-token-AAAA":
			w.WriteHeader(http.StatusUnauthorized)
		case r.URL.Path == "/latest/meta-data/instance-id":
			w.Write([]byte(instanceID))
		case r.URL.Path == "/latest/meta-data/placement/region":
			w.Write([]byte(testRegion))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &hits
}

func TestIdentityMatchesThenFreezes(t *testing.T) {
	begin(t)
	_, url := emulator(t)
	h := world.hosts[0]
	imds, hits := imdsMock(t, h.instance)
	hostsFile := writeHostsFile(t, hostLine(h, h.addr))

	res := orchestrate(t, url, "--hosts", hostsFile, "--output", "json",
		"--verify-identity", "require", "--metadata-endpoint", imds)
	if res.code != 0 {
		t.Fatalf("exit code = %d, want 0", res.code)
	}
	hr := parseReport(t, res.stdout).Hosts[0]
	if !stepOK(hr, run.StepIdentify) || hr.Status != run.StatusSucceeded {
		t.Errorf("host = %s, steps %+v, want identify ok and succeeded", hr.Status, hr.Steps)
	}
	if hits.Load() == 0 {
		t.Errorf("the metadata mock saw no request: the identity was not read from it")
	}

}

func TestIdentityMismatchStopsBeforeFreeze(t *testing.T) {
	begin(t)
	srv, url := emulator(t)
	h, other := world.hosts[0], world.hosts[1]
	imds, _ := imdsMock(t, other.instance) // the host answers as another instance
	hostsFile := writeHostsFile(t, hostLine(h, h.addr))

	res := orchestrate(t, url, "--hosts", hostsFile, "--output", "json",
		"--metadata-endpoint", imds)
	if res.code != 1 {
		t.Errorf("exit code = %d, want 1", res.code)
	}
	hr := parseReport(t, res.stdout).Hosts[0]
	if hr.FailedStep != run.StepIdentify || !strings.Contains(hr.Error, other.instance) ||
		!strings.Contains(hr.Error, h.instance) {
		t.Errorf("host failed at %q with %q, want identify naming %s and %s",
			hr.FailedStep, hr.Error, other.instance, h.instance)
	}
	assertNeverFrozen(t, srv, hr)
}

func TestIdentityRequiredButUnreadable(t *testing.T) {
	begin(t)
	srv, url := emulator(t)
	h := world.hosts[0]
	hostsFile := writeHostsFile(t, hostLine(h, h.addr))

	// The default e2e endpoint is a closed loopback port: nothing to read.
	res := orchestrate(t, url, "--hosts", hostsFile, "--output", "json",
		"--verify-identity", "require")
	if res.code != 1 {
		t.Errorf("exit code = %d, want 1", res.code)
	}
	hr := parseReport(t, res.stdout).Hosts[0]
	if hr.FailedStep != run.StepIdentify {
		t.Errorf("host failed at %q (%s), want identify", hr.FailedStep, hr.Error)
	}
	assertNeverFrozen(t, srv, hr)

	// With auto, the same host goes on, and the report says why unchecked.
	res = orchestrate(t, url, "--hosts", hostsFile, "--output", "json")
	hr = parseReport(t, res.stdout).Hosts[0]
	if res.code != 0 || len(hr.Warnings) == 0 || !strings.Contains(hr.Warnings[0], "not checked") {
		t.Errorf("auto: exit %d warnings %q, want 0 and a warning that identity was not checked",
			res.code, hr.Warnings)
	}
}
