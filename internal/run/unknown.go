package run

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/orchestrate-dev/orchestrate/internal/snapshot"
)

// CreateSnapshots takes no idempotency token, so after a call whose outcome
// is unknown (a timeout, a connection reset) a blind retry could make a
// second set. Instead the run's snapshots are looked up by their
// orchestrate:run-id tag first.

// resolveUnknown handles a Create whose outcome is unknown, while the
// filesystems are still frozen. A complete set found now was created
// while frozen (after the call was sent, before this look-up), so it is
// as good as a normal answer. With nothing found and time left in the
// freeze budget, the call is retried once. Otherwise the error stands and
// lookAfterThaw reports what turns up later.
func (hr *hostRun) resolveUnknown(ctx context.Context, first error) ([]snapshot.Snapshot, error) {
	if ctx.Err() != nil {
		return nil, first // out of time or interrupted: lookAfterThaw looks
	}
	found, err := hr.findOwnSnapshots(ctx)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w; looking the run's snapshots up failed too: %v", first, err)
	case len(found) == len(hr.plan.Volumes):
		hr.log.Warn("create outcome was unknown; found the run's snapshots", "snapshots", len(found))
		return found, nil
	case len(found) > 0:
		return found, fmt.Errorf("%w; only %d of %d snapshots found", first,
			len(found), len(hr.plan.Volumes))
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < time.Second {
		return nil, first
	}
	hr.log.Warn("create outcome was unknown and no snapshot exists; retrying once")
	hr.rep.Warnings = append(hr.rep.Warnings, "CreateSnapshots outcome unknown "+
		"and no snapshot found by tag; retried once: "+first.Error())
	return hr.cfg.EC2.Create(ctx, hr.plan)
}

// lookAfterThaw runs after the thaw when the create call's outcome stayed
// unknown or was retried: any snapshot of this run and host that is not in
// kept was made at a moment nobody can pin down, so it is recorded as such
// and tagged crash-consistent.
func (hr *hostRun) lookAfterThaw(kept []snapshot.Snapshot) []snapshot.Snapshot {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	found, err := hr.findOwnSnapshots(ctx)
	if err != nil {
		hr.rep.Warnings = append(hr.rep.Warnings,
			"could not look the run's snapshots up after the thaw: "+err.Error())
		return nil
	}
	var extra []snapshot.Snapshot
	for _, s := range found {
		if !slices.ContainsFunc(kept, func(k snapshot.Snapshot) bool { return k.ID == s.ID }) {
			extra = append(extra, s)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	ids := snapshotIDs(extra)
	hr.rep.Warnings = append(hr.rep.Warnings, fmt.Sprintf("found %d snapshot(s) "+
		"of this run made at an unknown moment, tagged %s=%s: %v",
		len(extra), snapshot.TagConsistency, snapshot.ConsistencyCrash, ids))
	if err := hr.cfg.EC2.Tag(ctx, hr.region, ids, map[string]string{
		snapshot.TagConsistency: snapshot.ConsistencyCrash}); err != nil {
		hr.rep.Warnings = append(hr.rep.Warnings, "tagging them failed: "+err.Error())
	}
	return extra
}

// findOwnSnapshots returns this run's snapshots of this host's planned
// volumes.
func (hr *hostRun) findOwnSnapshots(ctx context.Context) ([]snapshot.Snapshot, error) {
	all, err := hr.cfg.EC2.FindByTag(ctx, hr.region, snapshot.TagRunID, hr.cfg.RunID)
	if err != nil {
		return nil, err
	}
	var own []snapshot.Snapshot
	for _, s := range all {
		if slices.Contains(hr.plan.Volumes, s.VolumeID) {
			own = append(own, s)
		}
	}
	return own, nil
}

func outcomeUnknown(err error) bool {
	return errors.Is(err, snapshot.ErrOutcomeUnknown)
}
