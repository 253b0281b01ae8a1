package ec2sim

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// snapRec is a stored snapshot. For created snapshots (created is true)
// the state is derived from the start time when read.
type snapRec struct {
	Snapshot
	seq     int
	created bool
	fail    bool   // ends in error
	az      string // of the volume, for CreateSnapshots responses
}

// view returns r's snapshot as of now. A created snapshot is pending,
// its progress rising with time, until CompleteAfter has passed since
// its start; then it is completed, or in error if its volume was marked
// with FailSnapshotsOf. Call with s.mu held.
func (s *Server) view(r *snapRec, now time.Time) Snapshot {
	sn := r.Snapshot
	if !r.created {
		return sn
	}
	done := s.opts.CompleteAfter
	elapsed := now.Sub(sn.StartTime)
	switch {
	case done > 0 && elapsed < done:
		pct := max(0, int(elapsed*100/done))
		sn.State, sn.Progress = "pending", fmt.Sprintf("%d%%", pct)
	case r.fail:
		sn.State, sn.Progress = "error", "0%"
	default:
		sn.State, sn.Progress = "completed", "100%"
	}
	return sn
}

// planned is one snapshot a create call is about to take: a copy of the
// volume made under the lock, and the snapshot's tags.
type planned struct {
	vol  Volume
	tags []xmlTag
}

// createSnapshot handles CreateSnapshot: one snapshot of VolumeId, which
// need not be attached.
func (s *Server) createSnapshot(c *request) (any, *apiError) {
	volID, e := c.p.required("VolumeId")
	if e != nil {
		return nil, e
	}
	if !validID(volID, "vol-") {
		return nil, errf("InvalidVolumeID.Malformed",
			"Invalid id: %q (expecting \"vol-...\")", volID)
	}
	desc, tags, e := createCommon(c.p)
	if e != nil {
		return nil, e
	}
	if e := s.authorizeTagOnCreate(tags); e != nil {
		return nil, e
	}

	s.mu.Lock()
	v := s.volume(volID)
	var plan []planned
	if v != nil {
		plan = []planned{{vol: copyVolume(v), tags: tags}}
	}
	s.mu.Unlock()
	if v == nil {
		return nil, errf("InvalidVolume.NotFound",
			"The volume '%s' does not exist.", volID)
	}
	if c.dryRun {
		return nil, dryRunOK()
	}

	snaps, e := s.take(c, "", plan, desc)
	if e != nil {
		return nil, e
	}
	return toSnapshotXML(snaps[0].Snapshot), nil
}

// createCommon decodes what both create calls share: Description and
// TagSpecification.N.
func createCommon(p params) (string, []xmlTag, *apiError) {
	desc := p.str("Description")
	if len(desc) > 255 {
		return "", nil, errf("InvalidParameterValue",
			"Value for parameter Description is invalid. It must be at most 255 characters.")
	}
	tags, e := p.snapshotTagSpecs()
	return desc, tags, e
}

// authorizeTagOnCreate refuses a create call that tags its snapshots
// (TagSpecification) when CreateTags is denied, as IAM does: tagging on
// create needs ec2:CreateTags as well as the create action, DryRun calls
// included. A call without tags needs no CreateTags.
func (s *Server) authorizeTagOnCreate(tags []xmlTag) *apiError {
	if len(tags) == 0 || !s.denied("CreateTags") {
		return nil
	}
	return &apiError{Code: "UnauthorizedOperation", Message: deniedMessage()}
}

// maxExclusions is the most data volumes one CreateSnapshots may exclude.
const maxExclusions = 40

// createSnapshotsAction handles CreateSnapshots: one snapshot of every
// attached volume of the instance, minus the exclusions, at one time.
func (s *Server) createSnapshotsAction(c *request) (any, *apiError) {
	const spec = "InstanceSpecification."
	instID, e := c.p.required(spec + "InstanceId")
	if e != nil {
		return nil, e
	}
	if !validID(instID, "i-") {
		return nil, errf("InvalidInstanceID.Malformed",
			"Invalid id: %q", instID)
	}
	noBoot, e := c.p.boolean(spec + "ExcludeBootVolume")
	if e != nil {
		return nil, e
	}
	excl := c.p.list(spec + "ExcludeDataVolumeId")
	if len(excl) > maxExclusions {
		return nil, errf("InvalidParameterValue",
			"Value for parameter ExcludeDataVolumeIds is invalid. At most %d volume IDs can be excluded.", maxExclusions)
	}
	for _, id := range excl {
		if !validID(id, "vol-") {
			return nil, errf("InvalidVolumeID.Malformed",
				"Invalid id: %q (expecting \"vol-...\")", id)
		}
	}
	copyTags := c.p.str("CopyTagsFromSource")
	if copyTags != "" && copyTags != "volume" {
		return nil, errf("InvalidParameterValue",
			"Value (%s) for parameter CopyTagsFromSource is invalid. Valid value: volume", copyTags)
	}
	desc, tags, e := createCommon(c.p)
	if e != nil {
		return nil, e
	}
	if e := s.authorizeTagOnCreate(tags); e != nil {
		return nil, e
	}

	s.mu.Lock()
	plan, e := s.planInstance(instID, noBoot, excl, copyTags != "", tags)
	s.mu.Unlock()
	if e != nil {
		return nil, e
	}
	if c.dryRun {
		return nil, dryRunOK()
	}

	snaps, e := s.take(c, instID, plan, desc)
	if e != nil {
		return nil, e
	}
	resp := createSnapshotsResponse{}
	for _, r := range snaps {
		resp.Snapshots = append(resp.Snapshots, toSnapshotInfoXML(r))
	}
	return resp, nil
}

// planInstance lists the snapshots CreateSnapshots takes of instID. Call
// with s.mu held.
func (s *Server) planInstance(instID string, noBoot bool, excl []string,
	copyTags bool, tags []xmlTag) ([]planned, *apiError) {
	in := s.instance(instID)
	if in == nil {
		return nil, errf("InvalidInstanceID.NotFound",
			"The instance ID '%s' does not exist", instID)
	}

	var root string
	attached := map[string]bool{}
	for _, m := range in.BlockDeviceMappings {
		attached[m.VolumeID] = true
		if m.DeviceName == in.RootDeviceName {
			root = m.VolumeID
		}
	}
	for _, id := range excl {
		if id == root {
			return nil, errf("InvalidParameterValue",
				"The root volume '%s' of instance '%s' cannot be excluded with ExcludeDataVolumeIds. Use ExcludeBootVolume instead.", id, instID)
		}
		if !attached[id] {
			return nil, errf("InvalidParameterValue",
				"The volume '%s' is not attached to instance '%s'.", id, instID)
		}
	}

	var plan []planned
	for _, m := range in.BlockDeviceMappings {
		skip := m.Status != "attached" || slices.Contains(excl, m.VolumeID) ||
			(noBoot && m.VolumeID == root)
		v := s.volume(m.VolumeID)
		if skip || v == nil {
			continue
		}
		p := planned{vol: copyVolume(v)}
		if copyTags {
			for _, k := range sortedKeys(v.Tags) {
				p.tags = append(p.tags, xmlTag{Key: k, Value: v.Tags[k]})
			}
		}
		p.tags = append(p.tags, tags...)
		plan = append(plan, p)
	}
	return plan, nil
}

// take checks the per-volume limits, runs the hook, fixes the point in
// time (copying backing bytes) and stores the new snapshots, which it
// returns in plan order as the create response shows them.
func (s *Server) take(c *request, instID string, plan []planned,
	desc string) ([]*snapRec, *apiError) {
	for _, p := range plan {
		if len(tagMap(p.tags)) > maxTags {
			return nil, errf("TagLimitExceeded",
				"The maximum number of Tags for a resource has been reached.")
		}
	}

	s.mu.Lock()
	now := s.now()
	if e := s.checkLimits(plan, now); e != nil {
		s.mu.Unlock()
		return nil, e
	}
	hook := s.hook
	s.mu.Unlock()

	if hook != nil {
		ev := CreateEvent{Action: c.action, InstanceID: instID,
			AccessKeyID: c.accessKeyID, Time: now}
		for _, p := range plan {
			ev.VolumeIDs = append(ev.VolumeIDs, p.vol.ID)
		}
		hook(ev)
	}

	// This is the point in time: one start time for the whole call, and
	// the bytes of every backing file copied before the response.
	start := s.now()
	var recs []*snapRec
	for _, p := range plan {
		r := &snapRec{created: true, az: p.vol.AvailabilityZone}
		r.Snapshot = Snapshot{
			ID: newID("snap-"), VolumeID: p.vol.ID, Description: desc,
			OwnerID: s.fx.AccountID, StartTime: start,
			VolumeSizeGiB: p.vol.SizeGiB, Encrypted: p.vol.Encrypted,
			Tags: tagMap(p.tags),
		}
		recs = append(recs, r)
	}
	if err := s.copyImages(plan, recs); err != nil {
		s.log.Warn("copy snapshot image", "err", err)
		return nil, errf("InternalError", "An internal error has occurred")
	}

	// The response shows each snapshot pending at 0%, whatever
	// CompleteAfter; copies are returned as the stored ones are shared.
	var out []*snapRec
	s.mu.Lock()
	for _, r := range recs {
		r.seq = s.seq
		s.seq++
		r.fail = s.faults.failVols[r.VolumeID]
		s.snaps = append(s.snaps, r)
		cp := *r
		cp.Tags = maps.Clone(r.Tags)
		cp.State, cp.Progress = "pending", "0%"
		out = append(out, &cp)
	}
	s.mu.Unlock()
	return out, nil
}

// tagMap turns an ordered tag list into a map, later keys winning; it
// returns nil for no tags.
func tagMap(tags []xmlTag) map[string]string {
	if len(tags) == 0 {
		return nil
	}
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[t.Key] = t.Value
	}
	return m
}

// copyVolume returns a copy of v that shares no map with it.
func copyVolume(v *Volume) Volume {
	c := *v
	c.Tags = maps.Clone(v.Tags)
	return c
}

// checkLimits enforces the per-volume rate limit and the concurrent
// snapshot limit for plan, and on success records now as the volumes'
// last snapshot time. Call with s.mu held.
func (s *Server) checkLimits(plan []planned, now time.Time) *apiError {
	for _, p := range plan {
		id := p.vol.ID
		last, had := s.faults.lastSnap[id]
		if min, ok := s.faults.rateMin[id]; ok && had && now.Sub(last) < min {
			return errf("SnapshotCreationPerVolumeRateExceeded", msgVolumeRate)
		}
		limit := 5
		if p.vol.VolumeType == "st1" || p.vol.VolumeType == "sc1" {
			limit = 1
		}
		busy := 0
		for _, r := range s.snaps {
			st := s.view(r, now).State
			if r.VolumeID == id && (st == "pending" || st == "error") {
				busy++
			}
		}
		if busy >= limit {
			return errf("ConcurrentSnapshotLimitExceeded", msgConcurrent)
		}
	}
	for _, p := range plan {
		s.faults.lastSnap[p.vol.ID] = now
	}
	return nil
}

// copyImages copies the backing file of each planned volume that has one
// to SnapshotDir/<snapshot-id>.img and records the path. On failure it
// removes the images it made.
func (s *Server) copyImages(plan []planned, recs []*snapRec) error {
	for i, p := range plan {
		if p.vol.BackingFile == "" {
			continue
		}
		dst := filepath.Join(s.opts.SnapshotDir, recs[i].ID+".img")
		if err := sparseCopy(p.vol.BackingFile, dst); err != nil {
			for _, r := range recs[:i] {
				if r.ImagePath != "" {
					os.Remove(r.ImagePath)
				}
			}
			return fmt.Errorf("snapshot volume %s: %w", p.vol.ID, err)
		}
		recs[i].ImagePath = dst
	}
	return nil
}
