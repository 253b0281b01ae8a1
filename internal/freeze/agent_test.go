package freeze

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// localRunner runs the agent with the local /bin/sh, with fake fsfreeze and
// mountpoint commands first on PATH. The fakes record every call in a log
// and fail on demand, so the script's logic is tested without freezing any
// real filesystem.
type localRunner struct {
	dir   string // fakes and their log live here
	state string // the agents' state directory, instead of /run/orchestrate
	junk  string // printed before the command, as a login shell's rc might
}

func newLocalRunner(t *testing.T, mounts ...string) *localRunner {
	t.Helper()
	dir := t.TempDir()
	r := &localRunner{dir: dir, state: filepath.Join(dir, "state")}
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("fsfreeze", `#!/bin/sh
op=$1; p=$3
printf '%s %s\n' "$op" "$p" >>`+Quote(dir)+`/log
[ "$op" = -f ] && [ -e `+Quote(dir)+`/slow ] && sleep "$(cat `+Quote(dir)+`/slow)"
[ -e `+Quote(dir)+`/fail"$op" ] && grep -qxF -- "$p" `+Quote(dir)+`/fail"$op" && {
	echo "fsfreeze: $p: freeze failed: $(cat `+Quote(dir)+`/why)" >&2; exit 1; }
exit 0
`)
	write("mountpoint", `#!/bin/sh
[ "$1" = -d ] && { printf '7:%s\n' "$(printf '%s' "$3" | cksum | cut -d' ' -f1)"; exit 0; }
grep -qxF -- "$3" `+Quote(dir)+`/mounts
`)
	write("id", "#!/bin/sh\necho 0\n")
	// stat -c %d: the dev_t of the fake device 7:N that mountpoint -d
	// names, so that each test directory is a filesystem of its own.
	write("stat", `#!/bin/sh
p=$4
n=$(printf '%s' "$p" | cksum | cut -d' ' -f1)
echo $(( (n & 255) | (7 << 8) | ((n & ~255) << 12) ))
`)
	write("mounts", strings.Join(mounts, "\n")+"\n")
	return r
}

// failOn makes "fsfreeze op" fail for path with the message why.
func (r *localRunner) failOn(t *testing.T, op, path, why string) {
	t.Helper()
	os.WriteFile(filepath.Join(r.dir, "fail"+op), []byte(path+"\n"), 0o644)
	os.WriteFile(filepath.Join(r.dir, "why"), []byte(why), 0o644)
}

func (r *localRunner) log() string {
	b, _ := os.ReadFile(filepath.Join(r.dir, "log"))
	return string(b)
}

func (r *localRunner) Exec(ctx context.Context, cmd string, stdin io.Reader,
	stdout, stderr io.Writer) error {
	c := exec.CommandContext(ctx, "/bin/sh", "-c", r.junk+cmd)
	c.Env = append(os.Environ(), "PATH="+r.dir+":"+os.Getenv("PATH"),
		"ORCHESTRATE_TEST_STATE_DIR="+r.state)
	c.Stdout, c.Stderr = stdout, stderr
	// Like sshexec, return when the command exits, without waiting for
	// stdin to end.
	w, err := c.StdinPipe()
	if err != nil {
		return err
	}
	if err := c.Start(); err != nil {
		return err
	}
	go func() { io.Copy(w, stdin); w.Close() }()
	return c.Wait()
}

func mountDirs(t *testing.T, names ...string) []string {
	t.Helper()
	base := t.TempDir()
	var out []string
	for _, n := range names {
		p := filepath.Join(base, n)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func testOptions(mounts []string) Options {
	return Options{RunID: "run-test", Mounts: mounts, Timeout: 20 * time.Second,
		Sudo: SudoNever}
}

func TestFreezeThawOrder(t *testing.T) {
	mounts := mountDirs(t, "a", "b b", "c'$(touch x)")
	r := newLocalRunner(t, mounts...)
	ctx := context.Background()

	a, err := Start(ctx, r, "root", testOptions(mounts))
	if err != nil {
		t.Fatalf("Start = %v", err)
	}
	if got := r.log(); got != "" {
		t.Fatalf("fsfreeze ran before Freeze: %q", got)
	}
	if err := a.Freeze(ctx); err != nil {
		t.Fatalf("Freeze = %v", err)
	}
	res, err := a.Thaw(5 * time.Second)
	if err != nil {
		t.Fatalf("Thaw = %v", err)
	}

	want := "-f " + mounts[0] + "\n-f " + mounts[1] + "\n-f " + mounts[2] + "\n" +
		"-u " + mounts[2] + "\n-u " + mounts[1] + "\n-u " + mounts[0] + "\n"
	if got := r.log(); got != want {
		t.Errorf("fsfreeze calls = %q, want %q", got, want)
	}
	if res.Expired || res.Reason != "thaw" {
		t.Errorf("Thaw result = %+v, want a requested thaw", res)
	}
	if res.Window <= 0 {
		t.Errorf("Window = %v, want > 0", res.Window)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(mounts[0]), "x")); err == nil {
		t.Errorf("a mount path ran as code")
	}
}

func TestFreezeFailureThawsWhatWasFrozen(t *testing.T) {
	mounts := mountDirs(t, "a", "b", "c")
	r := newLocalRunner(t, mounts...)
	r.failOn(t, "-f", mounts[1], "Device or resource busy")
	ctx := context.Background()

	a, err := Start(ctx, r, "root", testOptions(mounts))
	if err != nil {
		t.Fatalf("Start = %v", err)
	}
	err = a.Freeze(ctx)
	var ae *AgentError
	if !errors.As(err, &ae) || ae.Code != "busy" || ae.Mount != mounts[1] {
		t.Fatalf("Freeze = %v, want a busy AgentError for %s", err, mounts[1])
	}
	if _, err := a.Thaw(5 * time.Second); err != nil {
		t.Fatalf("Thaw after failed freeze = %v", err)
	}
	want := "-f " + mounts[0] + "\n-f " + mounts[1] + "\n-u " + mounts[0] + "\n"
	if got := r.log(); got != want {
		t.Errorf("fsfreeze calls = %q, want %q (the busy one left alone)", got, want)
	}
}

func TestChecksRefuseBeforeFreezing(t *testing.T) {
	mounts := mountDirs(t, "a", "b")
	tests := []struct {
		name   string
		mounts []string
		known  []string // what mountpoint(1) accepts
		code   string
	}{
		{"NotMountpoint", mounts, mounts[:1], "notmount"},
		{"Missing", []string{mounts[0] + "/nope"}, nil, "nodir"},
		{"Root", []string{"/"}, []string{"/"}, "root"},
		{"Symlink", []string{filepath.Join(mounts[0], "link")}, nil, "symlink"},
	}
	os.Symlink(mounts[1], filepath.Join(mounts[0], "link"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newLocalRunner(t, tt.known...)
			_, err := Start(context.Background(), r, "root", testOptions(tt.mounts))
			var ae *AgentError
			if !errors.As(err, &ae) || ae.Code != tt.code {
				t.Fatalf("Start(%q) = %v, want code %s", tt.mounts, err, tt.code)
			}
			if got := r.log(); got != "" {
				t.Errorf("fsfreeze ran: %q", got)
			}
		})
	}
}

func TestEndOfInputThaws(t *testing.T) {
	mounts := mountDirs(t, "a", "b")
	r := newLocalRunner(t, mounts...)
	ctx := context.Background()

	a, err := Start(ctx, r, "root", testOptions(mounts))
	if err != nil {
		t.Fatalf("Start = %v", err)
	}
	if err := a.Freeze(ctx); err != nil {
		t.Fatalf("Freeze = %v", err)
	}
	a.Close() // the connection is gone: input ends
	<-a.done
	want := "-u " + mounts[1] + "\n-u " + mounts[0] + "\n"
	if got := r.log(); !strings.HasSuffix(got, want) {
		t.Errorf("fsfreeze calls = %q, want them to end with %q", got, want)
	}
}

func TestDeadlineThaws(t *testing.T) {
	mounts := mountDirs(t, "a")
	r := newLocalRunner(t, mounts...)
	ctx := context.Background()
	opts := testOptions(mounts)
	opts.Timeout = time.Second

	a, err := Start(ctx, r, "root", opts)
	if err != nil {
		t.Fatalf("Start = %v", err)
	}
	if err := a.Freeze(ctx); err != nil {
		t.Fatalf("Freeze = %v", err)
	}
	<-a.done // the agent exits on its own at the deadline
	res, err := a.Thaw(5 * time.Second)
	if err != nil {
		t.Fatalf("Thaw = %v", err)
	}
	if !res.Expired || res.Reason != "deadline" {
		t.Errorf("Thaw result = %+v, want expired at the deadline", res)
	}
	if got, want := r.log(), "-f "+mounts[0]+"\n-u "+mounts[0]+"\n"; got != want {
		t.Errorf("fsfreeze calls = %q, want %q", got, want)
	}
}

func TestSudoPasswordIsClear(t *testing.T) {
	mounts := mountDirs(t, "a")
	r := newLocalRunner(t, mounts...)
	os.WriteFile(filepath.Join(r.dir, "sudo"), []byte("#!/bin/sh\n"+
		"echo 'sudo: a password is required' >&2\nexit 1\n"), 0o755)
	opts := testOptions(mounts)
	opts.Sudo = SudoAuto

	_, err := Start(context.Background(), r, "deploy", opts)
	if !errors.Is(err, ErrSudoPassword) {
		t.Fatalf("Start = %v, want ErrSudoPassword", err)
	}
	if got := r.log(); got != "" {
		t.Errorf("fsfreeze ran: %q", got)
	}
}
