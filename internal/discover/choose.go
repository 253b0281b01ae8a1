package discover

import (
	"fmt"
	"sort"
	"strings"
)

func (r *resolver) in(f *fsys) bool { return f.why != "" }

func (r *resolver) add(f *fsys, why string) {
	if f.why == "" {
		f.why = why
		r.set = append(r.set, f)
	}
}

func (r *resolver) problem(p Problem) {
	if r.reported == nil {
		r.reported = map[Problem]bool{}
	}
	if !r.reported[p] {
		r.reported[p] = true
		r.problems = append(r.problems, p)
	}
}

// chooseExplicit takes the mount points from mounts=. A filesystem named
// through a bind mount is frozen through that mount point.
func (r *resolver) chooseExplicit() {
	for _, p := range r.opts.Chosen {
		f := r.byTarget[p]
		switch {
		case f != nil && !r.in(f):
			f.target = p
			r.add(f, "chosen")
		case f != nil:
		case r.hidden[p]:
			r.problem(Problem{Mount: p, Msg: "is hidden by another filesystem mounted over it, so it cannot be frozen"})
		default:
			r.problem(Problem{Mount: p, Msg: "is not a mount point on the host"})
		}
	}
}

// candidate reports whether f may be chosen by default.
func (r *resolver) candidate(f *fsys) bool {
	return f.class == classFreezable && f.ebsOnly() && f.target != "" &&
		(!f.isRoot || r.opts.AllowRoot)
}

// chooseDefault takes every candidate whose closure holds only
// candidates, so that a default never needs closure and never fails it.
func (r *resolver) chooseDefault() {
	for _, c := range r.fss {
		if r.in(c) || !r.candidate(c) {
			continue
		}
		comp, why := r.component(c)
		if why != "" {
			r.skip[c] = why
			continue
		}
		for _, f := range comp {
			r.add(f, "default")
		}
	}
	if len(r.set) == 0 {
		r.problem(Problem{Msg: "found no filesystem backed only by this instance's EBS volumes to freeze; name the mount points with mounts="})
	}
}

// component gathers the writable filesystems that share volumes with c,
// transitively. It returns why c cannot be chosen by default if one of
// them cannot be.
func (r *resolver) component(c *fsys) ([]*fsys, string) {
	comp := []*fsys{c}
	seen := map[*fsys]bool{c: true}
	for i := 0; i < len(comp); i++ {
		f := comp[i]
		for _, v := range f.vols {
			for _, g := range r.byVol[v] {
				if seen[g] || g.ro {
					continue
				}
				if !r.candidate(g) {
					return nil, fmt.Sprintf("not chosen by default: shares %s with %s, which %s", v, g.label(r.h), r.whyNot(g))
				}
				seen[g] = true
				comp = append(comp, g)
			}
		}
	}
	return comp, ""
}

// closure adds, or refuses under ClosureFail, every writable filesystem
// that shares a volume with one in the plan, until none is left.
func (r *resolver) closure() {
	refused := map[*fsys]bool{}
	for i := 0; i < len(r.set); i++ {
		f := r.set[i]
		for _, v := range f.vols {
			for _, g := range r.byVol[v] {
				if r.in(g) || refused[g] {
					continue
				}
				if g.ro {
					if r.skip[g] == "" {
						r.skip[g] = fmt.Sprintf("read-only, shares %s with %s: consistent without a freeze", v, f.label(r.h))
					}
					continue
				}
				if r.opts.Closure == ClosureFail {
					refused[g] = true
					r.problem(Problem{Mount: g.label(r.h), Volume: v, Msg: fmt.Sprintf("shares the volume with %s but was not chosen, and closure is %q: its part of the snapshot would be taken live; add it to mounts= or use closure %q", f.label(r.h), ClosureFail, ClosureFreeze)})
					continue
				}
				r.add(g, fmt.Sprintf("closure: shares %s with %s", v, f.label(r.h)))
			}
		}
	}
}

// check records every reason a filesystem in the plan cannot be frozen
// and snapshotted, then checks the volumes= override.
func (r *resolver) check() {
	for _, f := range r.set {
		name := f.label(r.h)
		ctx := ""
		if c, ok := strings.CutPrefix(f.why, "closure: "); ok {
			ctx = " (it " + c + ")"
		}
		if f.class != classFreezable {
			msg := f.class.why(f.fstype) + ctx
			if ctx != "" {
				msg += "; mount it read-only to leave it out"
			}
			r.problem(Problem{Mount: name, Msg: msg})
			continue
		}
		if f.isRoot && !r.opts.AllowRoot {
			msg := "freezing / needs allow-root-freeze"
			if name != "/" {
				msg = "is the root filesystem (also mounted at /); freezing it needs allow-root-freeze"
			}
			r.problem(Problem{Mount: name, Msg: msg + ctx})
		}
		if f.target == "" {
			r.problem(Problem{Mount: name, Msg: "is mounted only where a later mount hides it, so it cannot be frozen" + ctx})
		}
		if !f.found {
			r.problem(Problem{Mount: name, Msg: fmt.Sprintf("is on %s, which is not a block device lsblk lists", f.source)})
		}
		if f.found && len(f.vols) == 0 && len(f.diskErr) == 0 {
			r.problem(Problem{Mount: name, Msg: fmt.Sprintf("is on %s, which lsblk shows on no whole disk", f.source) + ctx})
		}
		for _, p := range f.diskErr {
			p.Mount = name
			p.Msg += ctx
			r.problem(p)
		}
	}
	if len(r.opts.Volumes) > 0 {
		r.checkVolumes()
	}
}

// checkVolumes holds the volumes= override to what discovery found.
func (r *resolver) checkVolumes() {
	found := map[string]*fsys{}
	for _, f := range r.set {
		for _, v := range f.vols {
			if found[v] == nil {
				found[v] = f
			}
		}
	}
	listed := map[string]bool{}
	for _, v := range r.opts.Volumes {
		if listed[v] {
			continue
		}
		listed[v] = true
		if found[v] == nil {
			r.problem(Problem{Volume: v, Msg: "is listed in volumes= but discovery finds it behind none of the filesystems to freeze"})
		}
	}
	for _, v := range sortedKeys(found) {
		if !listed[v] {
			r.problem(Problem{Mount: found[v].label(r.h), Volume: v, Msg: "backs this filesystem but is not listed in volumes="})
		}
	}
}

// whyNot says why f is not frozen.
func (r *resolver) whyNot(f *fsys) string {
	switch {
	case f.class != classFreezable:
		return f.class.why(f.fstype)
	case !f.found:
		return fmt.Sprintf("is on %s, which is not a block device lsblk lists", f.source)
	case len(f.diskErr) > 0:
		p := f.diskErr[0]
		return fmt.Sprintf("is not backed only by EBS: disk %s %s", p.Device, p.Msg)
	case f.isRoot && !r.opts.AllowRoot:
		return "is the root filesystem, frozen only with allow-root-freeze"
	case f.target == "":
		return "is mounted only where a later mount hides it"
	}
	return "was not chosen"
}

// plan puts the filesystems in freeze order (see Plan.Freeze) and lists
// the rest as skipped.
func (r *resolver) plan() *Plan {
	set := append([]*fsys(nil), r.set...)
	sort.SliceStable(set, func(i, j int) bool {
		di, dj := depth(set[i].label(r.h)), depth(set[j].label(r.h))
		if di != dj {
			return di > dj
		}
		return set[i].label(r.h) < set[j].label(r.h)
	})

	p := &Plan{Problems: r.problems}
	vols := map[string]bool{}
	for _, f := range set {
		p.Mounts = append(p.Mounts, r.planned(f, f.why))
		p.Freeze = append(p.Freeze, f.label(r.h))
		for _, v := range f.vols {
			vols[v] = true
		}
	}
	p.Volumes = sortedKeys(vols)
	for _, f := range r.fss {
		if r.in(f) || f.class == classPseudo {
			continue
		}
		why := r.skip[f]
		if why == "" {
			why = r.whyNot(f)
		}
		p.Skipped = append(p.Skipped, r.planned(f, why))
	}
	return p
}

func (r *resolver) planned(f *fsys, why string) PlannedMount {
	pm := PlannedMount{
		Target: f.label(r.h), FSType: f.fstype, Source: f.source, MajMin: f.majmin,
		Disks:   append([]string(nil), f.disks...),
		Volumes: append([]string(nil), f.vols...),
		Why:     why,
	}
	for _, i := range f.mounts {
		if t := r.h.Mounts[i].Target; t != pm.Target {
			pm.Aliases = appendNew(pm.Aliases, t)
		}
	}
	return pm
}

// depth counts the components of a mount point: "/" is 0, "/data" 1.
func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}
