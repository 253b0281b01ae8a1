package discover

import (
	"errors"
	"strings"
	"testing"
)

// Fixture shapes. Every fixture is the output of Command: findmnt -J -l
// and lsblk -J -s as util-linux prints them (findmnt(8), lsblk(8): key
// names are the lower-cased column names, null for an empty value, the
// inverse tree nests the devices a device sits on under "children").
//   - nitro.txt: a Nitro instance as the EC2 user guide's "Amazon EBS and
//     NVMe" page describes it: EBS as nvmeXn1 with model "Amazon Elastic
//     Block Store" and the volume ID without its dash as serial (the
//     shape ebsnvme-id reads), an Amazon Linux 2023 root disk (xfs /,
//     /boot, vfat /boot/efi on p128), instance store with model "Amazon
//     EC2 NVMe Instance Storage" (amazon-ec2-utils udev rules), plus the
//     docker overlay, EFS over nfs4 and a snap squashfs of a typical host.
//   - xen.txt: a Xen HVM instance (user guide "Device names on Linux
//     instances"): xvda1 root, xvdf data, ephemeral instance store as
//     xvdb, no serials; lsblk 2.30 (Amazon Linux 2), which has no PATH
//     column and prints a single "mountpoint".
//   - lvm.txt: an LVM volume group over partitions of two EBS disks, as
//     lsblk --inverse shows an LV spanning two PVs (the LV under both).
//   - md.txt: mdadm RAID0 over two EBS disks (the user guide's "RAID
//     configuration" page) with LUKS on top; lsblk without a udev
//     database, so serial and model come from /sys/block/*/device.
//   - partitioned.txt: one EBS data disk with two partitions, two
//     filesystems.
//   - bind.txt: a bind mount (findmnt prints SOURCE as dev[/dir] and
//     FSROOT /dir), the same xfs mounted twice, btrfs subvolumes (one
//     superblock, one MAJ:MIN, two mounts).
//   - nested.txt: /data, /data/logs and /data/logs/archive on three EBS
//     volumes, and a tmpfs at /data/tmp.

const (
	nitroRoot = "vol-0a1b2c3d4e5f60718"
	nitroData = "vol-0123456789abcdef0"
	xenRoot   = "vol-0aaaaaaaaaaaaaaa1"
	xenData   = "vol-0bbbbbbbbbbbbbbb2"
	volA      = "vol-0000000000000000a"
	volB      = "vol-0000000000000000b"
	volC      = "vol-0000000000000000c"
	volD      = "vol-0000000000000000d"
	volF      = "vol-0fffffffffffffff1"
	volE1     = "vol-0eeeeeeeeeeeeeee1"
	volE2     = "vol-0eeeeeeeeeeeeeee2"
	volN1     = "vol-0ddddddddddddddd1"
	volN2     = "vol-0ddddddddddddddd2"
	volN3     = "vol-0ddddddddddddddd3"
)

func nitroRootMap() Mapping { return Mapping{"/dev/xvda", nitroRoot, true} }

var fixtureMaps = map[string][]Mapping{
	"nitro.txt":       {nitroRootMap(), {"/dev/sdf", nitroData, false}},
	"xen.txt":         {{"/dev/sda1", xenRoot, true}, {"/dev/sdf", xenData, false}},
	"lvm.txt":         {nitroRootMap(), {"/dev/sdf", volA, false}, {"/dev/sdg", volB, false}},
	"md.txt":          {nitroRootMap(), {"/dev/sdf", volC, false}, {"/dev/sdg", volD, false}},
	"partitioned.txt": {nitroRootMap(), {"/dev/sdf", volF, false}},
	"bind.txt":        {nitroRootMap(), {"/dev/sdf", volE1, false}, {"/dev/sdg", volE2, false}},
	"nested.txt":      {nitroRootMap(), {"/dev/sdf", volN1, false}, {"/dev/sdg", volN2, false}, {"/dev/sdh", volN3, false}},
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name, file string
		maps       []Mapping // nil: fixtureMaps[file]
		opts       Options
		freeze     []string
		volumes    []string
		why        map[string]string // target -> Why substring, frozen
		problems   []Problem
	}{
		{
			name: "NitroDefault", file: "nitro.txt",
			freeze: []string{"/data"}, volumes: []string{nitroData},
			why: map[string]string{"/data": "default"},
		},
		{
			name: "NitroDefaultAllowRootBlockedByVfat", file: "nitro.txt",
			opts:   Options{AllowRoot: true},
			freeze: []string{"/data"}, volumes: []string{nitroData},
		},
		{
			name: "NitroChosenInstanceStore", file: "nitro.txt",
			opts:     Options{Chosen: []string{"/data", "/scratch"}},
			freeze:   []string{"/data", "/scratch"},
			volumes:  []string{nitroData},
			problems: []Problem{{Mount: "/scratch", Device: "nvme2n1", Msg: "is NVMe instance store"}},
		},
		{
			name: "NitroChosenNotFreezable", file: "nitro.txt",
			opts: Options{Chosen: []string{"/tmp", "/mnt/efs", "/var/lib/docker/overlay2/3f1c/merged", "/proc", "/snap/core/123", "/boot/efi"}},
			freeze: []string{"/var/lib/docker/overlay2/3f1c/merged", "/snap/core/123",
				"/boot/efi", "/mnt/efs", "/boot", "/proc", "/tmp", "/"},
			volumes: []string{nitroRoot},
			problems: []Problem{
				{Mount: "/tmp", Msg: "is tmpfs, a memory filesystem"},
				{Mount: "/mnt/efs", Msg: "is nfs4, a network filesystem"},
				{Mount: "/var/lib/docker/overlay2/3f1c/merged", Msg: "is overlay, an overlay"},
				{Mount: "/proc", Msg: "is proc, a kernel pseudo filesystem"},
				{Mount: "/snap/core/123", Msg: "is squashfs, a read-only image"},
				{Mount: "/boot/efi", Msg: "is vfat, which does not support fsfreeze"},
				{Mount: "/", Msg: "freezing / needs allow-root-freeze (it shares " + nitroRoot + " with /boot/efi)"},
			},
		},
		{
			name: "NitroRootRefused", file: "nitro.txt",
			opts:    Options{Chosen: []string{"/"}},
			freeze:  []string{"/boot/efi", "/boot", "/"},
			volumes: []string{nitroRoot},
			problems: []Problem{
				{Mount: "/", Msg: "freezing / needs allow-root-freeze"},
				{Mount: "/boot/efi", Msg: "reiserfs do) (it shares " + nitroRoot + " with /); mount it read-only to leave it out"},
			},
		},
		{
			name: "NitroRootAllowedClosure", file: "nitro.txt",
			opts:    Options{Chosen: []string{"/"}, AllowRoot: true},
			freeze:  []string{"/boot/efi", "/boot", "/"},
			volumes: []string{nitroRoot},
			why:     map[string]string{"/": "chosen", "/boot": "closure: shares " + nitroRoot + " with /"},
			problems: []Problem{
				{Mount: "/boot/efi", Msg: "is vfat"},
			},
		},
		{
			name: "NitroWrongHost", file: "nitro.txt",
			maps:     []Mapping{nitroRootMap()},
			opts:     Options{Chosen: []string{"/data"}},
			freeze:   []string{"/data"},
			problems: []Problem{{Mount: "/data", Device: "nvme1n1", Msg: "is EBS volume " + nitroData + ", which DescribeInstances does not list"}},
		},
		{
			name: "NitroNotAMountPoint", file: "nitro.txt",
			opts:     Options{Chosen: []string{"/data/sub"}},
			problems: []Problem{{Mount: "/data/sub", Msg: "is not a mount point on the host"}},
		},
		{
			name: "XenDefault", file: "xen.txt",
			freeze: []string{"/data"}, volumes: []string{xenData},
		},
		{
			name: "XenInstanceStore", file: "xen.txt",
			opts:     Options{Chosen: []string{"/mnt"}},
			freeze:   []string{"/mnt"},
			problems: []Problem{{Mount: "/mnt", Device: "xvdb", Msg: "matches no EBS volume in the instance's block device mappings"}},
		},
		{
			name: "XenRootBySda1", file: "xen.txt",
			opts:   Options{Chosen: []string{"/", "/data"}, AllowRoot: true},
			freeze: []string{"/data", "/"}, volumes: []string{xenRoot, xenData},
		},
		{
			name: "XenExactNames", file: "xen.txt",
			maps:   []Mapping{{"/dev/xvda", xenRoot, true}, {"xvdf", xenData, false}},
			opts:   Options{AllowRoot: true},
			freeze: []string{"/data", "/"}, volumes: []string{xenRoot, xenData},
		},
		{
			name: "LVMOverTwoVolumes", file: "lvm.txt",
			freeze: []string{"/var/lib/postgresql"}, volumes: []string{volA, volB},
		},
		{
			name: "LVMOneVolumeUnmapped", file: "lvm.txt",
			maps:     []Mapping{nitroRootMap(), {"/dev/sdf", volA, false}},
			opts:     Options{Chosen: []string{"/var/lib/postgresql"}},
			freeze:   []string{"/var/lib/postgresql"},
			volumes:  []string{volA},
			problems: []Problem{{Mount: "/var/lib/postgresql", Device: "nvme2n1", Msg: "is EBS volume " + volB + ", which DescribeInstances does not list"}},
		},
		{
			name: "VolumesOverrideMatch", file: "lvm.txt",
			opts:   Options{Volumes: []string{volB, volA, volA}},
			freeze: []string{"/var/lib/postgresql"}, volumes: []string{volA, volB},
		},
		{
			name: "VolumesOverrideMissing", file: "lvm.txt",
			opts:     Options{Chosen: []string{"/var/lib/postgresql"}, Volumes: []string{volA}},
			freeze:   []string{"/var/lib/postgresql"},
			volumes:  []string{volA, volB},
			problems: []Problem{{Mount: "/var/lib/postgresql", Volume: volB, Msg: "backs this filesystem but is not listed in volumes="}},
		},
		{
			name: "VolumesOverrideExtra", file: "lvm.txt",
			opts:     Options{Volumes: []string{volA, volB, volC}},
			freeze:   []string{"/var/lib/postgresql"},
			volumes:  []string{volA, volB},
			problems: []Problem{{Volume: volC, Msg: "is listed in volumes= but discovery finds it behind none"}},
		},
		{
			name: "MDRaid0UnderCrypt", file: "md.txt",
			freeze: []string{"/data"}, volumes: []string{volC, volD},
		},
		{
			name: "PartitionedClosureFreeze", file: "partitioned.txt",
			opts:   Options{Chosen: []string{"/data"}},
			freeze: []string{"/data", "/srv"}, volumes: []string{volF},
			why: map[string]string{"/data": "chosen", "/srv": "closure: shares " + volF + " with /data"},
		},
		{
			name: "PartitionedClosureFail", file: "partitioned.txt",
			opts:     Options{Chosen: []string{"/data"}, Closure: ClosureFail},
			freeze:   []string{"/data"},
			volumes:  []string{volF},
			problems: []Problem{{Mount: "/srv", Volume: volF, Msg: `shares the volume with /data but was not chosen, and closure is "fail"`}},
		},
		{
			name: "PartitionedBothChosenClosureFail", file: "partitioned.txt",
			opts:   Options{Chosen: []string{"/srv", "/data"}, Closure: ClosureFail},
			freeze: []string{"/data", "/srv"}, volumes: []string{volF},
		},
		{
			name: "PartitionedDefault", file: "partitioned.txt",
			opts:   Options{Closure: ClosureFail},
			freeze: []string{"/data", "/srv"}, volumes: []string{volF},
			why: map[string]string{"/data": "default", "/srv": "default"},
		},
		{
			name: "BindDefaultOncePerSuperblock", file: "bind.txt",
			freeze: []string{"/data", "/home"}, volumes: []string{volE1, volE2},
		},
		{
			name: "BindChosenThroughBind", file: "bind.txt",
			opts:   Options{Chosen: []string{"/srv/www", "/data", "/mnt/data"}},
			freeze: []string{"/srv/www"}, volumes: []string{volE1},
		},
		{
			name: "BtrfsSubvolumesOnce", file: "bind.txt",
			opts:   Options{Chosen: []string{"/home", "/var/snap"}, Closure: ClosureFail},
			freeze: []string{"/home"}, volumes: []string{volE2},
		},
		{
			name: "NestedDeepestFirst", file: "nested.txt",
			freeze:  []string{"/data/logs/archive", "/data/logs", "/data"},
			volumes: []string{volN1, volN2, volN3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := loadHost(t, tt.file)
			maps := tt.maps
			if maps == nil {
				maps = fixtureMaps[tt.file]
			}
			p, err := Resolve(h, maps, tt.opts)
			what := "Resolve(" + tt.file + ", " + tt.name + ")"
			if p == nil {
				t.Fatalf("%s = nil plan, %v; want a plan", what, err)
			}
			var pe *PlanError
			if (len(tt.problems) > 0) != errors.As(err, &pe) {
				t.Errorf("%s error = %v, want a *PlanError: %v", what, err, len(tt.problems) > 0)
			}
			checkProblems(t, what, p.Problems, tt.problems)
			checkStrings(t, what+".Freeze", p.Freeze, tt.freeze)
			checkStrings(t, what+".Volumes", p.Volumes, tt.volumes)
			for i, m := range p.Mounts {
				if i < len(p.Freeze) && m.Target != p.Freeze[i] {
					t.Errorf("%s.Mounts[%d].Target = %q, want Freeze[%d] %q", what, i, m.Target, i, p.Freeze[i])
				}
			}
			for target, why := range tt.why {
				m, ok := findPlanned(p.Mounts, target)
				if !ok || !strings.Contains(m.Why, why) {
					t.Errorf("%s why of %s = %q (planned %v), want %q", what, target, m.Why, ok, why)
				}
			}
		})
	}
}
