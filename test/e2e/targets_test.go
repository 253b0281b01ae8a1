package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/orchestrate-dev/orchestrate/internal/run"
)

// checkWholeFleet asserts that rep covers every world host, each
// succeeded with exactly its own volumes snapshotted and its own
// filesystems frozen, all found without the hosts file naming them.
func checkWholeFleet(t *testing.T, res result) {
	t.Helper()
	if res.code != 0 {
		t.Fatalf("exit code = %d, want 0", res.code)
	}
	rep := parseReport(t, res.stdout)
	if len(rep.Hosts) != len(world.hosts) {
		t.Fatalf("hosts = %d, want %d", len(rep.Hosts), len(world.hosts))
	}
	byInstance := map[string]*run.HostReport{}
	for _, hr := range rep.Hosts {
		byInstance[hr.InstanceID] = hr
	}
	for _, h := range world.hosts {
		hr := byInstance[h.instance]
		if hr == nil {
			t.Errorf("instance %s (%s) missing from the report", h.instance, h.addr)
			continue
		}
		var mounts []string
		for _, fs := range h.fss {
			mounts = append(mounts, fs.Mount)
		}
		if got, want := slices.Sorted(slices.Values(hr.Mounts)), slices.Sorted(slices.Values(mounts)); !slices.Equal(got, want) {
			t.Errorf("%s froze %v, want its own %v", h.instance, got, want)
		}
		if got, want := hr.Volumes, slices.Sorted(slices.Values(h.vols)); !slices.Equal(got, want) {
			t.Errorf("%s snapshotted %v, want %v", h.instance, got, want)
		}
		if hr.Status != run.StatusSucceeded || hr.Consistency != "application" {
			t.Errorf("%s = %s %q, want succeeded application", h.instance, hr.Status, hr.Consistency)
		}
	}
}

func TestBareDestinationsFoundByAddressAndDiscovered(t *testing.T) {
	begin(t)
	_, url := emulator(t)
	var lines []string
	for _, h := range world.hosts {
		lines = append(lines, h.addr) // no instance=, mounts= or volumes=
	}
	hostsFile := writeHostsFile(t, lines...)
	checkWholeFleet(t, orchestrate(t, url, "--hosts", hostsFile, "--output", "json"))
}

func TestInstanceIDDestinations(t *testing.T) {
	begin(t)
	_, url := emulator(t)
	var lines []string
	for _, h := range world.hosts {
		lines = append(lines, h.instance) // reached at its private IP
	}
	hostsFile := writeHostsFile(t, lines...)
	res := orchestrate(t, url, "--hosts", hostsFile, "--output", "json")
	checkWholeFleet(t, res)
	for _, hr := range parseReport(t, res.stdout).Hosts {
		if hr.Address == hr.InstanceID+":22" || hr.Address == "" {
			t.Errorf("%s was dialled at %q, want its private IP", hr.InstanceID, hr.Address)
		}
	}
}

func TestFilterBuildsTheHostListFromEC2(t *testing.T) {
	begin(t)
	_, url := emulator(t)
	checkWholeFleet(t, orchestrate(t, url, "--filter", "tag:backup=e2e", "--output", "json"))

	res := orchestrate(t, url, "--filter", "tag:backup=nothing", "--output", "json")
	if res.code != 2 {
		t.Errorf("no matching instance: exit %d, want 2", res.code)
	}
}

func TestSSHConfigAliasIsFoundByItsHostName(t *testing.T) {
	begin(t)
	_, url := emulator(t)
	h := world.hosts[0]
	sshConfig := filepath.Join(t.TempDir(), "ssh_config")
	os.WriteFile(sshConfig, []byte("Host dbalias\n  HostName "+h.addr+"\n"), 0o600)
	hostsFile := writeHostsFile(t, "dbalias") // nothing but the alias

	res := orchestrate(t, url, "--hosts", hostsFile, "--ssh-config", sshConfig, "--output", "json")
	if res.code != 0 {
		t.Fatalf("exit code = %d, want 0", res.code)
	}
	hr := parseReport(t, res.stdout).Hosts[0]
	if !strings.HasPrefix(hr.Address, h.addr+":") {
		t.Errorf("report address = %q, want the HostName %s that was dialled", hr.Address, h.addr)
	}
	if hr.InstanceID != h.instance || !slices.Equal(hr.Volumes, slices.Sorted(slices.Values(h.vols))) {
		t.Errorf("alias resolved to %s snapshotting %v, want %s and %v", hr.InstanceID, hr.Volumes, h.instance, h.vols)
	}
}

func TestThawFindsInstanceIDsAndFilterThroughEC2(t *testing.T) {
	begin(t)
	_, url := emulator(t)
	var lines []string
	for _, h := range world.hosts {
		lines = append(lines, h.instance)
	}
	hostsFile := writeHostsFile(t, lines...)

	for _, args := range [][]string{
		{"--hosts", hostsFile},
		{"--filter", "tag:backup=e2e"},
	} {
		res := orchestrateVerb(t, "thaw", url, append(args, "--output", "json")...)
		if res.code != 0 {
			t.Errorf("thaw %v: exit %d, want 0", args, res.code)
			continue
		}
		var rep run.ThawReport
		if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
			t.Fatalf("thaw report: %v\n%s", err, res.stdout)
		}
		if len(rep.Hosts) != len(world.hosts) {
			t.Errorf("thaw %v reached %d hosts, want %d", args, len(rep.Hosts), len(world.hosts))
		}
		for _, h := range rep.Hosts {
			if h.Status != run.ThawNothing || !strings.HasPrefix(h.Address, "127.0.0.") {
				t.Errorf("thaw %v: %s at %q = %s (%s), want nothing to do at its private IP",
					args, h.Destination, h.Address, h.Status, h.Error)
			}
		}
	}
}
