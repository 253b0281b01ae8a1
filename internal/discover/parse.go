package discover

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Host is what discovery saw on one host: its mount table and its block
// devices.
type Host struct {
	// Mounts is the kernel's mount table in findmnt's list order (the
	// order of /proc/self/mountinfo), pseudo filesystems included.
	Mounts []Mount
	// Devices holds every block device lsblk listed, by kernel name.
	Devices map[string]*Device
}

// Mount is one line of the mount table, as findmnt prints it. Source is
// findmnt's SOURCE with any "[/subdir]" suffix of a bind mount or btrfs
// subvolume removed; FSRoot keeps that directory.
type Mount struct {
	Target, Source, FSType, MajMin, Options, FSRoot string
}

// Device is one block device as lsblk prints it. Serial and Model are
// trimmed of padding and, where lsblk had none, taken from sysfs.
type Device struct {
	Name, KName, Path, Type, Serial, Model, MajMin, FSType string
	// UUID is the filesystem UUID lsblk shows, if any; the members of one
	// multi-device btrfs share it.
	UUID string
	// MountPoints are the mount points lsblk shows for the device (from
	// MOUNTPOINTS, or the single MOUNTPOINT of older lsblk).
	MountPoints []string
	// Parents are the kernel names of the devices this one sits on, in
	// the order lsblk showed them: a partition's disk, an LVM volume's
	// physical volumes, an md array's members. A whole disk has none.
	Parents []string
}

// Parse reads the output of [Command]. It fails, with an error that says
// which part is wrong, when the framing is missing or truncated, when
// findmnt or lsblk exited non-zero, or when their JSON does not parse.
// It accepts both lsblk JSON dialects (a mountpoints array or a single
// mountpoint; strings, numbers, booleans or null for any value). Parse
// never panics, whatever the input.
func Parse(out []byte) (*Host, error) {
	sec, err := split(out)
	if err != nil {
		return nil, err
	}

	h := &Host{Devices: map[string]*Device{}}
	if err := parseFindmnt(h, sec.findmnt); err != nil {
		return nil, err
	}
	if err := parseLsblk(h, sec.lsblk); err != nil {
		return nil, err
	}
	parseSysfs(h, sec.sysfs)
	return h, nil
}

// sections are the parts of Command's output, between its markers.
type sections struct {
	findmnt, lsblk, sysfs []byte
}

func split(out []byte) (sections, error) {
	var s sections
	lines := bytes.Split(out, []byte("\n"))
	start := -1
	for i, l := range lines {
		if string(bytes.TrimRight(l, "\r")) == "@orchestrate-discover 1" {
			start = i
			break
		}
	}
	if start < 0 {
		return s, fmt.Errorf("discover: output has no %q header: not the output of the discovery command", "@orchestrate-discover 1")
	}

	// Collect each section's lines; a marker line closes the one before.
	var cur *[]byte
	seen := map[string]bool{}
	exits := map[string]string{}
	for _, l := range lines[start+1:] {
		line := string(bytes.TrimRight(l, "\r"))
		if !strings.HasPrefix(line, "@") {
			if cur != nil {
				*cur = append(append(*cur, line...), '\n')
			}
			continue
		}
		word, arg, _ := strings.Cut(line[1:], " ")
		seen[word] = true
		cur = nil
		switch word {
		case "findmnt":
			cur = &s.findmnt
		case "lsblk":
			cur = &s.lsblk
		case "sysfs":
			cur = &s.sysfs
		case "findmnt-exit", "lsblk-exit":
			exits[word] = arg
		}
		if word == "end" {
			break
		}
	}

	for _, w := range []string{"findmnt", "findmnt-exit", "lsblk", "lsblk-exit", "end"} {
		if !seen[w] {
			return s, fmt.Errorf("discover: output is truncated: no @%s marker", w)
		}
	}
	for _, tool := range []string{"findmnt", "lsblk"} {
		if st := exits[tool+"-exit"]; st != "0" {
			return s, fmt.Errorf("discover: %s failed on the host (exit status %s); its standard error says why", tool, st)
		}
	}
	return s, nil
}

// text is a JSON value read as a string: util-linux prints strings, but
// older versions print booleans as "0"/"1" and newer ones print true,
// false and numbers, and every version prints null for an empty value.
type text string

func (t *text) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case nil:
		*t = ""
	case string:
		*t = text(v)
	case bool:
		*t = text(strconv.FormatBool(v))
	case float64:
		*t = text(strconv.FormatFloat(v, 'f', -1, 64))
	default:
		return fmt.Errorf("want a string, got %s", b)
	}
	return nil
}

// texts is lsblk's MOUNTPOINTS: an array with null for "not mounted", or
// a single value.
type texts []string

func (t *texts) UnmarshalJSON(b []byte) error {
	var list []text
	if err := json.Unmarshal(b, &list); err != nil {
		var one text
		if json.Unmarshal(b, &one) != nil {
			return err
		}
		list = []text{one}
	}
	*t = nil
	for _, v := range list {
		if v != "" {
			*t = append(*t, string(v))
		}
	}
	return nil
}

type findmntEntry struct {
	Target   text           `json:"target"`
	Source   text           `json:"source"`
	FSType   text           `json:"fstype"`
	MajMin   text           `json:"maj:min"`
	Options  text           `json:"options"`
	FSRoot   text           `json:"fsroot"`
	Children []findmntEntry `json:"children"`
}

func parseFindmnt(h *Host, b []byte) error {
	var doc struct {
		Filesystems []findmntEntry `json:"filesystems"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("discover: read findmnt output: %w", err)
	}

	// The list form is flat; the tree form (children) is walked in order.
	var walk func([]findmntEntry) error
	walk = func(es []findmntEntry) error {
		for _, e := range es {
			if e.Target == "" {
				return fmt.Errorf("discover: read findmnt output: a filesystem without a target (source %q)", e.Source)
			}
			h.Mounts = append(h.Mounts, Mount{
				Target:  string(e.Target),
				Source:  trimSourceRoot(string(e.Source)),
				FSType:  string(e.FSType),
				MajMin:  string(e.MajMin),
				Options: string(e.Options),
				FSRoot:  string(e.FSRoot),
			})
			if err := walk(e.Children); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(doc.Filesystems)
}

// trimSourceRoot drops the "[/dir]" findmnt appends to the source of a
// bind mount or btrfs subvolume: "/dev/sda2[/@home]" is "/dev/sda2".
func trimSourceRoot(s string) string {
	if strings.HasSuffix(s, "]") {
		if i := strings.LastIndex(s, "["); i > 0 {
			return s[:i]
		}
	}
	return s
}

type lsblkEntry struct {
	Name        text         `json:"name"`
	KName       text         `json:"kname"`
	PKName      text         `json:"pkname"`
	Path        text         `json:"path"`
	Type        text         `json:"type"`
	Serial      text         `json:"serial"`
	Model       text         `json:"model"`
	MajMin      text         `json:"maj:min"`
	FSType      text         `json:"fstype"`
	UUID        text         `json:"uuid"`
	MountPoints texts        `json:"mountpoints"`
	MountPoint  text         `json:"mountpoint"`
	Children    []lsblkEntry `json:"children"`
}

// parseLsblk reads lsblk's inverse tree (-s): a node's children are the
// devices it sits on, so they are its Parents. A device appears once per
// path through the tree; its appearances are merged.
func parseLsblk(h *Host, b []byte) error {
	var doc struct {
		Blockdevices []lsblkEntry `json:"blockdevices"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("discover: read lsblk output: %w", err)
	}

	pknames := map[string]string{}
	var walk func([]lsblkEntry, bool) error
	walk = func(es []lsblkEntry, top bool) error {
		for _, e := range es {
			d, err := addDevice(h, e)
			if err != nil {
				return err
			}
			// At the top of an inverse tree PKNAME is the real parent;
			// below, lsblk sets it to the node above, which is a holder.
			if top && e.PKName != "" {
				pknames[d.KName] = string(e.PKName)
			}
			for _, c := range e.Children {
				if c.KName != "" {
					d.Parents = appendNew(d.Parents, string(c.KName))
				}
			}
			if err := walk(e.Children, false); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(doc.Blockdevices, true); err != nil {
		return err
	}

	// A partition always sits on its disk, even if a tree left it out.
	for k, p := range pknames {
		d := h.Devices[k]
		if d.Type == "part" && len(d.Parents) == 0 && p != k && h.Devices[p] != nil {
			d.Parents = []string{p}
		}
	}
	return nil
}

func addDevice(h *Host, e lsblkEntry) (*Device, error) {
	k := string(e.KName)
	if k == "" {
		return nil, fmt.Errorf("discover: read lsblk output: a device without a kernel name (name %q)", e.Name)
	}
	d := h.Devices[k]
	if d == nil {
		d = &Device{KName: k}
		h.Devices[k] = d
	}

	set := func(dst *string, v text) {
		if *dst == "" {
			*dst = strings.TrimSpace(string(v))
		}
	}
	set(&d.Name, e.Name)
	set(&d.Path, e.Path)
	set(&d.Type, e.Type)
	set(&d.Serial, e.Serial)
	set(&d.Model, e.Model)
	set(&d.MajMin, e.MajMin)
	set(&d.FSType, e.FSType)
	set(&d.UUID, e.UUID)
	if d.Path == "" {
		d.Path = devPath(d)
	}
	for _, m := range e.MountPoints {
		d.MountPoints = appendNew(d.MountPoints, m)
	}
	if e.MountPoint != "" {
		d.MountPoints = appendNew(d.MountPoints, string(e.MountPoint))
	}
	return d, nil
}

// devPath guesses the PATH that lsblk before 2.33 did not print.
func devPath(d *Device) string {
	name := d.Name
	if name == "" {
		name = d.KName
	}
	switch d.Type {
	case "lvm", "crypt", "dm", "mpath":
		return "/dev/mapper/" + name
	}
	return "/dev/" + name
}

func parseSysfs(h *Host, b []byte) {
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			continue
		}
		d := h.Devices[f[0]]
		if d == nil {
			continue
		}
		if d.Serial == "" {
			d.Serial = strings.TrimSpace(f[1])
		}
		if d.Model == "" {
			d.Model = strings.TrimSpace(f[2])
		}
	}
}

func appendNew(list []string, v string) []string {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}
