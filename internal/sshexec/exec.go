package sshexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"golang.org/x/crypto/ssh"
)

// Exec runs cmd, a shell command line interpreted by the remote user's
// login shell, in a new session on the connection. It copies stdin to the
// command and closes the command's input when stdin reaches EOF (nil
// stdin means empty input), and copies the command's stdout and stderr to
// the writers (nil discards). No terminal, environment or agent
// forwarding is requested.
//
// Exec returns when the command has exited and its output is drained: nil
// for status 0, an *ExitError for a non-zero status or a signal, and an
// error matching ErrConnectionLost (or ErrClosed after Close) when the
// connection went away first. Cancelling ctx closes the session, so the
// remote command sees end of input, and Exec returns at once with an
// error wrapping ctx.Err(); the writers are not written to after Exec
// returns. Exec never waits for stdin: a Read on stdin that is still
// blocked when the command exits is abandoned, and its goroutine ends
// when that Read returns.
//
// Exec is not retry safe in general: the command may have run.
func (c *Client) Exec(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sshexec: run on %s: %w", c.ep.label(), err)
	}
	if err := c.Err(); err != nil {
		return fmt.Errorf("sshexec: run on %s: %w", c.ep.label(), err)
	}
	sess, err := c.conn.NewSession()
	if err != nil {
		return c.failure("open session", err)
	}
	defer sess.Close()

	out, errw := newGate(stdout), newGate(stderr)
	defer out.shut()
	defer errw.shut()
	sess.Stdin = stdin
	sess.Stdout, sess.Stderr = out, errw

	c.log.Debug("ssh exec", "host", c.ep.label(), "cmd", cmd)
	if err := sess.Start(cmd); err != nil {
		return c.failure("start command", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- sess.Wait() }()

	select {
	case err = <-waited:
	case <-ctx.Done():
		sess.Close()
		return fmt.Errorf("sshexec: run on %s: %w", c.ep.label(), ctx.Err())
	}
	if err == nil {
		return nil
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		return &ExitError{Status: ee.ExitStatus(), Signal: ee.Signal()}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("sshexec: run on %s: %w", c.ep.label(), ctx.Err())
	}
	return c.failure("run command", err)
}

// failure wraps err from step, reporting a lost connection as such.
func (c *Client) failure(step string, err error) error {
	if !c.alive() {
		<-c.done
		return fmt.Errorf("sshexec: %s on %s: %w", step, c.ep.label(), c.Err())
	}
	var missing *ssh.ExitMissingError
	if errors.As(err, &missing) {
		return fmt.Errorf("sshexec: %s on %s: remote command ended without an exit status", step, c.ep.label())
	}
	return fmt.Errorf("sshexec: %s on %s: %w", step, c.ep.label(), err)
}

// alive reports whether the connection still answers a request. On a
// stalled connection it blocks until the keepalive closes it.
func (c *Client) alive() bool {
	select {
	case <-c.done:
		return false
	default:
	}
	_, _, err := c.conn.SendRequest("keepalive@openssh.com", true, nil)
	return err == nil
}

// gate passes writes to w until shut, then drops them, so a session that
// outlives Exec cannot write to the caller's writer.
type gate struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func newGate(w io.Writer) *gate {
	if w == nil {
		w = io.Discard
	}
	return &gate{w: w}
}

// Write writes p to the underlying writer unless the gate is shut.
func (g *gate) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return len(p), nil
	}
	return g.w.Write(p)
}

// shut stops further writes, waiting for one in progress.
func (g *gate) shut() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}
