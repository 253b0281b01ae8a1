package snapshot

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/orchestrate-dev/orchestrate/internal/ec2sim"
)

const (
	testRegion = "eu-west-1"
	testAKID   = "AKIDSNAPSHOTTEST01"
	testSecret = "snapshot/test+secret"

	instDB      = "i-0123456789abcdef0"
	instStopped = "i-0aaaaaaaaaaaaaaa1"
	instPending = "i-0bbbbbbbbbbbbbbb2"
	volRoot     = "vol-0000000000000000a"
	volData     = "vol-0000000000000000b"
	volLogs     = "vol-0000000000000000c"
	volSpare    = "vol-0000000000000000d"
	volOld      = "vol-0000000000000000e"
	unknownInst = "i-0fffffffffffffff9"
)

// testFixture is a running instance with a root, two data volumes and a
// detaching one, a stopped instance and a pending one.
func testFixture() *ec2sim.Fixture {
	return &ec2sim.Fixture{
		Region: testRegion,
		Credentials: []ec2sim.Credential{
			{AccessKeyID: testAKID, SecretAccessKey: testSecret},
		},
		Instances: []ec2sim.Instance{
			{ID: instDB, RootDeviceName: "/dev/xvda",
				BlockDeviceMappings: []ec2sim.Mapping{
					{DeviceName: "/dev/xvda", VolumeID: volRoot},
					{DeviceName: "/dev/sdf", VolumeID: volData},
					{DeviceName: "/dev/sdg", VolumeID: volLogs},
					{DeviceName: "/dev/sdh", VolumeID: volSpare,
						Status: "detaching"},
				}},
			{ID: instStopped, State: "stopped", RootDeviceName: "/dev/sda1",
				BlockDeviceMappings: []ec2sim.Mapping{
					{DeviceName: "/dev/sda1", VolumeID: volOld},
				}},
			{ID: instPending, State: "pending"},
		},
		Volumes: []ec2sim.Volume{
			{ID: volRoot}, {ID: volData}, {ID: volLogs}, {ID: volSpare},
			{ID: volOld},
		},
	}
}

// isolateAWS points the SDK at empty config files in a temporary
// directory, disables IMDS and clears every AWS variable that could
// reach the operator's real configuration or the network.
func isolateAWS(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
		"AWS_ENDPOINT_URL_EC2", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE",
		"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_SDK_UA_APP_ID",
		"AWS_EC2_METADATA_SERVICE_ENDPOINT"} {
		t.Setenv(k, "")
	}
}

// setKeys makes the environment hold the access key pair.
func setKeys(t *testing.T, akid, secret string) {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", akid)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
}

// startSim serves an emulator seeded with fx on loopback and returns it
// with a Client for it whose credentials are the fixture's.
func startSim(t *testing.T, fx *ec2sim.Fixture,
	opts ec2sim.Options) (*ec2sim.Server, *Client) {
	t.Helper()
	srv, err := ec2sim.New(fx, opts)
	if err != nil {
		t.Fatalf("ec2sim.New: %v", err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return srv, newTestClient(t, ts.URL)
}

// newTestClient isolates the environment and returns a Client with the
// fixture's keys, aimed at url.
func newTestClient(t *testing.T, url string) *Client {
	t.Helper()
	isolateAWS(t)
	setKeys(t, testAKID, testSecret)
	c, err := New(context.Background(), Config{Region: testRegion,
		EndpointURL: url, AppVersion: "0.0.0-test"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// countCalls returns how many calls of action srv received.
func countCalls(srv *ec2sim.Server, action string) int {
	n := 0
	for _, c := range srv.Calls() {
		if c.Action == action {
			n++
		}
	}
	return n
}

// planDB plans a snapshot of the data volumes of instDB.
func planDB(t *testing.T, c *Client, tags map[string]string) *Request {
	t.Helper()
	found, err := c.Describe(context.Background(), "", []string{instDB})
	if err != nil {
		t.Fatalf("Describe(%s) error: %v", instDB, err)
	}
	r, err := Plan(found[instDB], []string{volData, volLogs}, tags, "test")
	if err != nil {
		t.Fatalf("Plan(%s) error: %v", instDB, err)
	}
	return r
}

// snapshotIDs returns the IDs of snaps, sorted.
func snapshotIDs(snaps []Snapshot) []string {
	var ids []string
	for _, s := range snaps {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	return ids
}

// volumeIDs returns the volume IDs of snaps, sorted.
func volumeIDs(snaps []Snapshot) []string {
	var ids []string
	for _, s := range snaps {
		ids = append(ids, s.VolumeID)
	}
	slices.Sort(ids)
	return ids
}

// instanceID is the n-th well-formed instance ID.
func instanceID(n int) string { return fmt.Sprintf("i-%017x", n) }

// volumeID is the n-th well-formed volume ID.
func volumeID(n int) string { return fmt.Sprintf("vol-%017x", n) }

// recordUA wraps h to store the User-Agent of every request in ua.
func recordUA(h http.Handler, ua *atomic.Value) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ua.Store(r.Header.Get("User-Agent"))
		h.ServeHTTP(w, r)
	})
}
