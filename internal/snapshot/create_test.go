package snapshot

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/orchestrate-dev/orchestrate/internal/ec2sim"
)

func TestDryRun(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(t *testing.T, srv *ec2sim.Server)
		wantCode string // "" means allowed
		wantHint string
		wantHTTP int
	}{
		{name: "Allowed"},
		{name: "Denied",
			setup: func(t *testing.T, srv *ec2sim.Server) {
				srv.Deny("CreateSnapshots")
			},
			wantCode: "UnauthorizedOperation", wantHTTP: 403,
			wantHint: "aws sts decode-authorization-message"},
		{name: "WrongCredentials",
			setup: func(t *testing.T, srv *ec2sim.Server) {
				setKeys(t, "AKIDUNKNOWNKEY0000", "nope")
			},
			wantCode: "AuthFailure", wantHTTP: 401, wantHint: "credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := startSim(t, testFixture(), ec2sim.Options{})
			r := planDB(t, c, map[string]string{TagRunID: "r1"})
			if tt.setup != nil {
				tt.setup(t, srv)
				// A fresh client picks up changed credentials.
				c = newClientLike(t, c)
			}

			err := c.DryRun(context.Background(), r)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("DryRun() = %v, want nil", err)
				}
			} else {
				var ae *APIError
				if !errors.As(err, &ae) || ae.Code != tt.wantCode ||
					ae.HTTPStatus != tt.wantHTTP ||
					!strings.Contains(ae.Hint, tt.wantHint) {
					t.Fatalf("DryRun() = %v, want *APIError %s (%d) hinting %q",
						err, tt.wantCode, tt.wantHTTP, tt.wantHint)
				}
			}
			if n := len(srv.Snapshots()); n != 0 {
				t.Errorf("DryRun() created %d snapshots, want 0", n)
			}
			calls := srv.Calls()
			if last := calls[len(calls)-1]; !last.DryRun ||
				last.Action != "CreateSnapshots" {
				t.Errorf("DryRun() last call = %+v, want a dry CreateSnapshots",
					last)
			}
		})
	}
}

// newClientLike returns a new Client with the settings of c, built from
// the current environment.
func newClientLike(t *testing.T, c *Client) *Client {
	t.Helper()
	n, err := New(context.Background(), Config{Region: c.DefaultRegion(),
		EndpointURL: c.endpoint})
	if err != nil {
		t.Fatalf("New() error: %v", err)
	}
	return n
}

func TestCreate(t *testing.T) {
	srv, c := startSim(t, testFixture(), ec2sim.Options{})
	tags := map[string]string{TagRunID: "run-1", TagHost: "db1",
		TagConsistency: ConsistencyApplication, "Name": "db1 data"}
	r := planDB(t, c, tags)

	snaps, err := c.Create(context.Background(), r)
	if err != nil {
		t.Fatalf("Create(%v) error: %v", r, err)
	}
	if got, want := volumeIDs(snaps), []string{volData, volLogs}; !reflect.DeepEqual(got, want) {
		t.Errorf("Create(%v) volumes = %v, want %v", r, got, want)
	}
	for _, s := range snaps {
		if s.State != "pending" || s.StartTime.IsZero() || s.ID == "" {
			t.Errorf("Create() snapshot = %+v, want pending with ID and start time", s)
		}
	}

	stored := srv.Snapshots()
	if len(stored) != len(snaps) {
		t.Fatalf("emulator holds %d snapshots, want %d", len(stored), len(snaps))
	}
	for _, s := range stored {
		if !reflect.DeepEqual(s.Tags, tags) || s.Description != "test" {
			t.Errorf("snapshot %s tags %v description %q, want %v and %q",
				s.ID, s.Tags, s.Description, tags, "test")
		}
	}
}

func TestCreateErrors(t *testing.T) {
	tests := []struct {
		name      string
		code      string // FailNext code
		n         int
		wantCalls int
		wantCode  string // "" means success
		wantHint  string
	}{
		{name: "ThrottledTwice", code: "RequestLimitExceeded", n: 2,
			wantCalls: 3},
		{name: "InternalError", code: "InternalError", n: 1, wantCalls: 2},
		{name: "ThrottledAlways", code: "RequestLimitExceeded", n: 10,
			wantCalls: 4, wantCode: "RequestLimitExceeded"},
		{name: "VolumeRate", code: "SnapshotCreationPerVolumeRateExceeded",
			n: 1, wantCalls: 1,
			wantCode: "SnapshotCreationPerVolumeRateExceeded",
			wantHint: "15 s"},
		{name: "Concurrent", code: "ConcurrentSnapshotLimitExceeded", n: 1,
			wantCalls: 1, wantCode: "ConcurrentSnapshotLimitExceeded",
			wantHint: "in progress"},
		{name: "Denied", code: "UnauthorizedOperation", n: 1, wantCalls: 1,
			wantCode: "UnauthorizedOperation",
			wantHint: "decode-authorization-message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := startSim(t, testFixture(), ec2sim.Options{})
			r := planDB(t, c, nil)
			srv.FailNext("CreateSnapshots", tt.n, tt.code)

			snaps, err := c.Create(context.Background(), r)
			if got := countCalls(srv, "CreateSnapshots"); got != tt.wantCalls {
				t.Errorf("Create() made %d calls, want %d", got, tt.wantCalls)
			}
			if tt.wantCode == "" {
				if err != nil || len(snaps) != 2 {
					t.Errorf("Create() = %d snapshots, %v; want 2, nil",
						len(snaps), err)
				}
				return
			}
			var ae *APIError
			if !errors.As(err, &ae) || ae.Code != tt.wantCode ||
				!strings.Contains(ae.Hint, tt.wantHint) {
				t.Errorf("Create() = %v, want *APIError %s hinting %q", err,
					tt.wantCode, tt.wantHint)
			}
			if errors.Is(err, ErrOutcomeUnknown) {
				t.Errorf("Create() = %v, want a known outcome", err)
			}
		})
	}
}

func TestCreateVolumeRateLimit(t *testing.T) {
	srv, c := startSim(t, testFixture(), ec2sim.Options{})
	srv.SetVolumeRateLimit(volData, time.Hour)
	r := planDB(t, c, nil)
	if _, err := c.Create(context.Background(), r); err != nil {
		t.Fatalf("first Create() error: %v", err)
	}

	_, err := c.Create(context.Background(), r)
	var ae *APIError
	if !errors.As(err, &ae) ||
		ae.Code != "SnapshotCreationPerVolumeRateExceeded" {
		t.Fatalf("second Create() = %v, want SnapshotCreationPerVolumeRateExceeded", err)
	}
	msg := err.Error()
	for _, want := range []string{"snapshot: CreateSnapshots: SnapshotCreationPerVolumeRateExceeded: ",
		ae.Message, "; hint: ", "15 seconds"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Create() error %q, want it to contain %q", msg, want)
		}
	}
}

func TestCreateOutcomeUnknownDeadline(t *testing.T) {
	srv, c := startSim(t, testFixture(), ec2sim.Options{})
	r := planDB(t, c, nil)
	srv.SetLatency("CreateSnapshots", time.Minute)

	ctx, cancel := context.WithTimeout(context.Background(),
		100*time.Millisecond)
	defer cancel()
	_, err := c.Create(ctx, r)
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Errorf("Create() past its deadline = %v, want ErrOutcomeUnknown", err)
	}
	if got := countCalls(srv, "CreateSnapshots"); got != 1 {
		t.Errorf("Create() made %d calls, want 1 (no retry)", got)
	}
}

func TestCreateOutcomeUnknownReset(t *testing.T) {
	_, c := startSim(t, testFixture(), ec2sim.Options{})
	r := planDB(t, c, nil)

	// A server that takes the request and drops the connection without
	// answering: EC2 may or may not have acted on it.
	var hits atomic.Int32
	drop := httptest.NewServer(http.HandlerFunc(
		func(w http.ResponseWriter, req *http.Request) {
			hits.Add(1)
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}))
	t.Cleanup(drop.Close)
	c.endpoint = drop.URL
	c.clients = map[string]*ec2.Client{}

	_, err := c.Create(context.Background(), r)
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Errorf("Create() with a dropped connection = %v, want ErrOutcomeUnknown", err)
	}
	if got := hits.Load(); got != 1 {
		t.Errorf("Create() sent %d requests, want 1 (no retry)", got)
	}
}

func TestCreateRefused(t *testing.T) {
	_, c := startSim(t, testFixture(), ec2sim.Options{})
	r := planDB(t, c, nil)

	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	c.endpoint = closed.URL
	c.clients = map[string]*ec2.Client{}

	_, err := c.Create(context.Background(), r)
	if err == nil || errors.Is(err, ErrOutcomeUnknown) {
		t.Errorf("Create() to a closed port = %v, want an error with a known outcome", err)
	}
}

func TestCreateVerify(t *testing.T) {
	srv, c := startSim(t, testFixture(), ec2sim.Options{})
	r := planDB(t, c, nil)

	// Want volData only but keep the exclusions of the plan for volData
	// and volLogs: EC2 snapshots volLogs too, one volume too many.
	r.Volumes = []string{volData}
	snaps, err := c.Create(context.Background(), r)
	var pe *PlanError
	if !errors.As(err, &pe) || pe.VolumeID != volLogs {
		t.Errorf("Create() = %v, want *PlanError naming %s", err, volLogs)
	}
	if len(snaps) != 2 || len(srv.Snapshots()) != 2 {
		t.Errorf("Create() returned %d snapshots, want the 2 created", len(snaps))
	}
}
