// Command demo rehearses the main job on this machine, as root: it starts a
// throwaway sshd on loopback, two loop-mounted filesystems (ext4 and xfs)
// playing two EC2 instances, and the ec2sim emulator; runs a real
// `orchestrate run` against them; prints the report; proves each snapshot
// image is a consistent filesystem holding the files written before the
// run; and removes every process, mount, user and file it made.
//
// It is what `make demo` runs. No traffic leaves loopback.
package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/orchestrate-dev/orchestrate/internal/ec2sim"
	"github.com/orchestrate-dev/orchestrate/test/rig"
)

const (
	region    = "us-east-1"
	accessKey = "AKIADEMOKEY000000001"
	secretKey = "demo-secret-key-for-the-local-emulator"
)

func main() {
	orch := flag.String("orchestrate", "bin/orchestrate", "orchestrate binary")
	sim := flag.String("ec2sim", "bin/ec2sim", "ec2sim binary")
	flag.Parse()
	if err := demo(*orch, *sim); err != nil {
		fmt.Fprintln(os.Stderr, "demo: error:", err)
		os.Exit(1)
	}
}

type demoHost struct {
	addr, instance, rootVol, vol string
	fs                           *rig.FS
	files                        map[string][]byte
}

func demo(orchBin, simBin string) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("the demo needs root (sshd, a user, loop devices, fsfreeze)")
	}
	if err := rig.CheckTools(); err != nil {
		return err
	}
	for _, b := range []string{orchBin, simBin} {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("%s not built: run `make build` first", b)
		}
	}
	r, err := rig.New("")
	if err != nil {
		return err
	}
	defer func() {
		step("cleaning up: thaw, unmount, detach loops, stop sshd and ec2sim, remove user")
		if cerr := r.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()

	name := "orchdemo" + hex17()[:4]
	step("creating user %s (passwordless sudo) and its SSH key", name)
	user, err := r.AddUser(name, rig.SudoNoPassword)
	if err != nil {
		return err
	}
	hosts := []*demoHost{{addr: "127.0.0.2"}, {addr: "127.0.0.3"}}
	for i, kind := range []string{"ext4", "xfs"} {
		h := hosts[i]
		h.instance, h.rootVol, h.vol = "i-"+hex17(), "vol-"+hex17(), "vol-"+hex17()
		size := 64
		if kind == "xfs" {
			size = rig.MinXFSMiB
		}
		step("host %s: %s filesystem on a loop device, as instance %s volume %s", h.addr, kind, h.instance, h.vol)
		h.fs, err = r.MakeFS(kind, size, filepath.Join(r.Dir, "mnt", "data"+fmt.Sprint(i+1)))
		if err != nil {
			return err
		}
		h.files = map[string][]byte{"app/state.db": []byte(strings.Repeat("row "+hex17()+"\n", 4096)),
			"app/journal.log": []byte("committed before the snapshot\n")}
		if err := h.fs.WriteFiles(h.files); err != nil {
			return err
		}
	}
	step("starting sshd on %s and %s (its own host keys, known_hosts, port)", hosts[0].addr, hosts[1].addr)
	sshd, err := r.StartSSHD([]string{hosts[0].addr, hosts[1].addr}, []*rig.User{user})
	if err != nil {
		return err
	}

	url, err := startEmulator(r, simBin, hosts)
	if err != nil {
		return err
	}

	hostsFile := filepath.Join(r.Dir, "hosts.txt")
	var lines []string
	for _, h := range hosts {
		lines = append(lines, fmt.Sprintf("%s  instance=%s mounts=%s volumes=%s", h.addr, h.instance, h.fs.Mount, h.vol))
	}
	if err := os.WriteFile(hostsFile, []byte("# demo hosts file\n"+strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Printf("\n--- %s\n%s\n", hostsFile, strings.Join(lines, "\n"))

	args := []string{"run", "--hosts", hostsFile, "--endpoint-url", url, "--region", region,
		"--known-hosts", sshd.KnownHostsPath, "-i", user.KeyPath, "--user", user.Name,
		"--port", fmt.Sprint(sshd.Port), "--wait", "--tag", "purpose=demo",
		// The demo's hosts are this machine, which has no instance
		// identity to check; on EC2 leave the default (auto).
		"--verify-identity", "off"}
	step("running: orchestrate %s", strings.Join(args, " "))
	fmt.Println()
	if err := runOrchestrate(orchBin, args, r.Dir); err != nil {
		return err
	}
	fmt.Println()
	return verify(url, hosts, r.Dir)
}

func startEmulator(r *rig.Rig, simBin string, hosts []*demoHost) (string, error) {
	fix := ec2sim.Fixture{Region: region,
		Credentials: []ec2sim.Credential{{AccessKeyID: accessKey, SecretAccessKey: secretKey}}}
	for _, h := range hosts {
		fix.Instances = append(fix.Instances, ec2sim.Instance{ID: h.instance, RootDeviceName: "/dev/xvda",
			AvailabilityZone: region + "a", PrivateIP: h.addr, BlockDeviceMappings: []ec2sim.Mapping{
				{DeviceName: "/dev/xvda", VolumeID: h.rootVol}, {DeviceName: "/dev/sdf", VolumeID: h.vol}}})
		fix.Volumes = append(fix.Volumes,
			ec2sim.Volume{ID: h.rootVol, SizeGiB: 8, AvailabilityZone: region + "a", VolumeType: "gp3"},
			ec2sim.Volume{ID: h.vol, SizeGiB: 1, AvailabilityZone: region + "a", VolumeType: "gp3", BackingFile: h.fs.Image})
	}
	state := filepath.Join(r.Dir, "ec2sim-state.json")
	b, _ := json.MarshalIndent(fix, "", "  ")
	if err := os.WriteFile(state, b, 0o600); err != nil {
		return "", err
	}

	step("starting ec2sim (the local EC2 emulator) with %s", state)
	cmd := exec.Command(simBin, "--listen", "127.0.0.1:0", "--state", state,
		"--snapshot-dir", filepath.Join(r.Dir, "snapshots"), "--complete-after", "1500ms")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	r.OnClose("stop ec2sim", func() error {
		cmd.Process.Signal(os.Interrupt)
		return cmd.Wait()
	})

	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if _, u, ok := strings.Cut(sc.Text(), "listening on "); ok {
				urlc <- u
			}
		}
	}()
	select {
	case u := <-urlc:
		return u, nil
	case <-time.After(10 * time.Second):
		return "", errors.New("ec2sim did not start listening within 10s")
	}
}

// runOrchestrate runs the binary with the demo credentials in its
// environment only, its output on the terminal.
func runOrchestrate(bin string, args []string, home string) error {
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"AWS_ACCESS_KEY_ID=" + accessKey, "AWS_SECRET_ACCESS_KEY=" + secretKey,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
		// The demo hosts are this machine: no identity probe may reach a
		// real metadata address; a closed loopback port makes it unavailable.
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:1"}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("orchestrate run failed: %w", err)
	}
	return nil
}

func step(format string, args ...any) {
	fmt.Printf("demo: "+format+"\n", args...)
}

func hex17() string {
	b := make([]byte, 9)
	rand.Read(b)
	return hex.EncodeToString(b)[:17]
}
