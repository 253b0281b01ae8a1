// Package e2e runs the built orchestrate binary against a real OpenSSH sshd
// on loopback, real ext4 and xfs filesystems on loop devices, real
// fsfreeze, a non-root user with sudo, and the EC2 emulator in this
// process. It needs root; elsewhere it skips and says why, and under CI
// (CI=true) a skip is a failure, so a missing install step cannot hide.
//
// The tests share one rig (sshd, users, filesystems) and run one at a
// time; each has its own emulator and hosts file.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orchestrate-dev/orchestrate/internal/ec2sim"
	"github.com/orchestrate-dev/orchestrate/test/rig"
)

const (
	testRegion = "us-east-1"
	accessKey  = "AKIAE2ETESTKEY000001"
	secretKey  = "e2e-secret-key-not-for-anything-real-000"
)

// world is what every test shares.
var world struct {
	skip  string // why the tests skip, if they do
	bin   string // the orchestrate binary
	rig   *rig.Rig
	sshd  *rig.SSHD
	user  *rig.User // NOPASSWD sudo
	pwd   *rig.User // sudo wants a password
	hosts []*testHost
}

// testHost is one "instance": an address of the sshd and its filesystems.
type testHost struct {
	addr     string // 127.0.0.N
	instance string
	rootVol  string
	fss      []*rig.FS
	vols     []string // volume IDs of fss, in order
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := func() int {
		if err := setup(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: setup failed:", err)
			teardown()
			return 1
		}
		defer teardown()
		return m.Run()
	}()
	os.Exit(code)
}

// needWorld skips (or under CI fails) when the rig could not be set up.
func needWorld(t testing.TB) {
	t.Helper()
	if world.skip == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("e2e: %s (CI=true: a skip is a failure here)", world.skip)
	}
	t.Skip("e2e: " + world.skip)
}

func setup() error {
	if os.Geteuid() != 0 {
		world.skip = "needs root (real sshd, users, loop devices, fsfreeze); run `make test` as root"
		return nil
	}
	if err := rig.CheckTools(); err != nil {
		world.skip = err.Error()
		return nil
	}
	if testing.Short() {
		world.skip = "skipped with -short"
		return nil
	}

	r, err := rig.New("")
	if err != nil {
		return err
	}
	world.rig = r
	if os.Getenv("E2E_VERBOSE") != "" {
		r.Logf = func(f string, a ...any) { fmt.Fprintf(os.Stderr, "rig: "+f+"\n", a...) }
	}
	if world.bin, err = buildOrchestrate(r.Dir); err != nil {
		return err
	}
	if world.user, err = r.AddUser("oe2e"+randHex(6), rig.SudoNoPassword); err != nil {
		return err
	}
	if world.pwd, err = r.AddUser("oe2epw"+randHex(6), rig.SudoPassword); err != nil {
		return err
	}

	// Three hosts: ext4, xfs, and two ext4 volumes on one instance.
	layout := [][]string{{"ext4"}, {"xfs"}, {"ext4", "ext4"}}
	var addrs []string
	for i, kinds := range layout {
		h := &testHost{addr: fmt.Sprintf("127.0.0.%d", i+2),
			instance: "i-" + randHex(17), rootVol: "vol-" + randHex(17)}
		for j, kind := range kinds {
			size := 64
			if kind == "xfs" {
				size = rig.MinXFSMiB
			}
			fs, err := r.MakeFS(kind, size, filepath.Join(r.Dir, "mnt", fmt.Sprintf("h%d-%d", i+1, j+1)))
			if err != nil {
				return err
			}
			h.fss = append(h.fss, fs)
			h.vols = append(h.vols, "vol-"+randHex(17))
		}
		world.hosts = append(world.hosts, h)
		addrs = append(addrs, h.addr)
	}
	world.sshd, err = r.StartSSHD(addrs, []*rig.User{world.user, world.pwd})
	return err
}

func teardown() {
	if world.rig != nil {
		if err := world.rig.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: teardown:", err)
		}
	}
}

func buildOrchestrate(dir string) (string, error) {
	bin := filepath.Join(dir, "orchestrate")
	cmd := exec.Command("go", "build", "-o", bin,
		"github.com/orchestrate-dev/orchestrate/cmd/orchestrate")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build orchestrate: %v\n%s", err, out)
	}
	return bin, nil
}

func randHex(n int) string {
	b := make([]byte, (n+1)/2)
	rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// fixture describes world's hosts to the emulator: each instance has a root
// volume without bytes and one volume per filesystem, backed by its image.
func fixture() *ec2sim.Fixture {
	f := &ec2sim.Fixture{Region: testRegion,
		Credentials: []ec2sim.Credential{{AccessKeyID: accessKey, SecretAccessKey: secretKey}}}
	for _, h := range world.hosts {
		inst := ec2sim.Instance{ID: h.instance, RootDeviceName: "/dev/xvda",
			AvailabilityZone: testRegion + "a", PrivateIP: h.addr,
			Tags: map[string]string{"backup": "e2e"}}
		inst.BlockDeviceMappings = append(inst.BlockDeviceMappings,
			ec2sim.Mapping{DeviceName: "/dev/xvda", VolumeID: h.rootVol})
		f.Volumes = append(f.Volumes, ec2sim.Volume{ID: h.rootVol, SizeGiB: 8,
			AvailabilityZone: testRegion + "a", VolumeType: "gp3"})
		for j, fs := range h.fss {
			// The device name is the loop device's, so that discovery on
			// the host matches it by name, as it would /dev/xvdf on Xen.
			inst.BlockDeviceMappings = append(inst.BlockDeviceMappings, ec2sim.Mapping{
				DeviceName: fs.Device, VolumeID: h.vols[j]})
			f.Volumes = append(f.Volumes, ec2sim.Volume{ID: h.vols[j], SizeGiB: 1,
				AvailabilityZone: testRegion + "a", VolumeType: "gp3", BackingFile: fs.Image})
		}
		f.Instances = append(f.Instances, inst)
	}
	return f
}

// emulator starts an emulator on loopback for one test.
func emulator(t testing.TB) (*ec2sim.Server, string) {
	t.Helper()
	srv, err := ec2sim.New(fixture(), ec2sim.Options{SnapshotDir: t.TempDir(),
		CompleteAfter: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return srv, ts.URL
}

// hostLine is the hosts-file line for h, reached at dest.
func hostLine(h *testHost, dest string) string {
	var mounts []string
	for _, fs := range h.fss {
		mounts = append(mounts, fs.Mount)
	}
	return fmt.Sprintf("%s instance=%s mounts=%s volumes=%s", dest, h.instance,
		strings.Join(mounts, ","), strings.Join(h.vols, ","))
}

func writeHostsFile(t testing.TB, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hosts.txt")
	body := "# e2e hosts\n" + strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type result struct {
	stdout, stderr string
	code           int
}

// orchestrate runs the binary with the emulator's credentials in its
// environment (and nowhere else), isolated from any real AWS or SSH config.
func orchestrate(t testing.TB, endpoint string, args ...string) result {
	t.Helper()
	return orchestrateVerb(t, "run", endpoint, args...)
}

// orchestrateVerb is orchestrate for another command taking run's flags.
func orchestrateVerb(t testing.TB, verb, endpoint string, args ...string) result {
	t.Helper()
	home := t.TempDir()
	base := []string{verb, "--endpoint-url", endpoint, "--region", testRegion,
		"--known-hosts", world.sshd.KnownHostsPath, "-i", world.user.KeyPath,
		"--user", world.user.Name, "--port", fmt.Sprint(world.sshd.Port)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, world.bin, append(base, args...)...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"AWS_ACCESS_KEY_ID=" + accessKey, "AWS_SECRET_ACCESS_KEY=" + secretKey,
		"AWS_CONFIG_FILE=" + filepath.Join(home, "none"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none"),
		"AWS_EC2_METADATA_DISABLED=true",
		// The hosts are this machine: their identity probe must never
		// reach a real metadata address.
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + noMetadata,
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run orchestrate: %v", err)
	}
	t.Logf("orchestrate %s\nexit %d\nstdout:\n%s\nstderr:\n%s",
		strings.Join(args, " "), code, out.String(), errb.String())
	return result{out.String(), errb.String(), code}
}

// requireWritable fails the test unless every filesystem of the world takes
// a write within d.
func requireWritable(t testing.TB, d time.Duration) {
	t.Helper()
	for _, h := range world.hosts {
		for _, fs := range h.fss {
			if !fs.WriteProbe(d) {
				t.Errorf("%s (%s) is not writable after %v: still frozen?", fs.Mount, fs.Kind, d)
			}
		}
	}
}

// noMetadata is the metadata endpoint every e2e run gives the hosts: a
// closed loopback port, so an identity probe finds nothing and never
// reaches a real metadata address. Tests of identity pass their own.
const noMetadata = "http://127.0.0.1:1"
