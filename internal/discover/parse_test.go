package discover

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestCommandLocal runs Command with /bin/sh on this machine, as the
// agent's host would, and parses what the real findmnt and lsblk print.
func TestCommandLocal(t *testing.T) {
	if _, err := exec.LookPath("lsblk"); err != nil {
		t.Skip("lsblk is not installed (util-linux)")
	}
	var stderr strings.Builder
	cmd := exec.Command("/bin/sh", "-c", Command())
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run Command() = %v (stderr %q), want success", err, stderr.String())
	}

	h, err := Parse(out)
	if err != nil {
		t.Fatalf("Parse(local output) = %v, want no error; output:\n%s", err, out)
	}
	if !slices.ContainsFunc(h.Mounts, func(m Mount) bool { return m.Target == "/" }) {
		t.Errorf("Parse(local output).Mounts = %v, want a mount at /", h.Mounts)
	}
	for k, d := range h.Devices {
		if d.KName != k {
			t.Errorf("Parse(local output).Devices[%q].KName = %q, want %q", k, d.KName, k)
		}
		for _, p := range d.Parents {
			if h.Devices[p] == nil {
				t.Errorf("Parse(local output).Devices[%q].Parents has %q, want a listed device", k, p)
			}
		}
	}
}

// TestCommandReadOnly checks the script can be single-quoted and writes
// to no file: its only redirection discards lsblk's complaint about a
// column an older version lacks.
func TestCommandReadOnly(t *testing.T) {
	c := Command()
	body, ok := strings.CutPrefix(c, "exec /bin/sh -c '")
	if !ok || !strings.HasSuffix(body, "'") || strings.Contains(strings.TrimSuffix(body, "'"), "'") {
		t.Fatalf("Command() = %q, want exec /bin/sh -c '…' with no quote inside", c)
	}
	rest := strings.ReplaceAll(body, "2>/dev/null", "")
	if strings.ContainsAny(rest, "><") || strings.Contains(rest, "tee") {
		t.Errorf("Command() = %q, want no redirection but 2>/dev/null", c)
	}
}

func TestParseFixtures(t *testing.T) {
	// Each case checks what a fixture's shape exercises in Parse; the
	// fixtures say in resolve_test.go where their shapes come from.
	tests := []struct {
		file, kname string
		want        Device
		mounts      int
	}{
		// lsblk 2.37+: MOUNTPOINTS array, PATH; sysfs padding trimmed.
		{"nitro.txt", "nvme0n1p1", Device{Name: "nvme0n1p1", KName: "nvme0n1p1", Path: "/dev/nvme0n1p1", Type: "part", MajMin: "259:1", FSType: "xfs", UUID: "a1", MountPoints: []string{"/"}, Parents: []string{"nvme0n1"}}, 18},
		{"nitro.txt", "nvme2n1", Device{Name: "nvme2n1", KName: "nvme2n1", Path: "/dev/nvme2n1", Type: "disk", Serial: "AWS1B2C3D4E5F6A7B8C9", Model: "Amazon EC2 NVMe Instance Storage", MajMin: "259:5", FSType: "ext4", UUID: "c1", MountPoints: []string{"/scratch"}}, 18},
		// lsblk 2.30: MOUNTPOINT string, no PATH column.
		{"xen.txt", "xvdf", Device{Name: "xvdf", KName: "xvdf", Path: "/dev/xvdf", Type: "disk", MajMin: "202:80", FSType: "ext4", UUID: "x3", MountPoints: []string{"/data"}}, 12},
		// An LV over two PVs appears under both; one device, two parents.
		{"lvm.txt", "dm-0", Device{Name: "data-db", KName: "dm-0", Path: "/dev/mapper/data-db", Type: "lvm", MajMin: "253:0", FSType: "xfs", UUID: "lv1", MountPoints: []string{"/var/lib/postgresql"}, Parents: []string{"nvme1n1p1", "nvme2n1p1"}}, 11},
		// A partition lsblk repeats under two LVs keeps one parent.
		{"lvm.txt", "nvme2n1p1", Device{Name: "nvme2n1p1", KName: "nvme2n1p1", Path: "/dev/nvme2n1p1", Type: "part", MajMin: "259:5", FSType: "LVM2_member", UUID: "pv2", Parents: []string{"nvme2n1"}}, 11},
		// No udev: serial and model only from sysfs.
		{"md.txt", "nvme2n1", Device{Name: "nvme2n1", KName: "nvme2n1", Path: "/dev/nvme2n1", Type: "disk", Serial: "vol0000000000000000d", Model: "Amazon Elastic Block Store", MajMin: "259:3", FSType: "linux_raid_member", UUID: "md1"}, 11},
		{"md.txt", "md0", Device{Name: "md0", KName: "md0", Path: "/dev/md0", Type: "raid0", MajMin: "9:0", FSType: "crypto_LUKS", UUID: "luks1", Parents: []string{"nvme1n1", "nvme2n1"}}, 11},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".txt")+"_"+tt.kname, func(t *testing.T) {
			h := loadHost(t, tt.file)
			if len(h.Mounts) != tt.mounts {
				t.Errorf("Parse(%s) has %d mounts, want %d", tt.file, len(h.Mounts), tt.mounts)
			}
			d := h.Devices[tt.kname]
			if d == nil {
				t.Fatalf("Parse(%s).Devices[%q] = nil, want a device", tt.file, tt.kname)
			}
			if !equalDevice(*d, tt.want) {
				t.Errorf("Parse(%s).Devices[%q] = %+v, want %+v", tt.file, tt.kname, *d, tt.want)
			}
		})
	}
}

func equalDevice(a, b Device) bool {
	return a.Name == b.Name && a.KName == b.KName && a.Path == b.Path &&
		a.Type == b.Type && a.Serial == b.Serial && a.Model == b.Model &&
		a.MajMin == b.MajMin && a.FSType == b.FSType && a.UUID == b.UUID &&
		slices.Equal(a.MountPoints, b.MountPoints) && slices.Equal(a.Parents, b.Parents)
}

func TestParseBindSource(t *testing.T) {
	// findmnt appends "[/dir]" to the source of a bind mount or subvolume.
	h := loadHost(t, "bind.txt")
	want := map[string][2]string{
		"/srv/www": {"/dev/nvme1n1", "/www"},
		"/home":    {"/dev/nvme2n1", "/@home"},
	}
	for _, m := range h.Mounts {
		if w, ok := want[m.Target]; ok && (m.Source != w[0] || m.FSRoot != w[1]) {
			t.Errorf("Parse(bind.txt) mount %s = source %q fsroot %q, want %q %q", m.Target, m.Source, m.FSRoot, w[0], w[1])
		}
	}
}

const okFindmnt = `{"filesystems": [{"target": "/", "source": "/dev/vda", "fstype": "ext4", "maj:min": "254:0", "options": "rw", "fsroot": "/"}]}`

func frame(findmnt, fexit, lsblk, lexit string) string {
	return "@orchestrate-discover 1\n@findmnt\n" + findmnt + "\n@findmnt-exit " + fexit +
		"\n@lsblk mountpoints\n" + lsblk + "\n@lsblk-exit " + lexit + "\n@sysfs\n@end\n"
}

func TestParseErrors(t *testing.T) {
	okLsblk := `{"blockdevices": [{"name": "vda", "kname": "vda", "type": "disk", "maj:min": "254:0", "mountpoints": ["/"]}]}`
	tests := []struct {
		name, in, want string
	}{
		{"NoHeader", "hello\n", `no "@orchestrate-discover 1" header`},
		{"Truncated", strings.TrimSuffix(frame(okFindmnt, "0", okLsblk, "0"), "@end\n"), "truncated: no @end"},
		{"NoLsblk", "@orchestrate-discover 1\n@findmnt\n" + okFindmnt + "\n@findmnt-exit 0\n@end\n", "truncated: no @lsblk"},
		{"FindmntFailed", frame("", "1", okLsblk, "0"), "findmnt failed on the host (exit status 1)"},
		{"LsblkFailed", frame(okFindmnt, "0", "", "127"), "lsblk failed on the host (exit status 127)"},
		{"BadFindmntJSON", frame("{", "0", okLsblk, "0"), "discover: read findmnt output"},
		{"BadLsblkJSON", frame(okFindmnt, "0", `{"blockdevices": [{"kname": {}}]}`, "0"), "discover: read lsblk output"},
		{"NoKName", frame(okFindmnt, "0", `{"blockdevices": [{"name": "vda"}]}`, "0"), `a device without a kernel name (name "vda")`},
		{"NoTarget", frame(`{"filesystems": [{"source": "x"}]}`, "0", okLsblk, "0"), `a filesystem without a target (source "x")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) = %v, want error containing %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestParseDialects(t *testing.T) {
	// Shapes of lsblk JSON across util-linux versions: 2.27-2.32 print
	// every value as a string (booleans "0"/"1") and a single
	// "mountpoint"; 2.33+ print true/false and numbers; 2.37+ print a
	// "mountpoints" array with null for an unmounted device. Banner lines
	// a login shell prints before the header are ignored.
	tests := []struct {
		name, lsblk string
		want        []string
	}{
		{"OldStrings", `{"blockdevices": [{"name": "xvda", "kname": "xvda", "maj:min": "202:0", "rm": "0", "ro": "0", "type": "disk", "mountpoint": "/"}]}`, []string{"/"}},
		{"Booleans", `{"blockdevices": [{"name": "xvda", "kname": "xvda", "maj:min": "202:0", "rm": false, "size": 8589934592, "type": "disk", "mountpoint": null}]}`, nil},
		{"Array", `{"blockdevices": [{"name": "xvda", "kname": "xvda", "maj:min": "202:0", "type": "disk", "mountpoints": ["/", null, "/srv"]}]}`, []string{"/", "/srv"}},
		{"ArrayOfNull", `{"blockdevices": [{"name": "xvda", "kname": "xvda", "maj:min": "202:0", "type": "disk", "mountpoints": [null]}]}`, nil},
		{"NumberAsText", `{"blockdevices": [{"name": "xvda", "kname": "xvda", "maj:min": "202:0", "type": "disk", "mountpoints": "/x"}]}`, []string{"/x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := "Welcome to Ubuntu\n" + frame(okFindmnt, "0", tt.lsblk, "0")
			h, err := Parse([]byte(in))
			if err != nil {
				t.Fatalf("Parse(%s) = %v, want no error", tt.name, err)
			}
			d := h.Devices["xvda"]
			if d == nil || d.Type != "disk" || d.MajMin != "202:0" || d.Path != "/dev/xvda" {
				t.Fatalf("Parse(%s).Devices[xvda] = %+v, want disk 202:0 at /dev/xvda", tt.name, d)
			}
			checkStrings(t, "Parse("+tt.name+").MountPoints", d.MountPoints, tt.want)
		})
	}
}
