package run

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/orchestrate-dev/orchestrate/internal/discover"
	"github.com/orchestrate-dev/orchestrate/internal/snapshot"
)

// StepDiscover is the step that reads a host's mounts and block devices and
// plans what to freeze and snapshot.
const StepDiscover = "discover"

// needsDiscovery reports whether the host's snapshot set must be worked
// out on the host: the hosts file does not name both its mounts and its
// volumes. A host that names both is taken at its word, as before.
func (hr *hostRun) needsDiscovery() bool {
	return len(hr.host.Mounts) == 0 || len(hr.host.Volumes) == 0
}

// discover runs the discovery command over conn, resolves the mounts to
// the instance's EBS volumes, and then makes and dry-runs the snapshot
// request, all before anything is frozen. It reports whether the pipeline
// may go on; on success the host's mounts and volumes are the plan's.
func (hr *hostRun) discover(ctx context.Context, conn Conn) bool {
	start := time.Now()
	plan, err := hr.discoverPlan(ctx, conn)
	if err == nil {
		hr.host.Mounts, hr.host.Volumes = plan.Freeze, plan.Volumes
		hr.devices = planDevices(plan)
		hr.rep.Mounts, hr.rep.Volumes = plan.Freeze, plan.Volumes
		hr.plan, err = snapshot.Plan(*hr.inst, plan.Volumes, hr.tags(), hr.description())
	}
	if err == nil {
		if derr := hr.cfg.EC2.DryRun(ctx, hr.plan); derr != nil {
			err = fmt.Errorf("dry run: %w", derr)
		}
	}
	hr.rep.step(StepDiscover, start, err)
	if err != nil {
		hr.rep.fail(StepDiscover, err)
		return false
	}
	return true
}

// discoverPlan reads the host and resolves its plan, recording it in the
// report whatever the outcome.
func (hr *hostRun) discoverPlan(ctx context.Context, conn Conn) (*discover.Plan, error) {
	if hr.inst == nil {
		return nil, fmt.Errorf("discover: instance %s was not described", hr.host.InstanceID)
	}
	var out, stderr bytes.Buffer
	if err := conn.Exec(ctx, discover.Command(), strings.NewReader(""), &out, &stderr); err != nil {
		return nil, fmt.Errorf("discover: run findmnt and lsblk: %w: %s", err,
			strings.TrimSpace(stderr.String()))
	}
	h, err := discover.Parse(out.Bytes())
	if err != nil {
		return nil, err
	}

	var maps []discover.Mapping
	for _, v := range hr.inst.Volumes {
		if v.Status == "" || v.Status == "attached" {
			maps = append(maps, discover.Mapping{DeviceName: v.DeviceName,
				VolumeID: v.VolumeID, Root: v.Root})
		}
	}
	plan, err := discover.Resolve(h, maps, discover.Options{
		Chosen:    hr.host.Mounts,
		Volumes:   hr.host.Volumes,
		AllowRoot: hr.cfg.AllowRootFreeze,
		Closure:   hr.cfg.Closure,
	})
	if plan != nil {
		hr.rep.Plan = emptyLists(plan)
	}
	return plan, err
}

// planDevices gives, for each mount point of plan.Freeze, the device
// discovery saw there, for the agent to check before it freezes.
func planDevices(plan *discover.Plan) []string {
	byTarget := map[string]string{}
	for _, m := range plan.Mounts {
		byTarget[m.Target] = m.MajMin
	}
	devs := make([]string, len(plan.Freeze))
	for i, t := range plan.Freeze {
		devs[i] = byTarget[t]
	}
	return devs
}

// emptyLists gives every list of p a non-nil value, for the JSON report.
func emptyLists(p *discover.Plan) *discover.Plan {
	cp := *p
	cp.Freeze, cp.Volumes = orEmpty(cp.Freeze), orEmpty(cp.Volumes)
	if cp.Problems == nil {
		cp.Problems = []discover.Problem{}
	}
	fix := func(ms []discover.PlannedMount) []discover.PlannedMount {
		out := make([]discover.PlannedMount, len(ms))
		for i, m := range ms {
			m.Disks, m.Volumes = orEmpty(m.Disks), orEmpty(m.Volumes)
			out[i] = m
		}
		return out
	}
	cp.Mounts, cp.Skipped = fix(cp.Mounts), fix(cp.Skipped)
	return &cp
}
