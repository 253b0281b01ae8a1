package e2e

// This file holds the hostile-input rows of the fault matrix: mount paths
// that a careless shell would run as code or read as options, paths that
// are not what they claim (a symlink to /, a plain directory, / itself)
// and a changed host key. No row runs with --allow-root-freeze, and the
// rows that name / use the shortest freeze timeout, so that even a
// regression would hold / frozen for seconds, not minutes.

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/orchestrate-dev/orchestrate/internal/ec2sim"
	"github.com/orchestrate-dev/orchestrate/internal/run"
	"github.com/orchestrate-dev/orchestrate/test/rig"
)

func init() {
	register(
		scenario{Name: "InputHostileMountPaths", Fault: "mount points with spaces, quotes, $(touch M), `touch M`, -rf and --help components",
			Step: "any", Expect: "whole job succeeds with --wait, snapshots consistent, no marker file created anywhere; exit 0", Run: testInputHostileMountPaths},
		scenario{Name: "InputSymlinkRefused", Fault: "a symlink to / given as a mount point",
			Step: "prepare", Expect: "that host failed at prepare, \"symlink\", nothing frozen; other succeeds; exit 1", Run: testInputSymlinkRefused},
		scenario{Name: "InputNotMountpointRefused", Fault: "a directory that is not a mount point",
			Step: "prepare", Expect: "that host failed at prepare, \"not a mount point\", nothing frozen; other succeeds; exit 1", Run: testInputNotMountpointRefused},
		scenario{Name: "InputRootRefused", Fault: "/ as a mount point without --allow-root-freeze",
			Step: "prepare", Expect: "that host failed at prepare naming --allow-root-freeze, / never frozen; other succeeds; exit 1", Run: testInputRootRefused},
		scenario{Name: "InputChangedHostKeyRefused", Fault: "known_hosts holds a different ed25519 key for the host, with --accept-new-host-keys",
			Step: "connect", Expect: "that host failed at connect, \"changed\", known_hosts unchanged, nothing frozen; other succeeds; exit 1", Run: testInputChangedHostKeyRefused},
	)
}

// hostileLine is the hosts-file line of h, its mounts escaped as the hosts
// file wants (\040 for a space, \134 for a backslash, \054 for a comma).
func hostileLine(h *testHost) string {
	esc := strings.NewReplacer(`\`, `\134`, " ", `\040`, ",", `\054`, "\t", `\011`)
	var mounts []string
	for _, fs := range h.fss {
		mounts = append(mounts, esc.Replace(fs.Mount))
	}
	return fmt.Sprintf("%s instance=%s mounts=%s volumes=%s", h.addr, h.instance,
		strings.Join(mounts, ","), strings.Join(h.vols, ","))
}

// emulatorWith starts an emulator knowing world's hosts and extra ones.
func emulatorWith(t *testing.T, extra ...*testHost) (*ec2sim.Server, string) {
	t.Helper()
	f := fixture()
	for _, h := range extra {
		inst := ec2sim.Instance{ID: h.instance, RootDeviceName: "/dev/xvda",
			AvailabilityZone: testRegion + "a", PrivateIP: h.addr}
		inst.BlockDeviceMappings = append(inst.BlockDeviceMappings,
			ec2sim.Mapping{DeviceName: "/dev/xvda", VolumeID: h.rootVol})
		f.Volumes = append(f.Volumes, ec2sim.Volume{ID: h.rootVol, SizeGiB: 8,
			AvailabilityZone: testRegion + "a", VolumeType: "gp3"})
		for j, fs := range h.fss {
			inst.BlockDeviceMappings = append(inst.BlockDeviceMappings, ec2sim.Mapping{
				DeviceName: fmt.Sprintf("/dev/sd%c", 'f'+j), VolumeID: h.vols[j]})
			f.Volumes = append(f.Volumes, ec2sim.Volume{ID: h.vols[j], SizeGiB: 1,
				AvailabilityZone: testRegion + "a", VolumeType: "gp3", BackingFile: fs.Image})
		}
		f.Instances = append(f.Instances, inst)
	}
	srv, err := ec2sim.New(f, ec2sim.Options{SnapshotDir: t.TempDir(),
		CompleteAfter: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return srv, ts.URL
}

func testInputHostileMountPaths(t *testing.T) {
	marker := "orch-hostile-" + randHex(8)
	base := filepath.Join(world.rig.Dir, "hostile-"+randHex(4))
	// Two instances on two of the sshd's addresses, three hostile mounts
	// each.
	paths := [][]string{
		{"with space/and  two", `it's "quoted"`, "$(touch " + marker + "-a)"},
		{"`touch " + marker + "-b`", "x/-rf", "--help"},
	}
	var hs []*testHost
	for i, ps := range paths {
		h := &testHost{addr: world.hosts[i].addr, instance: "i-" + randHex(17), rootVol: "vol-" + randHex(17)}
		for _, p := range ps {
			fs, err := world.rig.MakeFS("ext4", 64, filepath.Join(base, p))
			if err != nil {
				t.Fatalf("make a filesystem at %q: %v", filepath.Join(base, p), err)
			}
			t.Cleanup(func() { fs.Thaw() })
			h.fss = append(h.fss, fs)
			h.vols = append(h.vols, "vol-"+randHex(17))
		}
		hs = append(hs, h)
	}
	before := map[*rig.FS]map[string][]byte{}
	for _, h := range hs {
		for _, fs := range h.fss {
			files := map[string][]byte{"hostile/small.txt": []byte("before " + randHex(16) + "\n")}
			if err := fs.WriteFiles(files); err != nil {
				t.Fatal(err)
			}
			before[fs] = files
		}
	}
	srv, url := emulatorWith(t, hs...)
	hostsFile := writeHostsFile(t, hostileLine(hs[0]), hostileLine(hs[1]))

	res := orchestrate(t, url, "--hosts", hostsFile, "--output", "json", "--wait", "--tag", "purpose=e2e",
		"--freeze-timeout", procFreezeTimeout.String(), "--keepalive", procKeepalive.String())
	if res.code != 0 {
		t.Errorf("exit code = %d, want 0", res.code)
	}
	rep := parseReport(t, res.stdout)
	for _, h := range hs {
		hr := hostByInstance(t, rep, h.instance)
		requireSucceeded(t, hr)
		for j, fs := range h.fss {
			if j < len(hr.Mounts) && hr.Mounts[j] != fs.Mount {
				t.Errorf("report mount %d = %q, want %q", j, hr.Mounts[j], fs.Mount)
			}
		}
		checkSnapshots(t, srv, h, hr, before, rep.RunID)
	}
	for _, h := range hs {
		for _, fs := range h.fss {
			if !fs.WriteProbe(5 * time.Second) {
				t.Errorf("%q not writable after the run", fs.Mount)
			}
		}
	}

	// Wherever a shell could have run the payload.
	cwd, _ := os.Getwd()
	dirs := []string{world.user.Home, "/tmp", "/", cwd, "/root", "/run/orchestrate", base, world.rig.Dir}
	for _, h := range hs {
		for _, fs := range h.fss {
			dirs = append(dirs, fs.Mount, filepath.Dir(fs.Mount))
		}
	}
	for _, d := range dirs {
		if m, _ := filepath.Glob(filepath.Join(d, marker+"*")); len(m) > 0 {
			t.Errorf("marker files %q exist: a mount path ran as code", m)
		}
	}
	requireWritable(t, 5*time.Second)
}

// requireRefusedAtPrepare checks the host with instance id failed at
// prepare naming want, froze nothing, and that the other host succeeded.
func requireRefusedAtPrepare(t *testing.T, res result, id, want string) {
	t.Helper()
	if res.code != 1 {
		t.Errorf("exit code = %d, want 1", res.code)
	}
	rep := parseReport(t, res.stdout)
	for _, hr := range rep.Hosts {
		if hr.InstanceID != id {
			requireSucceeded(t, hr)
			continue
		}
		if hr.Status != run.StatusFailed || hr.FailedStep != run.StepPrepare || !strings.Contains(hr.Error, want) {
			t.Errorf("host %s = %q at %q: %q, want failed at prepare naming %q",
				hr.Destination, hr.Status, hr.FailedStep, hr.Error, want)
		}
		requireNoFreeze(t, hr)
	}
}

// refusedMountRun runs hosts[0] with mounts=mount (its volume unchanged)
// beside a normal hosts[1], with the shortest freeze timeout, and records
// every instance that reached CreateSnapshots.
func refusedMountRun(t *testing.T, mount string) (result, []string) {
	t.Helper()
	srv, url := emulator(t)
	var mu sync.Mutex
	var created []string
	srv.OnCreateSnapshots(func(ev ec2sim.CreateEvent) {
		mu.Lock()
		created = append(created, ev.InstanceID)
		mu.Unlock()
	})
	h0, h1 := world.hosts[0], world.hosts[1]
	line := fmt.Sprintf("%s instance=%s mounts=%s volumes=%s", h0.addr, h0.instance, mount, h0.vols[0])
	hostsFile := writeHostsFile(t, line, hostLine(h1, h1.addr))
	res := orchestrate(t, url, "--hosts", hostsFile, "--output", "json",
		"--freeze-timeout", "3s", "--keepalive", procKeepalive.String())
	mu.Lock()
	defer mu.Unlock()
	for _, id := range created {
		if id == h0.instance {
			t.Errorf("CreateSnapshots was called for the refused host %s", h0.instance)
		}
	}
	return res, created
}

func testInputSymlinkRefused(t *testing.T) {
	link := filepath.Join(t.TempDir(), "looks-like-a-mount")
	if err := os.Symlink("/", link); err != nil {
		t.Fatal(err)
	}
	res, _ := refusedMountRun(t, link)
	requireRefusedAtPrepare(t, res, world.hosts[0].instance, "symlink")
	requireWritable(t, 5*time.Second)
}

func testInputNotMountpointRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plain")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	res, _ := refusedMountRun(t, dir)
	requireRefusedAtPrepare(t, res, world.hosts[0].instance, "not a mount point")
	requireWritable(t, 5*time.Second)
}

func testInputRootRefused(t *testing.T) {
	res, _ := refusedMountRun(t, "/")
	requireRefusedAtPrepare(t, res, world.hosts[0].instance, "--allow-root-freeze")
	requireWritable(t, 5*time.Second)
}

func testInputChangedHostKeyRefused(t *testing.T) {
	srv, url := emulator(t)
	h0, h1 := world.hosts[0], world.hosts[1]
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	hp := func(h *testHost) string {
		return knownhosts.Normalize(fmt.Sprintf("%s:%d", h.addr, world.sshd.Port))
	}
	body := knownhosts.Line([]string{hp(h0)}, other) + "\n" +
		knownhosts.Line([]string{hp(h1)}, world.sshd.HostKeys[ssh.KeyAlgoED25519]) + "\n"
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	hostsFile := writeHostsFile(t, hostLine(h0, h0.addr), hostLine(h1, h1.addr))

	res := orchestrate(t, url, "--hosts", hostsFile, "--known-hosts", kh, "--accept-new-host-keys",
		"--output", "json", "--freeze-timeout", procFreezeTimeout.String(), "--keepalive", procKeepalive.String())
	if res.code != 1 {
		t.Errorf("exit code = %d, want 1", res.code)
	}
	rep := parseReport(t, res.stdout)
	hr := hostByInstance(t, rep, h0.instance)
	if hr.Status != run.StatusFailed || hr.FailedStep != run.StepConnect || !strings.Contains(hr.Error, "changed") {
		t.Errorf("host %s = %q at %q: %q, want failed at connect, host key changed", hr.Destination, hr.Status, hr.FailedStep, hr.Error)
	}
	requireNoFreeze(t, hr)
	requireSucceeded(t, hostByInstance(t, rep, h1.instance))
	if got, err := os.ReadFile(kh); err != nil || string(got) != body {
		t.Errorf("known_hosts changed by the run:\n%s\nwant:\n%s", got, body)
	}
	for _, s := range srv.Snapshots() {
		if s.Tags["orchestrate:instance-id"] == h0.instance {
			t.Errorf("snapshot %s was made of the refused host", s.ID)
		}
	}
	requireWritable(t, 5*time.Second)
}
