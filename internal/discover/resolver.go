package discover

import (
	"fmt"
	"sort"
	"strings"
)

// fsys is one filesystem (superblock) and what lies beneath it.
type fsys struct {
	mounts  []int  // indices into Host.Mounts, in table order
	target  string // visible mount point to freeze through; "" if none
	fstype  string
	source  string
	majmin  string // the superblock's device, as findmnt gives it
	class   fsClass
	ro      bool      // every mount of it is read-only
	isRoot  bool      // one of its visible mount points is "/"
	found   bool      // its source is a block device lsblk lists
	disks   []string  // whole disks beneath it
	vols    []string  // EBS volumes behind disks
	diskErr []Problem // disks that are not EBS volumes of this instance
	why     string    // why it is in the plan, once it is
}

// ebsOnly reports whether f sits wholly on this instance's EBS volumes.
func (f *fsys) ebsOnly() bool {
	return f.found && len(f.diskErr) == 0 && len(f.vols) > 0
}

// label is how problems name f: its mount point, or a hidden one.
func (f *fsys) label(h *Host) string {
	if f.target != "" {
		return f.target
	}
	return h.Mounts[f.mounts[0]].Target
}

type resolver struct {
	h        *Host
	maps     []Mapping
	opts     Options
	fss      []*fsys          // in the order of their first mount
	byTarget map[string]*fsys // by visible mount point
	hidden   map[string]bool  // mount points of hidden mounts
	byVol    map[string][]*fsys
	set      []*fsys // chosen, default and closure, in that order
	skip     map[*fsys]string
	problems []Problem
	reported map[Problem]bool

	byMajMin, byPath map[string]*Device // built by sourceDevice
}

func newResolver(h *Host, maps []Mapping, opts Options) *resolver {
	r := &resolver{
		h: h, maps: maps, opts: opts,
		byTarget: map[string]*fsys{},
		hidden:   map[string]bool{},
		byVol:    map[string][]*fsys{},
		skip:     map[*fsys]string{},
	}

	// A mount is hidden when a later one sits on the same mount point:
	// a path then reaches only the later one.
	visible := make([]bool, len(h.Mounts))
	last := map[string]int{}
	for i, m := range h.Mounts {
		last[m.Target] = i
	}
	for i, m := range h.Mounts {
		visible[i] = last[m.Target] == i
		if !visible[i] {
			r.hidden[m.Target] = true
		}
	}

	// One fsys per superblock.
	byKey := map[string]*fsys{}
	for i, m := range h.Mounts {
		key := m.MajMin
		if key == "" {
			key = "source " + m.Source + " " + m.FSType
		}
		f := byKey[key]
		if f == nil {
			f = &fsys{fstype: m.FSType, source: m.Source, majmin: m.MajMin,
				class: classify(m.FSType), ro: true}
			byKey[key] = f
			r.fss = append(r.fss, f)
		}
		f.mounts = append(f.mounts, i)
		f.ro = f.ro && readOnly(m.Options)
		if visible[i] {
			r.byTarget[m.Target] = f
			f.isRoot = f.isRoot || m.Target == "/"
		}
	}
	for _, f := range r.fss {
		f.target = r.canonical(f, visible)
		r.resolveDisks(f)
		for _, v := range f.vols {
			r.byVol[v] = append(r.byVol[v], f)
		}
	}
	return r
}

// canonical picks the mount point to freeze f through: its first visible
// mount of the filesystem's root, else its first visible mount.
func (r *resolver) canonical(f *fsys, visible []bool) string {
	first := ""
	for _, i := range f.mounts {
		m := r.h.Mounts[i]
		if !visible[i] {
			continue
		}
		if m.FSRoot == "/" || m.FSRoot == "" {
			return m.Target
		}
		if first == "" {
			first = m.Target
		}
	}
	return first
}

func readOnly(options string) bool {
	for _, o := range strings.Split(options, ",") {
		if o == "ro" {
			return true
		}
	}
	return false
}

// resolveDisks walks f's source device down to its whole disks and maps
// each to an EBS volume.
func (r *resolver) resolveDisks(f *fsys) {
	m := r.h.Mounts[f.mounts[0]]
	src := r.sourceDevice(m)
	if src == nil {
		return
	}
	f.found = true

	// Every member of a multi-device btrfs carries its UUID.
	starts := []*Device{src}
	if f.fstype == "btrfs" && src.UUID != "" {
		for _, k := range sortedKeys(r.h.Devices) {
			d := r.h.Devices[k]
			if d != src && d.FSType == "btrfs" && d.UUID == src.UUID {
				starts = append(starts, d)
			}
		}
	}

	seen := map[string]bool{}
	var walk func(d *Device)
	walk = func(d *Device) {
		if seen[d.KName] {
			return
		}
		seen[d.KName] = true
		if len(d.Parents) == 0 {
			r.addDisk(f, d)
			return
		}
		for _, p := range d.Parents {
			pd := r.h.Devices[p]
			if pd == nil {
				f.diskErr = append(f.diskErr, Problem{Device: p,
					Msg: fmt.Sprintf("is beneath %s but lsblk does not list it", d.KName)})
				continue
			}
			walk(pd)
		}
	}
	for _, d := range starts {
		walk(d)
	}
	sort.Strings(f.disks)
	sort.Strings(f.vols)
}

func (r *resolver) addDisk(f *fsys, d *Device) {
	f.disks = appendNew(f.disks, d.KName)
	v, msg := diskVolume(d, r.maps)
	if msg != "" {
		f.diskErr = append(f.diskErr, Problem{Device: d.KName, Msg: msg})
		return
	}
	f.vols = appendNew(f.vols, v)
}

// sourceDevice finds the block device a mount is on: by device number,
// which also finds "/dev/root", else by path (a btrfs superblock has an
// anonymous device number).
func (r *resolver) sourceDevice(m Mount) *Device {
	if r.byMajMin == nil {
		r.byMajMin, r.byPath = map[string]*Device{}, map[string]*Device{}
		keys := sortedKeys(r.h.Devices)
		for i := len(keys) - 1; i >= 0; i-- { // the first name wins
			d := r.h.Devices[keys[i]]
			r.byMajMin[d.MajMin] = d
			r.byPath["/dev/"+d.KName] = d
			if d.Name != "" {
				r.byPath["/dev/"+d.Name] = d
				r.byPath["/dev/mapper/"+d.Name] = d
			}
		}
		for i := len(keys) - 1; i >= 0; i-- { // PATH over guesses
			if d := r.h.Devices[keys[i]]; d.Path != "" {
				r.byPath[d.Path] = d
			}
		}
	}
	if d := r.byMajMin[m.MajMin]; d != nil && m.MajMin != "" {
		return d
	}
	if !strings.HasPrefix(m.Source, "/dev/") {
		return nil
	}
	return r.byPath[m.Source]
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
