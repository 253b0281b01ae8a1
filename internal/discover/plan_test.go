package discover

import (
	"errors"
	"strings"
	"testing"
)

func TestResolveSkipped(t *testing.T) {
	// The default on nitro.txt leaves out /, what shares its volume, and
	// everything that is not a freezable filesystem backed only by EBS.
	h := loadHost(t, "nitro.txt")
	p, err := Resolve(h, fixtureMaps["nitro.txt"], Options{})
	if err != nil {
		t.Fatalf("Resolve(nitro.txt, default) = %v, want no error", err)
	}
	want := map[string]string{
		"/":                                    "is the root filesystem, frozen only with allow-root-freeze",
		"/boot":                                "not chosen by default: shares " + nitroRoot + " with /, which is the root filesystem",
		"/boot/efi":                            "is vfat, which does not support fsfreeze",
		"/scratch":                             "is not backed only by EBS: disk nvme2n1 is NVMe instance store",
		"/tmp":                                 "is tmpfs, a memory filesystem",
		"/dev":                                 "is devtmpfs, a memory filesystem",
		"/mnt/efs":                             "is nfs4, a network filesystem",
		"/var/lib/docker/overlay2/3f1c/merged": "is overlay",
		"/snap/core/123":                       "is squashfs, a read-only image",
	}
	for target, why := range want {
		m, ok := findPlanned(p.Skipped, target)
		if !ok || !strings.Contains(m.Why, why) {
			t.Errorf("Resolve(nitro.txt, default) skipped %s = %q (listed %v), want %q", target, m.Why, ok, why)
		}
	}
	for _, pseudo := range []string{"/proc", "/sys", "/sys/fs/cgroup", "/dev/pts"} {
		if _, ok := findPlanned(p.Skipped, pseudo); ok {
			t.Errorf("Resolve(nitro.txt, default) skipped lists %s, want kernel pseudo filesystems left out", pseudo)
		}
	}
}

func TestResolvePlannedMounts(t *testing.T) {
	tests := []struct {
		name, file string
		opts       Options
		want       []PlannedMount
	}{
		{"LVM", "lvm.txt", Options{}, []PlannedMount{{
			Target: "/var/lib/postgresql", FSType: "xfs", Source: "/dev/mapper/data-db",
			Disks: []string{"nvme1n1", "nvme2n1"}, Volumes: []string{volA, volB}, Why: "default",
		}}},
		{"MD", "md.txt", Options{Chosen: []string{"/data"}}, []PlannedMount{{
			Target: "/data", FSType: "ext4", Source: "/dev/mapper/cryptdata",
			Disks: []string{"nvme1n1", "nvme2n1"}, Volumes: []string{volC, volD}, Why: "chosen",
		}}},
		{"Bind", "bind.txt", Options{}, []PlannedMount{{
			Target: "/data", FSType: "xfs", Source: "/dev/nvme1n1", Aliases: []string{"/srv/www", "/mnt/data"},
			Disks: []string{"nvme1n1"}, Volumes: []string{volE1}, Why: "default",
		}, {
			Target: "/home", FSType: "btrfs", Source: "/dev/nvme2n1", Aliases: []string{"/var/snap"},
			Disks: []string{"nvme2n1"}, Volumes: []string{volE2}, Why: "default",
		}}},
		{"BindThroughBind", "bind.txt", Options{Chosen: []string{"/srv/www"}}, []PlannedMount{{
			Target: "/srv/www", FSType: "xfs", Source: "/dev/nvme1n1", Aliases: []string{"/data", "/mnt/data"},
			Disks: []string{"nvme1n1"}, Volumes: []string{volE1}, Why: "chosen",
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Resolve(loadHost(t, tt.file), fixtureMaps[tt.file], tt.opts)
			if err != nil {
				t.Fatalf("Resolve(%s) = %v, want no error", tt.file, err)
			}
			if len(p.Mounts) != len(tt.want) {
				t.Fatalf("Resolve(%s).Mounts = %+v, want %+v", tt.file, p.Mounts, tt.want)
			}
			for i, w := range tt.want {
				if !equalPlanned(p.Mounts[i], w) {
					t.Errorf("Resolve(%s).Mounts[%d] = %+v, want %+v", tt.file, i, p.Mounts[i], w)
				}
			}
		})
	}
}

func equalPlanned(a, b PlannedMount) bool {
	return a.Target == b.Target && a.FSType == b.FSType && a.Source == b.Source &&
		strings.Join(a.Aliases, ",") == strings.Join(b.Aliases, ",") &&
		strings.Join(a.Disks, ",") == strings.Join(b.Disks, ",") &&
		strings.Join(a.Volumes, ",") == strings.Join(b.Volumes, ",") && a.Why == b.Why
}

func TestResolveMDMemberInstanceStore(t *testing.T) {
	// One RAID member on instance store: the array cannot be captured.
	h := loadHost(t, "md.txt")
	h.Devices["nvme2n1"].Model = modelInstanceStore
	h.Devices["nvme2n1"].Serial = "AWS22222222222222222"

	p, err := Resolve(h, fixtureMaps["md.txt"], Options{Chosen: []string{"/data"}})
	checkProblems(t, "Resolve(md.txt, chosen /data)", p.Problems, []Problem{
		{Mount: "/data", Device: "nvme2n1", Msg: "is NVMe instance store"},
	})
	var pe *PlanError
	if !errors.As(err, &pe) || len(pe.Problems) != 1 {
		t.Errorf("Resolve(md.txt, chosen /data) error = %v, want a *PlanError with 1 problem", err)
	}

	p, _ = Resolve(h, fixtureMaps["md.txt"], Options{})
	checkProblems(t, "Resolve(md.txt, default)", p.Problems, []Problem{
		{Msg: "found no filesystem backed only by this instance's EBS volumes"},
	})
}

func TestResolveReadOnlyNotPulledIn(t *testing.T) {
	// A read-only filesystem cannot change: closure leaves it alone.
	h := loadHost(t, "partitioned.txt")
	for i := range h.Mounts {
		if h.Mounts[i].Target == "/srv" {
			h.Mounts[i].Options = "ro,relatime"
		}
	}
	p, err := Resolve(h, fixtureMaps["partitioned.txt"], Options{Chosen: []string{"/data"}, Closure: ClosureFail})
	if err != nil {
		t.Fatalf("Resolve(partitioned.txt, /srv read-only) = %v, want no error", err)
	}
	checkStrings(t, "Resolve(partitioned.txt, /srv read-only).Freeze", p.Freeze, []string{"/data"})
	if m, ok := findPlanned(p.Skipped, "/srv"); !ok || !strings.HasPrefix(m.Why, "read-only, shares "+volF+" with /data") {
		t.Errorf("Resolve(partitioned.txt, /srv read-only) skipped /srv = %q, want read-only", m.Why)
	}
}

// inlineHost builds a Host by hand: each disk is an EBS NVMe disk whose
// serial is its volume.
func inlineHost(mounts []Mount, devs ...*Device) *Host {
	h := &Host{Mounts: mounts, Devices: map[string]*Device{}}
	for _, d := range devs {
		h.Devices[d.KName] = d
	}
	return h
}

func ebsDisk(kname, majmin, vol string) *Device {
	return &Device{KName: kname, Name: kname, Path: "/dev/" + kname, Type: "disk",
		MajMin: majmin, Model: modelEBS, Serial: strings.ReplaceAll(vol, "-", "")}
}

func TestResolveClosureTransitive(t *testing.T) {
	// /a on volume A; /ab an LV over A and B; /b on B: choosing /a
	// freezes all three and snapshots both volumes.
	h := inlineHost([]Mount{
		{Target: "/a", Source: "/dev/nvme1n1p1", FSType: "ext4", MajMin: "259:10", Options: "rw"},
		{Target: "/ab", Source: "/dev/mapper/vg-ab", FSType: "xfs", MajMin: "253:0", Options: "rw"},
		{Target: "/b", Source: "/dev/nvme2n1p2", FSType: "ext4", MajMin: "259:21", Options: "rw"},
	},
		ebsDisk("nvme1n1", "259:1", volA), ebsDisk("nvme2n1", "259:2", volB),
		&Device{KName: "nvme1n1p1", Type: "part", MajMin: "259:10", Parents: []string{"nvme1n1"}},
		&Device{KName: "nvme1n1p2", Type: "part", MajMin: "259:11", Parents: []string{"nvme1n1"}},
		&Device{KName: "nvme2n1p1", Type: "part", MajMin: "259:20", Parents: []string{"nvme2n1"}},
		&Device{KName: "nvme2n1p2", Type: "part", MajMin: "259:21", Parents: []string{"nvme2n1"}},
		&Device{KName: "dm-0", Name: "vg-ab", Type: "lvm", MajMin: "253:0", Parents: []string{"nvme1n1p2", "nvme2n1p1"}},
	)
	maps := []Mapping{{"/dev/sdf", volA, false}, {"/dev/sdg", volB, false}}

	p, err := Resolve(h, maps, Options{Chosen: []string{"/a"}})
	if err != nil {
		t.Fatalf("Resolve(chain, /a) = %v, want no error", err)
	}
	checkStrings(t, "Resolve(chain, /a).Freeze", p.Freeze, []string{"/a", "/ab", "/b"})
	checkStrings(t, "Resolve(chain, /a).Volumes", p.Volumes, []string{volA, volB})
	if m, _ := findPlanned(p.Mounts, "/b"); m.Why != "closure: shares "+volB+" with /ab" {
		t.Errorf("Resolve(chain, /a) why of /b = %q, want closure through /ab", m.Why)
	}

	p, _ = Resolve(h, maps, Options{Chosen: []string{"/a"}, Closure: ClosureFail})
	checkProblems(t, "Resolve(chain, /a, fail)", p.Problems, []Problem{
		{Mount: "/ab", Volume: volA, Msg: "shares the volume with /a but was not chosen"},
	})
}

func TestResolveHiddenMount(t *testing.T) {
	// Two filesystems mounted on /data in turn: a path reaches only the
	// later one, so that is the one chosen.
	h := inlineHost([]Mount{
		{Target: "/data", Source: "/dev/nvme1n1", FSType: "ext4", MajMin: "259:1", Options: "rw"},
		{Target: "/data", Source: "/dev/nvme2n1", FSType: "ext4", MajMin: "259:2", Options: "rw"},
	}, ebsDisk("nvme1n1", "259:1", volA), ebsDisk("nvme2n1", "259:2", volB))
	maps := []Mapping{{"/dev/sdf", volA, false}, {"/dev/sdg", volB, false}}

	p, err := Resolve(h, maps, Options{Chosen: []string{"/data"}})
	if err != nil {
		t.Fatalf("Resolve(stacked /data) = %v, want no error", err)
	}
	checkStrings(t, "Resolve(stacked /data).Volumes", p.Volumes, []string{volB})

	p, _ = Resolve(h, maps, Options{})
	checkStrings(t, "Resolve(stacked /data, default).Volumes", p.Volumes, []string{volB})
}

func TestResolveClosureMode(t *testing.T) {
	_, err := Resolve(&Host{}, nil, Options{Closure: "thaw"})
	if !errors.Is(err, ErrClosureMode) {
		t.Errorf("Resolve(closure thaw) = %v, want ErrClosureMode", err)
	}
}

func TestPlanErrorMessage(t *testing.T) {
	e := &PlanError{Problems: []Problem{
		{Mount: "/data", Device: "nvme2n1", Msg: "is NVMe instance store"},
		{Volume: volC, Msg: "is listed in volumes="},
	}}
	want := "discover: mount /data: disk nvme2n1: is NVMe instance store; volume " + volC + ": is listed in volumes="
	if got := e.Error(); got != want {
		t.Errorf("PlanError.Error() = %q, want %q", got, want)
	}
}

func TestResolveBrokenTree(t *testing.T) {
	// A device tree that leads to no whole disk, or to one lsblk did not
	// list, is refused rather than frozen with nothing to snapshot.
	mounts := []Mount{
		{Target: "/loop", Source: "/dev/mapper/x", FSType: "ext4", MajMin: "253:0", Options: "rw"},
		{Target: "/gone", Source: "/dev/mapper/y", FSType: "ext4", MajMin: "253:1", Options: "rw"},
		{Target: "/nodev", Source: "/dev/sdz", FSType: "ext4", MajMin: "8:99", Options: "rw"},
	}
	h := inlineHost(mounts,
		&Device{KName: "dm-0", Name: "x", Type: "lvm", MajMin: "253:0", Parents: []string{"dm-0"}},
		&Device{KName: "dm-1", Name: "y", Type: "lvm", MajMin: "253:1", Parents: []string{"sdq"}},
	)
	p, err := Resolve(h, []Mapping{{"/dev/sdf", volA, false}}, Options{Chosen: []string{"/loop", "/gone", "/nodev"}})
	if err == nil {
		t.Errorf("Resolve(broken tree) = nil error, want a *PlanError")
	}
	checkProblems(t, "Resolve(broken tree)", p.Problems, []Problem{
		{Mount: "/loop", Msg: "is on /dev/mapper/x, which lsblk shows on no whole disk"},
		{Mount: "/gone", Device: "sdq", Msg: "is beneath dm-1 but lsblk does not list it"},
		{Mount: "/nodev", Msg: "is on /dev/sdz, which is not a block device lsblk lists"},
	})
}
