package snapshot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// WaitOptions pace Wait. Zero fields take the defaults: MinDelay 1s,
// MaxDelay 15s, NotFoundGrace 30s.
type WaitOptions struct {
	// MinDelay is the first interval between polls; it doubles after
	// each poll up to MaxDelay.
	MinDelay, MaxDelay time.Duration
	// NotFoundGrace is how long after Wait starts a snapshot may be
	// unknown to EC2 (eventual consistency) before it is an error.
	NotFoundGrace time.Duration
}

func (o WaitOptions) withDefaults() WaitOptions {
	if o.MinDelay <= 0 {
		o.MinDelay = time.Second
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 15 * time.Second
	}
	o.MaxDelay = max(o.MaxDelay, o.MinDelay)
	if o.NotFoundGrace <= 0 {
		o.NotFoundGrace = 30 * time.Second
	}
	return o
}

// Wait polls DescribeSnapshots (the caller's own snapshots ids, in
// region) until every one is completed, and returns their final states
// in the order of ids. progress, if not nil, is called with the latest
// states after each successful poll. It fails with *SnapshotError as
// soon as one snapshot is in state error, with *APIError when a poll
// fails (InvalidSnapshot.NotFound only after opts.NotFoundGrace), and
// with ctx's error, together with the latest states, when ctx ends.
// States recoverable and recovering are waited through.
func (c *Client) Wait(ctx context.Context, region string, ids []string,
	opts WaitOptions, progress func([]Snapshot)) ([]Snapshot, error) {
	cl, region, err := c.ec2For(region)
	if err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	ids = dedupe(ids)
	if len(ids) == 0 {
		return nil, nil
	}

	start := time.Now()
	delay := opts.MinDelay
	var last []Snapshot
	for {
		snaps, err := c.poll(ctx, cl, region, ids)
		switch {
		case err == nil:
			last = snaps
			if progress != nil {
				progress(snaps)
			}
			if done, err := settled(snaps); done || err != nil {
				return snaps, err
			}
		case isNotFound(err) && time.Since(start) < opts.NotFoundGrace:
			c.log.Debug("snapshots not visible yet", "region", region,
				"err", err)
		default:
			return last, err
		}

		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return last, fmt.Errorf("snapshot: wait for %d snapshots: %w", len(ids), ctx.Err())
		case <-t.C:
		}
		delay = min(delay*2, opts.MaxDelay)
	}
}

// poll describes ids once, returning them in the order of ids. A
// snapshot that is missing from the answer is reported as
// InvalidSnapshot.NotFound.
func (c *Client) poll(ctx context.Context, cl *ec2.Client, region string,
	ids []string) ([]Snapshot, error) {
	byID := make(map[string]Snapshot, len(ids))
	for _, part := range chunks(ids, describeBatch) {
		start := time.Now()
		out, err := cl.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{
			OwnerIds: []string{"self"}, SnapshotIds: part,
		})
		c.logCall("DescribeSnapshots", region, start, err, "ids", len(part))
		if err != nil {
			return nil, apiError("DescribeSnapshots", err)
		}
		for _, s := range out.Snapshots {
			sn := fromSDK(s)
			byID[sn.ID] = sn
		}
	}

	snaps := make([]Snapshot, 0, len(ids))
	for _, id := range ids {
		s, ok := byID[id]
		if !ok {
			return nil, &APIError{Action: "DescribeSnapshots",
				Code:    "InvalidSnapshot.NotFound",
				Message: "The snapshot '" + id + "' is not among the caller's snapshots.",
				Hint:    hintFor("DescribeSnapshots", "InvalidSnapshot.NotFound")}
		}
		snaps = append(snaps, s)
	}
	return snaps, nil
}

// settled reports whether every snapshot is completed, or returns the
// first in state error.
func settled(snaps []Snapshot) (bool, error) {
	done := true
	for _, s := range snaps {
		switch s.State {
		case string(types.SnapshotStateError):
			return true, &SnapshotError{SnapshotID: s.ID,
				VolumeID: s.VolumeID, State: s.State, Message: s.StateMessage}
		case string(types.SnapshotStateCompleted):
		default:
			done = false
		}
	}
	return done, nil
}

// isNotFound reports whether err is EC2's InvalidSnapshot.NotFound.
func isNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Code == "InvalidSnapshot.NotFound"
}

// fromSDK converts a snapshot of a DescribeSnapshots answer.
func fromSDK(s types.Snapshot) Snapshot {
	return Snapshot{
		ID:           aws.ToString(s.SnapshotId),
		VolumeID:     aws.ToString(s.VolumeId),
		State:        string(s.State),
		Progress:     aws.ToString(s.Progress),
		StartTime:    aws.ToTime(s.StartTime),
		StateMessage: aws.ToString(s.StateMessage),
	}
}

// Tag adds tags to the snapshots ids in region with CreateTags, e.g. to
// mark a set crash-consistent after the fact. Existing values of the
// same keys are replaced. It fails with *APIError when EC2 refuses; a
// retry is safe.
func (c *Client) Tag(ctx context.Context, region string, ids []string,
	tags map[string]string) error {
	cl, region, err := c.ec2For(region)
	if err != nil {
		return err
	}
	if len(tags) == 0 {
		return nil
	}
	for _, part := range chunks(dedupe(ids), describeBatch) {
		start := time.Now()
		_, err := cl.CreateTags(ctx, &ec2.CreateTagsInput{
			Resources: part, Tags: sdkTags(tags),
		})
		c.logCall("CreateTags", region, start, err, "ids", len(part))
		if err != nil {
			return apiError("CreateTags", err)
		}
	}
	return nil
}

// FindByTag lists the caller's snapshots (owner self) in region that
// carry tag key=value, following every page, in EC2's order. It fails
// with *APIError when EC2 refuses.
func (c *Client) FindByTag(ctx context.Context, region, key,
	value string) ([]Snapshot, error) {
	cl, region, err := c.ec2For(region)
	if err != nil {
		return nil, err
	}
	in := &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"},
		Filters: []types.Filter{{
			Name: aws.String("tag:" + key), Values: []string{value},
		}},
	}
	pages := ec2.NewDescribeSnapshotsPaginator(cl, in,
		func(o *ec2.DescribeSnapshotsPaginatorOptions) {
			o.Limit = describeBatch
			o.StopOnDuplicateToken = true
		})

	var snaps []Snapshot
	for pages.HasMorePages() {
		start := time.Now()
		out, err := pages.NextPage(ctx)
		c.logCall("DescribeSnapshots", region, start, err, "tag", key)
		if err != nil {
			return nil, apiError("DescribeSnapshots", err)
		}
		for _, s := range out.Snapshots {
			snaps = append(snaps, fromSDK(s))
		}
	}
	return snaps, nil
}
