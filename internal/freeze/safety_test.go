package freeze

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestNoFreezeCommandGivesUpAtTimeout(t *testing.T) {
	mounts := mountDirs(t, "a")
	r := newLocalRunner(t, mounts...)
	opts := testOptions(mounts)
	opts.Timeout = time.Second

	a, err := Start(context.Background(), r, "root", opts)
	if err != nil {
		t.Fatalf("Start = %v", err)
	}
	<-a.done // it must end by itself, holding nothing
	res, err := a.Thaw(time.Second)
	if err != nil || res.Reason != "deadline" {
		t.Fatalf("Thaw = %+v, %v, want a deadline finish", res, err)
	}
	if got := r.log(); got != "" {
		t.Errorf("fsfreeze ran: %q", got)
	}
	if left, _ := filepath.Glob(filepath.Join(r.state, "[^.]*")); len(left) != 0 {
		t.Errorf("state left behind: %v", left)
	}
}

func TestSecondAgentOnSameFilesystemIsRefused(t *testing.T) {
	mounts := mountDirs(t, "a")
	r := newLocalRunner(t, mounts...)
	ctx := context.Background()

	first, err := Start(ctx, r, "root", testOptions(mounts))
	if err != nil {
		t.Fatalf("first Start = %v", err)
	}
	if err := first.Freeze(ctx); err != nil {
		t.Fatalf("first Freeze = %v", err)
	}
	_, err = Start(ctx, r, "root", testOptions(mounts))
	var ae *AgentError
	if !errors.As(err, &ae) || ae.Code != "locked" || !strings.Contains(ae.Msg, "another orchestrate run") {
		t.Fatalf("second Start = %v, want locked by another orchestrate run", err)
	}
	if _, err := first.Thaw(5 * time.Second); err != nil {
		t.Fatalf("first Thaw = %v (the refused second agent must not disturb it)", err)
	}
	if got, want := r.log(), "-f "+mounts[0]+"\n-u "+mounts[0]+"\n"; got != want {
		t.Errorf("fsfreeze calls = %q, want %q", got, want)
	}

	// With the first gone, its lock is free again.
	third, err := Start(ctx, r, "root", testOptions(mounts))
	if err != nil {
		t.Fatalf("Start after the first finished = %v", err)
	}
	third.Close()
}

// deadAgent leaves in state what an agent killed while frozen leaves: its
// record and its lock, under a PID that no longer exists.
func deadAgent(t *testing.T, r *localRunner, mount, dev string) {
	t.Helper()
	const pid = "999999999" // above pid_max: never alive
	me := filepath.Join(r.state, "agent."+pid)
	lock := filepath.Join(r.state, "fs."+dev)
	for _, d := range []string{me, lock} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(me, "run-id"), []byte("run-dead\n"), 0o600)
	os.WriteFile(filepath.Join(me, "frozen"), []byte(mount+"\n"), 0o600)
	os.WriteFile(filepath.Join(me, "locks"), []byte(lock+"\n"), 0o600)
	os.WriteFile(filepath.Join(lock, "pid"), []byte(pid+"\n"), 0o600)
}

// fakeDev is the device the fake mountpoint(1) reports for path, as the
// agent names its lock.
func fakeDev(t *testing.T, r *localRunner, path string) string {
	t.Helper()
	var out strings.Builder
	if err := r.Exec(context.Background(), "mountpoint -d -- "+Quote(path),
		strings.NewReader(""), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(strings.TrimSpace(out.String()), ":", "_")
}

func TestStaleLockWithFrozenRecordPointsToThaw(t *testing.T) {
	mounts := mountDirs(t, "a")
	r := newLocalRunner(t, mounts...)
	deadAgent(t, r, mounts[0], fakeDev(t, r, mounts[0]))

	_, err := Start(context.Background(), r, "root", testOptions(mounts))
	var ae *AgentError
	if !errors.As(err, &ae) || ae.Code != "stale" || !strings.Contains(ae.Msg, "orchestrate thaw") {
		t.Fatalf("Start = %v, want a stale lock that names orchestrate thaw", err)
	}
}

func TestStaleLockWithoutRecordIsTakenOver(t *testing.T) {
	mounts := mountDirs(t, "a")
	r := newLocalRunner(t, mounts...)
	lock := filepath.Join(r.state, "fs."+fakeDev(t, r, mounts[0]))
	os.MkdirAll(lock, 0o700)
	os.WriteFile(filepath.Join(lock, "pid"), []byte("999999999\n"), 0o600)

	a, err := Start(context.Background(), r, "root", testOptions(mounts))
	if err != nil {
		t.Fatalf("Start over a stale lock = %v", err)
	}
	if err := a.Freeze(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Thaw(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(lock); !os.IsNotExist(err) {
		t.Errorf("lock %s still there after a clean finish: %v", lock, err)
	}
}

func TestRecoverThawsOnlyDeadAgentsRecords(t *testing.T) {
	mounts := mountDirs(t, "dead", "live")
	r := newLocalRunner(t, mounts...)
	deadAgent(t, r, mounts[0], fakeDev(t, r, mounts[0]))
	ctx := context.Background()

	live, err := Start(ctx, r, "root", testOptions(mounts[1:]))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if err := live.Freeze(ctx); err != nil {
		t.Fatal(err)
	}

	rec, err := Recover(ctx, r, "root", SudoNever)
	if err != nil {
		t.Fatalf("Recover = %v", err)
	}
	if len(rec.Thawed) != 1 || rec.Thawed[0] != (Record{RunID: "run-dead", Mount: mounts[0]}) {
		t.Errorf("Recover thawed %+v, want only %s of run-dead", rec.Thawed, mounts[0])
	}
	if len(rec.Live) != 1 || rec.Live[0].PID != live.PID() {
		t.Errorf("Recover live = %+v, want the running agent %d", rec.Live, live.PID())
	}
	if strings.Contains(r.log(), "-u "+mounts[1]) {
		t.Errorf("Recover thawed the live agent's mount: %q", r.log())
	}
	if _, err := os.Stat(filepath.Join(r.state, "agent.999999999")); !os.IsNotExist(err) {
		t.Errorf("dead agent's record still there: %v", err)
	}

	// A second recovery finds nothing to do.
	live.Thaw(5 * time.Second)
	rec, err = Recover(ctx, r, "root", SudoNever)
	if err != nil || len(rec.Thawed)+len(rec.Live)+len(rec.Failed) != 0 {
		t.Errorf("second Recover = %+v, %v, want nothing", rec, err)
	}
}

func TestProbeThatBlocksMeansThawUnconfirmed(t *testing.T) {
	mounts := mountDirs(t, "a")
	r := newLocalRunner(t, mounts...)
	ctx := context.Background()
	opts := testOptions(mounts)

	a, err := Start(ctx, r, "root", opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Freeze(ctx); err != nil {
		t.Fatal(err)
	}
	// A FIFO where the probe writes makes its open block, as a write to a
	// filesystem that is still frozen would.
	fifo := filepath.Join(mounts[0], ".orchestrate-probe."+strconv.Itoa(a.PID()))
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Open for reading, without blocking, to let the stuck probe go.
		if f, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			time.Sleep(100 * time.Millisecond)
			f.Close()
		}
	})

	_, err = a.Thaw(10 * time.Second)
	if !errors.Is(err, ErrThawUnconfirmed) || !strings.Contains(err.Error(), "write probe") {
		t.Fatalf("Thaw = %v, want ErrThawUnconfirmed from the write probe", err)
	}
}

// sleepers counts processes running "sleep N".
func sleepers(t *testing.T, n int) int {
	t.Helper()
	want := "sleep\x00" + strconv.Itoa(n) + "\x00"
	count := 0
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && string(b) == want {
			count++
		}
	}
	return count
}

func TestNoTimerOrWatchdogOutlivesARun(t *testing.T) {
	mounts := mountDirs(t, "a")
	r := newLocalRunner(t, mounts...)
	ctx := context.Background()
	opts := testOptions(mounts)
	// A timeout no other run uses, to tell this agent's sleeps apart.
	secs := 200 + int(time.Now().UnixNano()/1000%700)
	opts.Timeout = time.Duration(secs) * time.Second

	a, err := Start(ctx, r, "root", opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Freeze(ctx); err != nil {
		t.Fatal(err)
	}
	if n := sleepers(t, secs) + sleepers(t, secs+2); n == 0 {
		t.Fatalf("no timer or watchdog sleep found while frozen: the check below would prove nothing")
	}
	if _, err := a.Thaw(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	<-a.done
	deadline := time.Now().Add(2 * time.Second)
	for sleepers(t, secs)+sleepers(t, secs+2) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := sleepers(t, secs) + sleepers(t, secs+2); n != 0 {
		t.Errorf("%d timer/watchdog sleeps left after a clean thaw (timer %d, watchdog %d), want 0",
			n, sleepers(t, secs), sleepers(t, secs+2))
	}
}

// slowFreeze makes every fsfreeze -f take d.
func (r *localRunner) slowFreeze(t *testing.T, d time.Duration) {
	t.Helper()
	os.WriteFile(filepath.Join(r.dir, "slow"), []byte(fmt.Sprintf("%.1f", d.Seconds())), 0o644)
}

func TestSignalDuringFreezeStillThawsThatMount(t *testing.T) {
	mounts := mountDirs(t, "a", "b")
	r := newLocalRunner(t, mounts...)
	r.slowFreeze(t, time.Second)
	ctx := context.Background()

	a, err := Start(ctx, r, "root", testOptions(mounts))
	if err != nil {
		t.Fatal(err)
	}
	go a.Freeze(ctx)
	// Signal the agent while its first fsfreeze -f is still running.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(r.log(), "-f "+mounts[0]) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := syscall.Kill(a.PID(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-a.done
	if got, want := r.log(), "-f "+mounts[0]+"\n-u "+mounts[0]+"\n"; got != want {
		t.Errorf("fsfreeze calls = %q, want %q: the mount frozen while the "+
			"signal waited must be thawed, and no further one frozen", got, want)
	}
}

func TestDeadlineDuringSlowFreezeStillThaws(t *testing.T) {
	mounts := mountDirs(t, "a")
	r := newLocalRunner(t, mounts...)
	r.slowFreeze(t, 2*time.Second) // longer than the whole timeout
	opts := testOptions(mounts)
	opts.Timeout = time.Second
	ctx := context.Background()

	a, err := Start(ctx, r, "root", opts)
	if err != nil {
		t.Fatal(err)
	}
	a.Freeze(ctx)
	<-a.done
	if got, want := r.log(), "-f "+mounts[0]+"\n-u "+mounts[0]+"\n"; got != want {
		t.Errorf("fsfreeze calls = %q, want %q", got, want)
	}
	res, err := a.Thaw(time.Second)
	if err != nil || !res.Expired {
		t.Errorf("Thaw = %+v, %v, want an expired agent that thawed", res, err)
	}
}

func TestLoginShellOutputIsNotProtocol(t *testing.T) {
	mounts := mountDirs(t, "a")
	r := newLocalRunner(t, mounts...)
	r.junk = "echo READY; echo FROZE 1; echo 'DONE thaw'; "
	r.slowFreeze(t, 300*time.Millisecond)
	ctx := context.Background()

	a, err := Start(ctx, r, "root", testOptions(mounts))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Freeze(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.log(), "-f "+mounts[0]) {
		t.Fatalf("Freeze returned before the agent froze anything: fake lines were taken as protocol")
	}
	if _, err := a.Thaw(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.log(), "-u "+mounts[0]) {
		t.Errorf("Thaw returned without a thaw: %q", r.log())
	}
}

func TestRecoverThawsAMountWhoseFreezeWasUnderWay(t *testing.T) {
	mounts := mountDirs(t, "a b")
	r := newLocalRunner(t, mounts...)
	deadAgent(t, r, mounts[0], fakeDev(t, r, mounts[0]))
	// Killed during fsfreeze -f: the mount is in freezing, not frozen.
	me := filepath.Join(r.state, "agent.999999999")
	os.Rename(filepath.Join(me, "frozen"), filepath.Join(me, "freezing"))
	os.WriteFile(filepath.Join(me, "frozen"), nil, 0o600)

	rec, err := Recover(context.Background(), r, "root", SudoNever)
	if err != nil {
		t.Fatalf("Recover = %v", err)
	}
	if len(rec.Thawed) != 1 || rec.Thawed[0].Mount != mounts[0] {
		t.Errorf("Recover thawed %+v, want %s from the freezing record", rec.Thawed, mounts[0])
	}
}

func TestMountThatNoLongerReachesItsDeviceIsRefused(t *testing.T) {
	mounts := mountDirs(t, "a")
	r := newLocalRunner(t, mounts...)
	right := strings.ReplaceAll(fakeDev(t, r, mounts[0]), "_", ":")

	opts := testOptions(mounts)
	opts.Devices = []string{"7:1"} // discovery saw another filesystem there
	_, err := Start(context.Background(), r, "root", opts)
	var ae *AgentError
	if !errors.As(err, &ae) || ae.Code != "moved" || ae.Mount != mounts[0] {
		t.Fatalf("Start with the wrong device = %v, want moved for %s", err, mounts[0])
	}
	if got := r.log(); got != "" {
		t.Errorf("fsfreeze ran: %q", got)
	}

	opts.Devices = []string{right}
	a, err := Start(context.Background(), r, "root", opts)
	if err != nil {
		t.Fatalf("Start with the right device %s = %v", right, err)
	}
	a.Close()
}
