package discover

import (
	"errors"
	"fmt"
	"strings"
)

// Closure modes for Options.Closure.
const (
	ClosureFreeze = "freeze"
	ClosureFail   = "fail"
)

// Options is what the operator asked for on one host.
type Options struct {
	// Chosen are the mount points from mounts=. Nil or empty means the
	// default: every freezable filesystem backed only by EBS, except "/"
	// (unless AllowRoot) and except any filesystem that shares a volume
	// with one that cannot be chosen.
	Chosen []string
	// Volumes is the volumes= override. When not empty it must list
	// exactly the volumes discovery finds behind the filesystems to
	// freeze, no more and no fewer.
	Volumes []string
	// AllowRoot lets "/" be frozen, whether chosen, by default or by
	// closure.
	AllowRoot bool
	// Closure says what to do with a writable filesystem that was not
	// chosen but shares a volume with one that was: ClosureFreeze (the
	// default, also for "") freezes it too, ClosureFail makes it a
	// problem.
	Closure string
}

// Plan is what Resolve decided for one host.
type Plan struct {
	// Mounts is every filesystem to freeze, one per superblock, in freeze
	// order.
	Mounts []PlannedMount `json:"mounts"`
	// Freeze is the mount point of each entry of Mounts, in the same
	// order: deepest mount point first, so a filesystem mounted under
	// another is frozen before it and thawed (in reverse) after it.
	//
	// Mount nesting creates no write dependency between filesystems (a
	// path lookup through a frozen filesystem only reads, and atime
	// updates are skipped while it is frozen), so freezing is deadlock-
	// free in either order. Deepest-first is chosen because the outer
	// filesystems, "/" above all, are what the agent, sudo, sshd and
	// journald write to: freezing them last and thawing them first keeps
	// them frozen for the shortest time and means no later freeze step
	// runs while they are frozen. It is also the safe order for a
	// filesystem image stored in a parent and loop-mounted beneath it,
	// whose flush on freeze writes to the parent.
	Freeze []string `json:"freeze"`
	// Volumes are the EBS volumes to snapshot, sorted: exactly those
	// behind Freeze.
	Volumes []string `json:"volumes"`
	// Skipped are the filesystems found but not frozen, each with why,
	// for a plan display. Kernel pseudo filesystems (proc, sysfs, cgroup
	// and the like) are left out.
	Skipped []PlannedMount `json:"skipped"`
	// Problems is every reason to refuse the host. Resolve returns a
	// *PlanError when there is any; Mounts, Freeze and Volumes then show
	// what was considered, for display only, and must not be acted on.
	Problems []Problem `json:"problems"`
}

// PlannedMount is one filesystem in a Plan.
type PlannedMount struct {
	// Target is the mount point the filesystem is frozen through.
	Target string `json:"target"`
	FSType string `json:"fstype"`
	Source string `json:"source"`
	// MajMin is the filesystem's device number as findmnt reports it
	// ("259:1"); the agent refuses to freeze the mount point unless the
	// path still resolves to that device, so a filesystem mounted over a
	// parent directory, or moved, is never frozen in its place.
	MajMin string `json:"maj_min"`
	// Aliases are its other mount points (bind mounts, repeated mounts,
	// btrfs subvolumes): one superblock, frozen once through Target.
	Aliases []string `json:"aliases,omitempty"`
	// Disks are the whole disks it sits on, by kernel name, sorted.
	Disks []string `json:"disks"`
	// Volumes are the EBS volumes behind Disks, sorted.
	Volumes []string `json:"volumes"`
	// Why is "chosen", "default", "closure: shares vol-… with /data", or
	// for a skipped filesystem why it is not frozen.
	Why string `json:"why"`
}

// Problem is one reason a host cannot be snapshotted as asked. Mount,
// Device and Volume name what it is about, where they apply.
type Problem struct {
	Mount  string `json:"mount,omitempty"`
	Device string `json:"device,omitempty"`
	Volume string `json:"volume,omitempty"`
	Msg    string `json:"message"`
}

// String gives the problem as one line: "mount /data: disk nvme2n1: is
// NVMe instance store, …".
func (p Problem) String() string {
	var b strings.Builder
	if p.Mount != "" {
		b.WriteString("mount " + p.Mount + ": ")
	}
	if p.Device != "" {
		b.WriteString("disk " + p.Device + ": ")
	}
	if p.Volume != "" {
		b.WriteString("volume " + p.Volume + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// PlanError is the error Resolve returns when a plan has problems. It
// names no host; callers add it.
type PlanError struct {
	Problems []Problem
}

// Error lists every problem, separated by "; ".
func (e *PlanError) Error() string {
	s := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		s[i] = p.String()
	}
	return "discover: " + strings.Join(s, "; ")
}

// ErrClosureMode is returned, wrapped, for an Options.Closure that is
// neither "", ClosureFreeze nor ClosureFail.
var ErrClosureMode = errors.New("discover: unknown closure mode")

// Resolve decides what to freeze and snapshot on host h, given the
// instance's EBS block device mappings and the operator's options (see
// the package doc for the rules). It returns the plan and, when the plan
// has any problem, a *PlanError listing every one of them; the plan is
// returned then too, so it can be shown. Nothing is frozen or created.
func Resolve(h *Host, mappings []Mapping, opts Options) (*Plan, error) {
	switch opts.Closure {
	case "", ClosureFreeze, ClosureFail:
	default:
		return nil, fmt.Errorf("%w %q: want %q or %q", ErrClosureMode, opts.Closure, ClosureFreeze, ClosureFail)
	}
	if h == nil {
		h = &Host{}
	}

	r := newResolver(h, mappings, opts)
	if len(opts.Chosen) == 0 {
		r.chooseDefault()
	} else {
		r.chooseExplicit()
	}
	r.closure()
	r.check()

	p := r.plan()
	if len(p.Problems) > 0 {
		return p, &PlanError{Problems: p.Problems}
	}
	return p, nil
}
