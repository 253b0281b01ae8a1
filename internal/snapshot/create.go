package snapshot

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// Snapshot is an EBS snapshot as EC2 last reported it.
type Snapshot struct {
	ID       string
	VolumeID string
	State    string // "pending", "completed", "error", ...
	Progress string // e.g. "60%"; may be ""
	// StartTime is the point in time; the same for every snapshot of
	// one CreateSnapshots call.
	StartTime time.Time
	// StateMessage is EC2's reason for a snapshot in state error; only
	// Wait fills it in, and only when EC2 gives one.
	StateMessage string
}

// DefaultCreateTimeout bounds Create when its context has no deadline.
const DefaultCreateTimeout = 20 * time.Second

// DryRun sends r exactly as Create would, with DryRun set, so that EC2
// checks the credentials, the permissions (including tagging at
// creation), the instance, the exclusions and the tags without creating
// anything. It returns nil when EC2 answers DryRunOperation (the request
// would have succeeded), an *APIError for any other answer (with a hint
// to `aws sts decode-authorization-message` for UnauthorizedOperation)
// and a wrapped error when EC2 could not be reached. It is safe to
// retry.
func (c *Client) DryRun(ctx context.Context, r *Request) error {
	cl, region, err := c.ec2For(r.Region)
	if err != nil {
		return err
	}
	in := createInput(r)
	in.DryRun = aws.Bool(true)

	start := time.Now()
	_, err = cl.CreateSnapshots(ctx, in)
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "DryRunOperation" {
		err = nil
	}
	c.logCall("CreateSnapshots", region, start, err, "instance",
		r.InstanceID, "dry_run", true)
	if err != nil {
		return apiError("CreateSnapshots", err)
	}
	return nil
}

// Create sends CreateSnapshots for r and returns the new snapshots,
// pending. It is the one call made while filesystems are frozen, so it
// is bounded: by ctx, which should carry a deadline derived from the
// freeze budget (DefaultCreateTimeout applies otherwise), and by at most
// four attempts with at most 2s between them. Only throttling
// (RequestLimitExceeded) and server errors are retried.
//
// A failure after which EC2 may have created the snapshots (deadline,
// connection reset, unreadable response) is not retried and is marked
// with ErrOutcomeUnknown. An EC2 answer is returned as *APIError, with a
// hint for SnapshotCreationPerVolumeRateExceeded,
// ConcurrentSnapshotLimitExceeded, InvalidVolume.NotFound,
// InvalidInstanceID.NotFound and UnauthorizedOperation. When EC2
// snapshotted other volumes than r.Volumes, Create returns the
// snapshots and a *PlanError.
func (c *Client) Create(ctx context.Context, r *Request) ([]Snapshot,
	error) {
	cl, region, err := c.ec2For(r.Region)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("snapshot: CreateSnapshots for instance %s: %w", r.InstanceID, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCreateTimeout)
		defer cancel()
	}

	var unknown atomic.Bool
	start := time.Now()
	out, err := cl.CreateSnapshots(ctx, createInput(r),
		func(o *ec2.Options) {
			o.Retryer = c.create
			o.RetryMaxAttempts = 0
			o.APIOptions = append(o.APIOptions, trackOutcome(&unknown))
		})
	c.logCall("CreateSnapshots", region, start, err, "instance",
		r.InstanceID, "volumes", len(r.Volumes))
	if err != nil {
		// TODO(dedupe): after an unknown outcome, look the snapshots up by
		// the run's tag here instead of leaving it to the caller.
		if unknown.Load() {
			return nil, fmt.Errorf("snapshot: CreateSnapshots for instance %s: %w: %w", r.InstanceID, ErrOutcomeUnknown, err)
		}
		return nil, apiError("CreateSnapshots", err)
	}

	snaps := make([]Snapshot, 0, len(out.Snapshots))
	for _, s := range out.Snapshots {
		snaps = append(snaps, fromInfo(s))
	}
	return snaps, verify(r, snaps)
}

// createInput is the CreateSnapshots input for r.
func createInput(r *Request) *ec2.CreateSnapshotsInput {
	in := &ec2.CreateSnapshotsInput{
		InstanceSpecification: &types.InstanceSpecification{
			InstanceId:           aws.String(r.InstanceID),
			ExcludeBootVolume:    aws.Bool(r.ExcludeBoot),
			ExcludeDataVolumeIds: r.Exclude,
		},
		TagSpecifications: tagSpecs(r.Tags),
	}
	if r.Description != "" {
		in.Description = aws.String(r.Description)
	}
	return in
}

// tagSpecs puts tags on the new snapshots, sorted by key.
func tagSpecs(tags map[string]string) []types.TagSpecification {
	if len(tags) == 0 {
		return nil
	}
	return []types.TagSpecification{{
		ResourceType: types.ResourceTypeSnapshot,
		Tags:         sdkTags(tags),
	}}
}

// sdkTags converts tags, sorted by key.
func sdkTags(tags map[string]string) []types.Tag {
	keys := slices.Sorted(maps.Keys(tags))
	out := make([]types.Tag, 0, len(keys))
	for _, k := range keys {
		out = append(out, types.Tag{Key: aws.String(k),
			Value: aws.String(tags[k])})
	}
	return out
}

// trackOutcome adds a middleware, run once per attempt just before it is
// sent, that sets unknown when an attempt ends without an answer from
// EC2 after its connection was made.
func trackOutcome(unknown *atomic.Bool) func(*middleware.Stack) error {
	mw := middleware.FinalizeMiddlewareFunc("orchestrateTrackOutcome",
		func(ctx context.Context, in middleware.FinalizeInput,
			next middleware.FinalizeHandler) (middleware.FinalizeOutput,
			middleware.Metadata, error) {
			out, md, err := next.HandleFinalize(ctx, in)
			if err != nil && !answered(err) && !notSent(err) {
				unknown.Store(true)
			}
			return out, md, err
		})
	return func(s *middleware.Stack) error {
		return s.Finalize.Add(mw, middleware.After)
	}
}

// fromInfo converts a snapshot of a CreateSnapshots answer.
func fromInfo(s types.SnapshotInfo) Snapshot {
	return Snapshot{
		ID:        aws.ToString(s.SnapshotId),
		VolumeID:  aws.ToString(s.VolumeId),
		State:     string(s.State),
		Progress:  aws.ToString(s.Progress),
		StartTime: aws.ToTime(s.StartTime),
	}
}

// verify checks that snaps are one snapshot of each volume of r, no
// more and no fewer.
func verify(r *Request, snaps []Snapshot) error {
	got := map[string]int{}
	for _, s := range snaps {
		got[s.VolumeID]++
	}
	var missing, extra []string
	for _, v := range r.Volumes {
		if got[v] == 0 {
			missing = append(missing, v)
		}
	}
	for v, n := range got {
		if n > 1 || !slices.Contains(r.Volumes, v) {
			extra = append(extra, v)
		}
	}
	slices.Sort(extra)
	if len(missing) == 0 && len(extra) == 0 {
		return nil
	}

	e := &PlanError{InstanceID: r.InstanceID}
	var parts []string
	if len(missing) > 0 {
		e.VolumeID = missing[0]
		parts = append(parts, "no snapshot of "+strings.Join(missing, ","))
	}
	if len(extra) > 0 {
		if e.VolumeID == "" {
			e.VolumeID = extra[0]
		}
		parts = append(parts, "unwanted snapshot of "+strings.Join(extra, ","))
	}
	e.Msg = "CreateSnapshots took a different set: " + strings.Join(parts, "; ")
	return e
}
