package ec2sim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// control sends one control API request and decodes the JSON answer into
// out (if non-nil), returning the status.
func control(t *testing.T, url, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s answer %s: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

func TestControlAPI(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "vol.img")
	if err := os.WriteFile(img, []byte("volume bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := testFixture()
	f.Volumes[3].BackingFile = img
	s, c := newServer(t, f, Options{SnapshotDir: filepath.Join(dir, "snaps")})
	url := start(t, s)

	faults := []struct {
		body       string
		wantStatus int
	}{
		{`{"fault":"fail_next","action":"CreateSnapshot","n":1,"code":"InternalError"}`, 200},
		{`{"fault":"deny","action":"DeleteSnapshot"}`, 200},
		{`{"fault":"latency","action":"DescribeVolumes","duration":"1ms"}`, 200},
		{`{"fault":"volume_rate_limit","volume_id":"` + volRoot + `","duration":"1h"}`, 200},
		{`{"fault":"latency","action":"DescribeVolumes","duration":"soon"}`, 400},
		{`{"fault":"explode"}`, 400},
		{`{"fault":"deny"}`, 400},
		{`{"fault":"deny","action":"X","extra":1}`, 400},
	}
	for _, ft := range faults {
		if got := control(t, url, "POST", "/_ec2sim/faults", ft.body, nil); got != ft.wantStatus {
			t.Errorf("POST /_ec2sim/faults %s = %d, want %d", ft.body, got, ft.wantStatus)
		}
	}

	_, err := c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(volWeb)})
	if got := apiCode(t, err); got != "InternalError" {
		t.Errorf("CreateSnapshot after fail_next fault code = %q, want InternalError", got)
	}
	out, err := c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(volWeb)})
	if err != nil {
		t.Fatalf("CreateSnapshot(%s) = %v", volWeb, err)
	}
	_, err = c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: out.SnapshotId})
	if got := apiCode(t, err); got != "UnauthorizedOperation" {
		t.Errorf("DeleteSnapshot after deny fault code = %q, want UnauthorizedOperation", got)
	}

	var calls []Call
	if got := control(t, url, "GET", "/_ec2sim/calls", "", &calls); got != 200 || len(calls) != 3 ||
		calls[0].Code != "InternalError" || calls[0].AccessKeyID != testAKID {
		t.Errorf("GET /_ec2sim/calls = %d %+v, want 200 and 3 calls, the first InternalError", got, calls)
	}
	var snaps []Snapshot
	if got := control(t, url, "GET", "/_ec2sim/snapshots", "", &snaps); got != 200 || len(snaps) != 2 ||
		snaps[1].ID != aws.ToString(out.SnapshotId) || snaps[1].ImagePath == "" {
		t.Errorf("GET /_ec2sim/snapshots = %d %+v, want 200 and the new snapshot with an image", got, snaps)
	}

	outside := filepath.Join(dir, "out.img")
	body, _ := json.Marshal(ExportRequest{SnapshotID: aws.ToString(out.SnapshotId), Path: outside})
	if got := control(t, url, "POST", "/_ec2sim/export", string(body), nil); got != 400 {
		t.Errorf("POST /_ec2sim/export outside the snapshot dir = %d, want 400", got)
	}
	if _, err := os.Stat(outside); err == nil {
		t.Errorf("export wrote %s outside the snapshot directory", outside)
	}

	dst := filepath.Join(dir, "snaps", "out.img")
	body, _ = json.Marshal(ExportRequest{SnapshotID: aws.ToString(out.SnapshotId), Path: dst})
	if got := control(t, url, "POST", "/_ec2sim/export", string(body), nil); got != 200 {
		t.Errorf("POST /_ec2sim/export = %d, want 200", got)
	}
	if b, err := os.ReadFile(dst); err != nil || !bytes.Equal(b, []byte("volume bytes")) {
		t.Errorf("exported image = %q, %v, want %q", b, err, "volume bytes")
	}

	var e map[string]string
	if got := control(t, url, "POST", "/_ec2sim/export", `{"snapshot_id":"snap-12345678","path":"`+dst+`"}`, &e); got != 404 || e["error"] == "" {
		t.Errorf("POST /_ec2sim/export unknown = %d %v, want 404 with an error", got, e)
	}
	if got := control(t, url, "GET", "/_ec2sim/nothing", "", nil); got != 404 {
		t.Errorf("GET /_ec2sim/nothing = %d, want 404", got)
	}
}

func TestApplyFault(t *testing.T) {
	s, _ := newServer(t, testFixture(), Options{})
	tests := []struct {
		f       FaultRequest
		wantErr bool
	}{
		{FaultRequest{Fault: "fail_snapshots_of", VolumeID: volData}, false},
		{FaultRequest{Fault: "detach_volume", VolumeID: volLogs}, false},
		{FaultRequest{Fault: "allow", Action: "CreateTags"}, false},
		{FaultRequest{Fault: "fail_next", Action: "CreateTags", N: 1}, true},
		{FaultRequest{Fault: "detach_volume"}, true},
	}
	for _, tt := range tests {
		err := s.ApplyFault(tt.f)
		if (err != nil) != tt.wantErr {
			t.Errorf("ApplyFault(%+v) = %v, want error %v", tt.f, err, tt.wantErr)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.faults.failVols[volData] || len(s.instance(instDB).BlockDeviceMappings) != 2 {
		t.Errorf("ApplyFault did not mark %s failing and detach %s", volData, volLogs)
	}
}
