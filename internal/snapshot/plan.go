package snapshot

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Request is one CreateSnapshots call, as Plan built it: it snapshots
// exactly Volumes of the instance, at one point in time.
type Request struct {
	Region     string
	InstanceID string
	// Volumes is the set that will be snapshotted, sorted.
	Volumes []string
	// ExcludeBoot leaves out the root volume (ExcludeBootVolume).
	ExcludeBoot bool
	// Exclude are the attached data volumes left out
	// (ExcludeDataVolumeIds), in API order.
	Exclude []string
	// Tags go on every snapshot (TagSpecifications).
	Tags map[string]string
	// Description goes on every snapshot; may be "".
	Description string
}

// Limits of one CreateSnapshots request.
const (
	// MaxExclusions is how many data volumes one CreateSnapshots request
	// may leave out (InstanceSpecification.ExcludeDataVolumeIds).
	MaxExclusions = 40
	// MaxTags is how many tags a snapshot may carry.
	MaxTags = 50
)

// Plan builds the CreateSnapshots request that snapshots exactly the
// volumes want of inst, tagged with tags and described by description.
// It fails with *PlanError when nothing is wanted, when the instance is
// neither running nor stopped, when a wanted volume is not attached to
// it (or is attaching or detaching), when more than MaxExclusions data
// volumes would have to be left out, or when there are more than MaxTags
// tags. It contacts nothing.
func Plan(inst Instance, want []string, tags map[string]string,
	description string) (*Request, error) {
	fail := func(vol, format string, args ...any) error {
		return &PlanError{InstanceID: inst.ID, VolumeID: vol,
			Msg: fmt.Sprintf(format, args...)}
	}
	want = dedupe(want)
	if len(want) == 0 {
		return nil, fail("", "no volume to snapshot")
	}
	if inst.State != "running" && inst.State != "stopped" {
		return nil, fail("", "instance is %s, want running or stopped", orUnknown(inst.State))
	}
	if len(tags) > MaxTags {
		return nil, fail("", "%d tags, a snapshot may carry at most %d", len(tags), MaxTags)
	}

	byID := make(map[string]AttachedVolume, len(inst.Volumes))
	for _, v := range inst.Volumes {
		byID[v.VolumeID] = v
	}
	r := &Request{Region: inst.Region, InstanceID: inst.ID,
		ExcludeBoot: true, Tags: maps.Clone(tags),
		Description: description}
	for _, id := range want {
		v, ok := byID[id]
		switch {
		case !ok:
			return nil, fail(id, "volume is not attached to this instance")
		case v.Status != "attached":
			return nil, fail(id, "volume is %s, want attached", orUnknown(v.Status))
		case v.Root:
			r.ExcludeBoot = false
		}
		r.Volumes = append(r.Volumes, id)
	}
	slices.Sort(r.Volumes)

	// Every other data volume is excluded whatever its status, so that
	// nothing more than the wanted set is ever snapshotted.
	for _, v := range inst.Volumes {
		if !v.Root && !slices.Contains(want, v.VolumeID) &&
			!slices.Contains(r.Exclude, v.VolumeID) {
			r.Exclude = append(r.Exclude, v.VolumeID)
		}
	}
	if len(r.Exclude) > MaxExclusions {
		return nil, fail("", "%d other data volumes are attached and CreateSnapshots can leave out at most %d; snapshot more of its volumes (volumes=) or fewer volumes per instance", len(r.Exclude), MaxExclusions)
	}
	return r, nil
}

// String describes r for logs and plans: instance, volumes, exclusions.
func (r *Request) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "CreateSnapshots %s in %s: volumes %s", r.InstanceID,
		orUnknown(r.Region), strings.Join(r.Volumes, ","))
	if r.ExcludeBoot {
		b.WriteString(", boot volume excluded")
	}
	if len(r.Exclude) > 0 {
		fmt.Fprintf(&b, ", excluding %s", strings.Join(r.Exclude, ","))
	}
	return b.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
