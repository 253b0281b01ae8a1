package e2e

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orchestrate-dev/orchestrate/internal/ec2sim"
	"github.com/orchestrate-dev/orchestrate/internal/run"
	"github.com/orchestrate-dev/orchestrate/test/rig"
)

// sh runs a command as root for a test fixture, failing the test on error.
func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// partitionedDisk makes a loop disk with two ext4 partitions, mounted at
// dir/p1 and dir/p2, and undoes all of it (thawing first) in cleanup.
// The kernel here parses no partition tables: partx adds the partitions.
func partitionedDisk(t *testing.T, dir string) (dev, img string, mounts []string) {
	t.Helper()
	img = filepath.Join(dir, "parted.img")
	sh(t, "truncate", "-s", "160M", img)
	cmd := exec.Command("sfdisk", "-q", img)
	cmd.Stdin = strings.NewReader("label: dos\n,70M,L\n,,L\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	dev = sh(t, "losetup", "-f", "--show", "-P", img)
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	exec.Command("partx", "-a", dev).Run() // "already exists" is fine
	t.Cleanup(func() { exec.Command("partx", "-d", dev).Run() })
	for i := 1; i <= 2; i++ {
		part := fmt.Sprintf("%sp%d", dev, i)
		sh(t, "mkfs.ext4", "-q", "-F", part)
		m := filepath.Join(dir, fmt.Sprintf("p%d", i))
		os.MkdirAll(m, 0o755)
		sh(t, "mount", part, m)
		t.Cleanup(func() {
			exec.Command("fsfreeze", "-u", m).Run()
			exec.Command("umount", m).Run()
		})
		mounts = append(mounts, m)
	}
	return dev, img, mounts
}

// discoveryEmulator serves world's fixture plus one instance whose only
// data volumes are disks (loop devices) given by device name, so that
// discovery matches them by exact name.
func discoveryEmulator(t *testing.T, instance string, disks map[string]string) (*ec2sim.Server, string, map[string]string) {
	t.Helper()
	f := fixture()
	inst := ec2sim.Instance{ID: instance, RootDeviceName: "/dev/xvda",
		AvailabilityZone: testRegion + "a", PrivateIP: "127.0.0.2"}
	root := "vol-" + randHex(17)
	inst.BlockDeviceMappings = append(inst.BlockDeviceMappings,
		ec2sim.Mapping{DeviceName: "/dev/xvda", VolumeID: root})
	f.Volumes = append(f.Volumes, ec2sim.Volume{ID: root, SizeGiB: 8,
		AvailabilityZone: testRegion + "a", VolumeType: "gp3"})
	vols := map[string]string{} // device -> volume
	for dev, img := range disks {
		vol := "vol-" + randHex(17)
		vols[dev] = vol
		inst.BlockDeviceMappings = append(inst.BlockDeviceMappings,
			ec2sim.Mapping{DeviceName: dev, VolumeID: vol})
		f.Volumes = append(f.Volumes, ec2sim.Volume{ID: vol, SizeGiB: 1,
			AvailabilityZone: testRegion + "a", VolumeType: "gp3", BackingFile: img})
	}
	f.Instances = append(f.Instances, inst)
	srv, err := ec2sim.New(f, ec2sim.Options{SnapshotDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return srv, ts.URL, vols
}

// emulatorWithInstance is discoveryEmulator for a test that needs only
// the server's URL.
func emulatorWithInstance(t *testing.T, instance string, disks map[string]string) (*ec2sim.Server, string) {
	t.Helper()
	srv, url, _ := discoveryEmulator(t, instance, disks)
	return srv, url
}

// blockedAtCall records which of mounts refused a write while the
// instance's CreateSnapshots was being handled.
func blockedAtCall(srv *ec2sim.Server, instance string, mounts []string) map[string]bool {
	blocked := map[string]bool{}
	srv.OnCreateSnapshots(func(ev ec2sim.CreateEvent) {
		if ev.InstanceID != instance {
			return
		}
		for _, m := range mounts {
			blocked[m] = !(&rig.FS{Mount: m}).WriteProbe(300 * time.Millisecond)
		}
	})
	return blocked
}

func TestDiscoverPartitionedDiskFreezesBothFilesystems(t *testing.T) {
	begin(t)
	dir := t.TempDir()
	dev, img, mounts := partitionedDisk(t, dir)
	instance := "i-" + randHex(17)
	srv, url, vols := discoveryEmulator(t, instance, map[string]string{dev: img})
	blocked := blockedAtCall(srv, instance, mounts)

	tests := []struct {
		name, line string
	}{
		{"Default", "127.0.0.2 instance=" + instance},
		{"ClosureOfOnePartition", "127.0.0.2 instance=" + instance + " mounts=" + mounts[0]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clear(blocked)
			hostsFile := writeHostsFile(t, tt.line)
			plan := parseReport(t, orchestratePlan(t, url, hostsFile).stdout).Hosts[0]

			res := orchestrate(t, url, "--hosts", hostsFile, "--output", "json")
			if res.code != 0 {
				t.Fatalf("exit code = %d, want 0", res.code)
			}
			hr := parseReport(t, res.stdout).Hosts[0]
			want := slices.Sorted(slices.Values(mounts))
			if got := slices.Sorted(slices.Values(hr.Mounts)); !slices.Equal(got, want) {
				t.Errorf("frozen mounts = %v, want both partitions %v", hr.Mounts, want)
			}
			if !slices.Equal(hr.Volumes, []string{vols[dev]}) || len(hr.Snapshots) != 1 {
				t.Errorf("volumes %v snapshots %+v, want the one disk's volume %s", hr.Volumes, hr.Snapshots, vols[dev])
			}
			for _, m := range mounts {
				if !blocked[m] {
					t.Errorf("%s took a write during CreateSnapshots: not frozen", m)
				}
			}
			if !slices.Equal(plan.Mounts, hr.Mounts) || !slices.Equal(plan.Volumes, hr.Volumes) {
				t.Errorf("plan said freeze %v snapshot %v; run did %v and %v", plan.Mounts, plan.Volumes,
					hr.Mounts, hr.Volumes)
			}
		})
	}

	t.Run("ClosureFail", func(t *testing.T) {
		hostsFile := writeHostsFile(t, "127.0.0.2 instance="+instance+" mounts="+mounts[0])
		_, url := emulatorWithInstance(t, instance, map[string]string{dev: img})
		res := orchestrate(t, url, "--hosts", hostsFile, "--output", "json", "--closure", "fail")
		hr := parseReport(t, res.stdout).Hosts[0]
		if res.code != 1 || hr.FailedStep != run.StepDiscover || !strings.Contains(hr.Error, mounts[1]) {
			t.Errorf("exit %d, failed at %q: %s; want 1, discover, naming %s", res.code, hr.FailedStep, hr.Error, mounts[1])
		}
		if hr.FreezeWindowMS != nil || slices.ContainsFunc(hr.Steps, func(s run.Step) bool { return s.Name == run.StepFreeze }) {
			t.Errorf("host was frozen: %+v", hr.Steps)
		}
	})
}

func TestDiscoverTwoDisksBindAndNestedMounts(t *testing.T) {
	begin(t)
	// Under the rig's directory: the rig unmounts its filesystems, nested
	// one first, when the world is torn down.
	dir := filepath.Join(world.rig.Dir, "disc-"+randHex(6))
	outer, err := world.rig.MakeFS("ext4", 64, filepath.Join(dir, "outer"))
	if err != nil {
		t.Fatal(err)
	}
	inner, err := world.rig.MakeFS("ext4", 64, filepath.Join(outer.Mount, "nested"))
	if err != nil {
		t.Fatal(err)
	}
	// A bind mount of a directory of the outer filesystem: the same
	// superblock, to be frozen once.
	os.MkdirAll(filepath.Join(outer.Mount, "sub"), 0o755)
	bind := filepath.Join(dir, "bind")
	os.MkdirAll(bind, 0o755)
	sh(t, "mount", "--bind", filepath.Join(outer.Mount, "sub"), bind)
	t.Cleanup(func() {
		for _, fs := range []*rig.FS{inner, outer} {
			fs.Thaw()
		}
		exec.Command("umount", bind).Run()
		os.Remove(bind)
	})
	before := map[*rig.FS]map[string][]byte{}
	for _, fs := range []*rig.FS{outer, inner} {
		files := map[string][]byte{"kept/" + t.Name(): []byte(randHex(64))}
		if err := fs.WriteFiles(files); err != nil {
			t.Fatal(err)
		}
		before[fs] = files
	}

	instance := "i-" + randHex(17)
	srv, url, vols := discoveryEmulator(t, instance,
		map[string]string{outer.Device: outer.Image, inner.Device: inner.Image})
	hostsFile := writeHostsFile(t, "127.0.0.2 instance="+instance+" mounts="+bind+","+inner.Mount)

	res := orchestrate(t, url, "--hosts", hostsFile, "--output", "json")
	if res.code != 0 {
		t.Fatalf("exit code = %d, want 0", res.code)
	}
	hr := parseReport(t, res.stdout).Hosts[0]
	if len(hr.Mounts) != 2 || hr.Mounts[0] != inner.Mount {
		t.Errorf("frozen mounts = %v, want 2, the nested %s first", hr.Mounts, inner.Mount)
	}
	want := slices.Sorted(slices.Values([]string{vols[outer.Device], vols[inner.Device]}))
	if !slices.Equal(hr.Volumes, want) || len(hr.Snapshots) != 2 {
		t.Errorf("volumes %v snapshots %d, want %v in one call", hr.Volumes, len(hr.Snapshots), want)
	}
	creates := 0
	for _, c := range srv.Calls() {
		if c.Action == "CreateSnapshots" && !c.DryRun {
			creates++
		}
	}
	if creates != 1 {
		t.Errorf("CreateSnapshots calls = %d, want 1 for both volumes", creates)
	}
	for _, s := range hr.Snapshots {
		fs := outer
		if s.VolumeID == vols[inner.Device] {
			fs = inner
		}
		img := filepath.Join(t.TempDir(), s.SnapshotID+".img")
		if err := srv.ExportSnapshot(s.SnapshotID, img); err != nil {
			t.Fatal(err)
		}
		if err := rig.CheckImage(fs.Kind, img, t.TempDir(), before[fs]); err != nil {
			t.Errorf("snapshot %s of %s is not consistent: %v", s.SnapshotID, fs.Mount, err)
		}
	}
}

func TestDiscoverRefusesAnUnmappedDisk(t *testing.T) {
	begin(t)
	instance := "i-" + randHex(17)
	srv, url, _ := discoveryEmulator(t, instance, nil)
	// world.hosts[1]'s filesystem is on a loop disk this instance does not have.
	m := world.hosts[1].fss[0].Mount
	hostsFile := writeHostsFile(t, "127.0.0.2 instance="+instance+" mounts="+m)

	res := orchestrate(t, url, "--hosts", hostsFile, "--output", "json")
	hr := parseReport(t, res.stdout).Hosts[0]
	if res.code != 1 || hr.FailedStep != run.StepDiscover || !strings.Contains(hr.Error, m) {
		t.Errorf("exit %d failed at %q: %s; want 1 at discover naming %s", res.code, hr.FailedStep, hr.Error, m)
	}
	assertNeverFrozen(t, srv, hr)
}

// orchestratePlan runs `orchestrate plan` with the run flags of the world.
func orchestratePlan(t *testing.T, url, hostsFile string) result {
	t.Helper()
	return orchestrateVerb(t, "plan", url, "--hosts", hostsFile, "--output", "json")
}

// A filesystem mounted over a parent directory hides a chosen mount: the
// mount table still lists it, but its path now reaches the other
// filesystem. The agent must refuse rather than freeze the wrong one while
// the chosen one's volume is snapshotted live.
func TestDiscoverRefusesAMountHiddenByAnOvermountedParent(t *testing.T) {
	begin(t)
	dir := filepath.Join(world.rig.Dir, "over-"+randHex(6))
	chosen, err := world.rig.MakeFS("ext4", 64, filepath.Join(dir, "x", "sub"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := world.rig.MakeFS("ext4", 64, filepath.Join(dir, "other"))
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(other.Mount, "sub"), 0o755)
	over := filepath.Join(dir, "x")
	sh(t, "mount", "--bind", other.Mount, over) // hides x/sub
	t.Cleanup(func() {
		chosen.Thaw()
		other.Thaw()
		exec.Command("umount", over).Run()
	})

	instance := "i-" + randHex(17)
	srv, url, _ := discoveryEmulator(t, instance, map[string]string{chosen.Device: chosen.Image})
	hostsFile := writeHostsFile(t, "127.0.0.2 instance="+instance)

	res := orchestrate(t, url, "--hosts", hostsFile, "--output", "json")
	hr := parseReport(t, res.stdout).Hosts[0]
	if res.code != 1 || hr.Status != run.StatusFailed {
		t.Errorf("exit %d status %s, want 1 and failed", res.code, hr.Status)
	}
	if hr.FailedStep != run.StepDiscover && hr.FailedStep != run.StepPrepare {
		t.Errorf("failed at %q (%s), want discover or prepare", hr.FailedStep, hr.Error)
	}
	assertNeverFrozen(t, srv, hr)
	if !other.WriteProbe(5*time.Second) || !chosen.WriteProbe(5*time.Second) {
		t.Errorf("a filesystem is left frozen")
	}
}
