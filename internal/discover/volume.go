package discover

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Model strings of NVMe devices on Nitro instances (70-ec2-nvme-devices
// rules of amazon-ec2-utils).
const (
	modelEBS           = "Amazon Elastic Block Store"
	modelInstanceStore = "Amazon EC2 NVMe Instance Storage"
)

// Mapping is one EBS entry of an instance's block device mappings, from
// DescribeInstances: the device name given at attach time ("/dev/sdf",
// "/dev/xvda", sometimes "sdf") and the volume. Root marks the mapping
// named by the instance's RootDeviceName.
type Mapping struct {
	DeviceName, VolumeID string
	Root                 bool
}

var (
	serialRE   = regexp.MustCompile(`^vol-?([0-9a-f]{8}|[0-9a-f]{17})$`)
	volumeIDRE = regexp.MustCompile(`^vol-([0-9a-f]{8}|[0-9a-f]{17})$`)
	partRE     = regexp.MustCompile(`^((?:xv|s)d[a-z]+)[0-9]+$`)
)

// volumeFromSerial turns an EBS NVMe serial into its volume ID:
// "vol0123456789abcdef0" is "vol-0123456789abcdef0". It also accepts the
// udev ID_SERIAL form "Amazon Elastic Block Store_vol0123…" that some
// lsblk versions print.
func volumeFromSerial(serial string) (string, bool) {
	s := strings.TrimSpace(serial)
	if i := strings.LastIndex(s, "_"); i >= 0 {
		s = s[i+1:]
	}
	m := serialRE.FindStringSubmatch(s)
	if m == nil {
		return "", false
	}
	return "vol-" + m[1], true
}

// diskVolume finds the EBS volume behind a whole disk d. It returns the
// volume ID, or a message saying why the disk is not one of the
// instance's EBS volumes.
func diskVolume(d *Device, maps []Mapping) (string, string) {
	model := strings.TrimSpace(d.Model)
	if model == modelInstanceStore {
		return "", "is NVMe instance store, which EBS snapshots cannot capture"
	}

	// On Nitro the serial names the volume; the mapping must agree.
	if v, ok := volumeFromSerial(d.Serial); ok || model == modelEBS {
		if !ok {
			return "", fmt.Sprintf("is an EBS NVMe disk whose serial %q is not a volume ID", d.Serial)
		}
		for _, m := range maps {
			if m.VolumeID == v {
				return v, ""
			}
		}
		return "", fmt.Sprintf("is EBS volume %s, which DescribeInstances does not list among this instance's block device mappings (is this the right host?)", v)
	}

	// NVMe names follow discovery order, never the attach-time name.
	if strings.HasPrefix(d.KName, "nvme") {
		if model == "" && d.Serial == "" {
			return "", "is an NVMe disk with no serial or model to tell which EBS volume it is"
		}
		return "", fmt.Sprintf("is an NVMe disk that is not EBS (model %q, serial %q)", model, d.Serial)
	}
	return nameVolume(d, maps)
}

// nameVolume matches a disk to the mappings by device name: exact, with
// or without /dev/, xvdX for sdX and back, and a root mapping named after
// a partition (/dev/sda1) for the whole disk it names (xvda).
func nameVolume(d *Device, maps []Mapping) (string, string) {
	names := diskNames(d)
	var found []string
	for _, m := range maps {
		for _, alt := range altNames(strings.TrimPrefix(m.DeviceName, "/dev/")) {
			if names[alt] {
				found = appendNew(found, m.VolumeID)
			}
		}
	}
	if len(found) == 0 {
		for _, m := range maps {
			p := partRE.FindStringSubmatch(strings.TrimPrefix(m.DeviceName, "/dev/"))
			if !m.Root || p == nil || names[p[0]] {
				continue
			}
			for _, alt := range altNames(p[1]) {
				if names[alt] {
					found = appendNew(found, m.VolumeID)
				}
			}
		}
	}

	switch {
	case len(found) == 1:
		if !volumeIDRE.MatchString(found[0]) {
			return "", fmt.Sprintf("matches a block device mapping whose volume ID %q is malformed", found[0])
		}
		return found[0], ""
	case len(found) > 1:
		return "", fmt.Sprintf("matches several block device mappings (%s): cannot tell which volume it is", strings.Join(found, ", "))
	}
	return "", "matches no EBS volume in the instance's block device mappings (instance store, or a disk not attached through EC2)"
}

func diskNames(d *Device) map[string]bool {
	names := map[string]bool{}
	for _, n := range []string{d.KName, d.Name, path.Base(d.Path)} {
		if n != "" && n != "." && n != "/" {
			names[n] = true
		}
	}
	return names
}

// altNames is a device name and its Xen twin: sdf and xvdf.
func altNames(n string) []string {
	switch {
	case strings.HasPrefix(n, "xvd"):
		return []string{n, "sd" + n[3:]}
	case strings.HasPrefix(n, "sd"):
		return []string{n, "xvd" + n[2:]}
	}
	return []string{n}
}
