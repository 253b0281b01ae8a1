package freeze

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Runner runs one command on a host. Exec feeds stdin to the command,
// copies its output to stdout and stderr, and returns when it exits: nil on
// status 0, an error otherwise. Cancelling ctx must end the command's input.
// sshexec.Client satisfies it.
type Runner interface {
	Exec(ctx context.Context, cmd string, stdin io.Reader,
		stdout, stderr io.Writer) error
}

// Options configures one agent.
type Options struct {
	RunID  string
	Mounts []string // freeze order; thawed in reverse
	// Devices, when not nil, holds for each mount the device ("MAJ:MIN")
	// discovery found there, or ""; the agent refuses a mount point that
	// no longer resolves to its device.
	Devices   []string
	Timeout   time.Duration // hard deadline from FREEZE to thaw
	AllowRoot bool          // allow freezing "/"
	Sudo      SudoMode
	Logger    *slog.Logger

	nonce string // marks where the agent's own output starts; set by Start
}

// Result is what the agent measured on the host.
type Result struct {
	// Window is the time from the first freeze to the last thaw, measured
	// by the host's own clock.
	Window time.Duration
	// Expired is true when the agent thawed on its own (deadline, lost
	// input or a signal) before it was told to.
	Expired bool
	// Reason is how the agent ended: "thaw", "deadline", "eof", "signal".
	Reason string
}

// Agent is a running freeze agent on one host. Its methods must be called
// in order: Start, Freeze, Thaw. Close may be called at any time and always
// ends the agent, which thaws whatever it froze.
type Agent struct {
	opts   Options
	mounts []string
	stdin  *io.PipeWriter
	lines  chan string
	done   chan struct{} // closed when Exec returns
	err    error         // Exec's result, valid after done
	stderr lockedBuffer
	log    *slog.Logger

	mu         sync.Mutex
	pid        int // the agent's process ID on the host, from HELLO
	result     *Result
	thawFailed error // a THAWFAIL or PROBEFAIL seen, at any time
}

// Start launches the agent through r, as user on the host, and waits until
// it has checked every mount, taken the host lock and synced. Nothing is
// frozen when Start returns, whatever it returns. Errors are *AgentError
// for a refusal by the agent, ErrSudoPassword when sudo wants a password.
func Start(ctx context.Context, r Runner, user string, opts Options) (*Agent, error) {
	if err := checkOptions(opts); err != nil {
		return nil, err
	}
	opts.nonce = newNonce()
	pr, pw := io.Pipe()
	outR, outW := io.Pipe()
	a := &Agent{
		opts:   opts,
		mounts: opts.Mounts,
		stdin:  pw,
		lines:  make(chan string, 64),
		done:   make(chan struct{}),
		log:    orDiscard(opts.Logger),
	}

	// The agent's own lifetime is not tied to ctx: ending its input is how
	// we stop it, and Close does that.
	cmd := Command(opts, user)
	a.log.Debug("agent start", "bytes", len(cmd), "mounts", len(opts.Mounts))
	go func() {
		a.err = r.Exec(context.WithoutCancel(ctx), cmd, pr, outW, &a.stderr)
		outW.Close()
		pr.CloseWithError(errAgentExited)
		close(a.done)
	}()
	go a.readLines(outR)

	if err := a.expect(ctx, "READY"); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

func checkOptions(opts Options) error {
	if len(opts.Mounts) == 0 {
		return errors.New("freeze: no mount points to freeze")
	}
	for _, m := range opts.Mounts {
		if !strings.HasPrefix(m, "/") || strings.ContainsAny(m, "\x00\n") {
			return fmt.Errorf("freeze: invalid mount point %q", m)
		}
	}
	if opts.Devices != nil && len(opts.Devices) != len(opts.Mounts) {
		return fmt.Errorf("freeze: %d devices for %d mount points", len(opts.Devices), len(opts.Mounts))
	}
	for _, d := range opts.Devices {
		if maj, min, ok := strings.Cut(d, ":"); d != "" && (!ok || !digits(maj) || !digits(min)) {
			return fmt.Errorf("freeze: invalid device %q (want MAJ:MIN)", d)
		}
	}
	if strings.ContainsAny(opts.RunID, "\x00\n") || opts.RunID == "" {
		return fmt.Errorf("freeze: invalid run id %q", opts.RunID)
	}
	return nil
}

// Freeze tells the agent to freeze every mount and waits until it confirms.
// If any freeze fails, the agent thaws those it froze before answering and
// Freeze returns an *AgentError naming the mount.
func (a *Agent) Freeze(ctx context.Context) error {
	if err := a.send(ctx, "FREEZE\n"); err != nil {
		return fmt.Errorf("freeze: send FREEZE: %w", err)
	}
	return a.expect(ctx, "FROZE")
}

// Thaw tells the agent to thaw and waits up to timeout for it to confirm
// every thaw. It is safe to call after a failed Freeze. An error means the
// thaw could not be confirmed: ErrThawUnconfirmed wraps the cause.
func (a *Agent) Thaw(timeout time.Duration) (*Result, error) {
	// The thaw has its own deadline, never the run's context: an
	// interrupted run must still thaw. If the agent has already gone (it
	// thawed on its own), the send fails and the replies it left are read.
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	a.send(ctx, "THAW\n")
	a.stdin.Close()

	// If the agent already finished (it thawed on its own and said DONE),
	// what it said then is the answer.
	var err error
	if !a.finished() {
		err = a.expect(ctx, "DONE")
	}
	a.mu.Lock()
	res, failed := a.result, a.thawFailed
	a.mu.Unlock()
	switch {
	case failed != nil:
		return res, failed
	case err != nil:
		return res, fmt.Errorf("%w: %w", ErrThawUnconfirmed, err)
	}
	return res, nil
}

// Close ends the agent's input, which makes it thaw anything still frozen
// and exit, and waits briefly for it to go.
func (a *Agent) Close() {
	a.stdin.Close()
	select {
	case <-a.done:
	case <-time.After(5 * time.Second):
	}
}

// readLines turns the agent's stdout into lines; the channel closes when
// the output ends. Lines before the agent's HELLO with its nonce come from
// the login shell (a banner, an echo in a startup file) and are dropped,
// so they can never pass for protocol.
func (a *Agent) readLines(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64*1024)
	hello := "HELLO 1 " + a.opts.nonce + " "
	started := false
	for sc.Scan() {
		line := sc.Text()
		if !started {
			if !strings.HasPrefix(line, hello) {
				a.log.Debug("not the agent's", "line", line)
				continue
			}
			started = true
		}
		a.lines <- line
	}
	io.Copy(io.Discard, r)
	close(a.lines)
}

// expect reads protocol lines until want arrives, an ERR line, or the
// output ends. Every line on the way updates the agent's state.
func (a *Agent) expect(ctx context.Context, want string) error {
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("freeze: waiting for %s: %w", want, ctx.Err())
		case line, ok := <-a.lines:
			if !ok {
				return a.endedError(want)
			}
			a.log.Debug("agent", "line", line)
			word, rest, _ := strings.Cut(line, " ")
			if err := a.note(word, rest); err != nil {
				return err
			}
			if word == want {
				return nil
			}
		}
	}
}

// note records what one protocol line says.
func (a *Agent) note(word, rest string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch word {
	case "HELLO":
		f := strings.Fields(rest) // 1 NONCE PID UID
		if len(f) >= 3 {
			a.pid, _ = strconv.Atoi(f[2])
		}
	case "ERR":
		return a.refusal(rest)
	case "WINDOW":
		us, _ := strconv.ParseInt(rest, 10, 64)
		a.ensureResult().Window = time.Duration(us) * time.Microsecond
	case "THAWFAIL", "PROBEFAIL":
		idx, msg, _ := strings.Cut(rest, " ")
		what := "fsfreeze -u"
		if word == "PROBEFAIL" {
			what = "write probe after thaw"
		}
		a.thawFailed = fmt.Errorf("%w: %s %s: %s", ErrThawUnconfirmed,
			what, a.mountName(idx), msg)
		return a.thawFailed
	case "DONE":
		r := a.ensureResult()
		r.Reason = rest
		r.Expired = rest != "thaw"
	}
	return nil
}

// PID returns the agent's process ID on the host, 0 if unknown.
func (a *Agent) PID() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pid
}

// finished reports whether the agent has said DONE.
func (a *Agent) finished() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.result != nil && a.result.Reason != ""
}

func (a *Agent) ensureResult() *Result {
	if a.result == nil {
		a.result = &Result{}
	}
	return a.result
}

func (a *Agent) mountName(idx string) string {
	i, err := strconv.Atoi(idx)
	if err != nil || i < 0 || i >= len(a.mounts) {
		return "mount #" + idx
	}
	return a.mounts[i]
}

// refusal turns "ERR code index message" into an *AgentError.
func (a *Agent) refusal(rest string) error {
	code, rest, _ := strings.Cut(rest, " ")
	idx, msg, _ := strings.Cut(rest, " ")
	e := &AgentError{Code: code, Msg: strings.TrimSpace(rest)}
	if _, err := strconv.Atoi(idx); err == nil {
		e.Mount = a.mountName(idx)
		e.Msg = strings.TrimSpace(msg)
	} else if idx == "-" {
		e.Msg = strings.TrimSpace(msg)
	}
	return e
}

// endedError explains why the agent's output ended before want.
func (a *Agent) endedError(want string) error {
	<-a.done
	stderr := strings.TrimSpace(a.stderr.String())
	if isSudoPasswordPrompt(stderr) {
		return fmt.Errorf("%w: %s", ErrSudoPassword, lastLine(stderr))
	}
	if a.err != nil {
		if stderr != "" {
			return fmt.Errorf("freeze: agent ended before %s: %w: %s",
				want, a.err, lastLine(stderr))
		}
		return fmt.Errorf("freeze: agent ended before %s: %w", want, a.err)
	}
	return fmt.Errorf("freeze: agent ended before %s", want)
}

// send writes one command to the agent without blocking past ctx: a write
// into a stalled connection must not hold up a thaw decision.
func (a *Agent) send(ctx context.Context, s string) error {
	errc := make(chan error, 1)
	go func() {
		_, err := io.WriteString(a.stdin, s)
		errc <- err
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func isSudoPasswordPrompt(stderr string) bool {
	return strings.Contains(stderr, "sudo:") &&
		(strings.Contains(stderr, "password is required") ||
			strings.Contains(stderr, "terminal is required"))
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func newNonce() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// lockedBuffer collects stderr from one goroutine and is read by another.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 64*1024 {
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
