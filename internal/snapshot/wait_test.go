package snapshot

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/orchestrate-dev/orchestrate/internal/ec2sim"
)

// fastWait polls often, so tests finish quickly.
var fastWait = WaitOptions{MinDelay: 5 * time.Millisecond,
	MaxDelay: 20 * time.Millisecond}

// createDB snapshots the data volumes of instDB with tags.
func createDB(t *testing.T, c *Client, tags map[string]string) []Snapshot {
	t.Helper()
	snaps, err := c.Create(context.Background(), planDB(t, c, tags))
	if err != nil {
		t.Fatalf("Create() error: %v", err)
	}
	return snaps
}

func TestWaitCompletes(t *testing.T) {
	_, c := startSim(t, testFixture(),
		ec2sim.Options{CompleteAfter: 50 * time.Millisecond})
	snaps := createDB(t, c, nil)
	ids := []string{snaps[1].ID, snaps[0].ID}

	polls := 0
	got, err := c.Wait(context.Background(), "", ids, fastWait,
		func(s []Snapshot) { polls++ })
	if err != nil {
		t.Fatalf("Wait(%v) error: %v", ids, err)
	}
	if polls == 0 {
		t.Errorf("Wait(%v) never called progress", ids)
	}
	var gotIDs []string
	for _, s := range got {
		gotIDs = append(gotIDs, s.ID)
		if s.State != "completed" || s.Progress != "100%" {
			t.Errorf("Wait() snapshot %s = %s %s, want completed 100%%",
				s.ID, s.State, s.Progress)
		}
	}
	if !reflect.DeepEqual(gotIDs, ids) {
		t.Errorf("Wait(%v) returned %v, want them in order", ids, gotIDs)
	}
}

func TestWaitSnapshotError(t *testing.T) {
	srv, c := startSim(t, testFixture(), ec2sim.Options{})
	srv.FailSnapshotsOf(volLogs)
	snaps := createDB(t, c, nil)
	var failed string
	for _, s := range snaps {
		if s.VolumeID == volLogs {
			failed = s.ID
		}
	}

	_, err := c.Wait(context.Background(), "", snapshotIDs(snaps), fastWait,
		nil)
	var se *SnapshotError
	if !errors.As(err, &se) || se.SnapshotID != failed ||
		se.VolumeID != volLogs || se.State != "error" {
		t.Errorf("Wait() = %v, want *SnapshotError for %s of %s", err,
			failed, volLogs)
	}
}

func TestWaitNotFound(t *testing.T) {
	srv, c := startSim(t, testFixture(), ec2sim.Options{})
	id := "snap-0123456789abcdef0"
	opts := fastWait
	opts.NotFoundGrace = time.Nanosecond

	_, err := c.Wait(context.Background(), "", []string{id}, opts, nil)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "InvalidSnapshot.NotFound" {
		t.Errorf("Wait(%s) = %v, want *APIError InvalidSnapshot.NotFound",
			id, err)
	}
	if got := countCalls(srv, "DescribeSnapshots"); got != 1 {
		t.Errorf("Wait(%s) made %d calls, want 1", id, got)
	}
}

func TestWaitNotFoundGrace(t *testing.T) {
	srv, c := startSim(t, testFixture(), ec2sim.Options{})
	id := "snap-0123456789abcdef0"

	// Within the grace a missing snapshot is polled again, until the
	// context ends.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	polls := 0
	opts := fastWait
	opts.NotFoundGrace = time.Hour
	go func() {
		for ctx.Err() == nil && countCalls(srv, "DescribeSnapshots") < 3 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := c.Wait(ctx, "", []string{id}, opts,
		func([]Snapshot) { polls++ })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Wait(%s) = %v, want context.Canceled", id, err)
	}
	if got := countCalls(srv, "DescribeSnapshots"); got < 3 {
		t.Errorf("Wait(%s) made %d calls, want at least 3", id, got)
	}
	if polls != 0 {
		t.Errorf("Wait(%s) called progress %d times, want 0", id, polls)
	}
}

func TestWaitContext(t *testing.T) {
	_, c := startSim(t, testFixture(),
		ec2sim.Options{CompleteAfter: time.Hour})
	snaps := createDB(t, c, nil)

	ctx, cancel := context.WithTimeout(context.Background(),
		50*time.Millisecond)
	defer cancel()
	last, err := c.Wait(ctx, "", snapshotIDs(snaps), fastWait, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait() = %v, want context.DeadlineExceeded", err)
	}
	if len(last) != 2 || last[0].State != "pending" {
		t.Errorf("Wait() latest = %+v, want 2 pending snapshots", last)
	}
}

func TestTagAndFindByTag(t *testing.T) {
	srv, c := startSim(t, testFixture(), ec2sim.Options{})
	run1 := createDB(t, c, map[string]string{TagRunID: "run-1"})
	run2 := createDB(t, c, map[string]string{TagRunID: "run-2"})

	crash := map[string]string{TagConsistency: ConsistencyCrash}
	if err := c.Tag(context.Background(), "", snapshotIDs(run2),
		crash); err != nil {
		t.Fatalf("Tag() error: %v", err)
	}
	for _, s := range srv.Snapshots() {
		want := ""
		if s.Tags[TagRunID] == "run-2" {
			want = ConsistencyCrash
		}
		if got := s.Tags[TagConsistency]; got != want {
			t.Errorf("snapshot %s %s = %q, want %q", s.ID, TagConsistency,
				got, want)
		}
	}

	tests := []struct {
		key, value string
		want       []Snapshot
	}{
		{key: TagRunID, value: "run-1", want: run1},
		{key: TagRunID, value: "run-2", want: run2},
		{key: TagConsistency, value: ConsistencyCrash, want: run2},
		{key: TagRunID, value: "run-3"},
	}
	for _, tt := range tests {
		got, err := c.FindByTag(context.Background(), "", tt.key, tt.value)
		if err != nil {
			t.Fatalf("FindByTag(%s, %s) error: %v", tt.key, tt.value, err)
		}
		if g, w := snapshotIDs(got), snapshotIDs(tt.want); !reflect.DeepEqual(g, w) {
			t.Errorf("FindByTag(%s, %s) = %v, want %v", tt.key, tt.value, g, w)
		}
	}
}

func TestFindByTagPages(t *testing.T) {
	const n = 1200
	fx := testFixture()
	for i := range n {
		fx.Snapshots = append(fx.Snapshots, ec2sim.Snapshot{
			ID: fmt.Sprintf("snap-%017x", i), VolumeID: volData,
			Tags: map[string]string{TagRunID: "old"},
		})
	}
	fx.Snapshots = append(fx.Snapshots, ec2sim.Snapshot{
		ID: "snap-0ffffffffffffffff", VolumeID: volData, OwnerID: "999999999999",
		Tags: map[string]string{TagRunID: "old"},
	})
	srv, c := startSim(t, fx, ec2sim.Options{})

	got, err := c.FindByTag(context.Background(), "", TagRunID, "old")
	if err != nil {
		t.Fatalf("FindByTag() error: %v", err)
	}
	if len(got) != n {
		t.Errorf("FindByTag() found %d snapshots, want %d (own only)", len(got), n)
	}
	// 1201 snapshots at 1000 a page is two pages; a retry of one under a
	// loaded machine may add a call, so only fewer than two is wrong.
	if calls := countCalls(srv, "DescribeSnapshots"); calls < 2 {
		t.Errorf("FindByTag() made %d calls, want at least 2 pages", calls)
	}
}
