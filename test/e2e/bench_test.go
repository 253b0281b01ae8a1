package e2e

import (
	"sort"
	"testing"
	"time"
)

// BenchmarkRunThreeHosts runs the built binary against the three world
// hosts (ext4, xfs, two ext4 volumes) over real sshd and reports the
// freeze window each host measured itself, and the run's wall time. The
// floor of a freeze window is one SSH round trip plus the CreateSnapshots
// latency; both are near zero on loopback, so what is left is overhead:
// fsfreeze's own flush, the agent's few forks, and the emulator's copy of
// the image (the snapshot's point in time).
func BenchmarkRunThreeHosts(b *testing.B) {
	begin(b)
	_, url := emulator(b)
	hostsFile := writeHostsFile(b, allLines()...)

	var windows []float64
	var wall time.Duration
	for b.Loop() {
		start := time.Now()
		res := orchestrate(b, url, "--hosts", hostsFile, "--output", "json")
		wall += time.Since(start)
		if res.code != 0 {
			b.Fatalf("exit code = %d, want 0", res.code)
		}
		for _, h := range parseReport(b, res.stdout).Hosts {
			if h.FreezeWindowMS != nil {
				windows = append(windows, *h.FreezeWindowMS)
			}
		}
	}
	sort.Float64s(windows)
	b.ReportMetric(windows[len(windows)/2], "freeze-ms/host-p50")
	b.ReportMetric(windows[len(windows)*9/10], "freeze-ms/host-p90")
	b.ReportMetric(float64(wall.Milliseconds())/float64(b.N), "wall-ms/run")
}
