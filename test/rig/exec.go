package rig

// This file holds the one way the rig runs an external program: by an
// absolute path, under a timeout, with its output kept for the error.
// Nothing run here may write to a filesystem that could be frozen, since a
// blocked write ignores the timeout's kill.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// defaultTimeout bounds every external command the rig runs.
const defaultTimeout = 60 * time.Second

// CmdError is an external command that failed: it could not start, exited
// non-zero or ran past its timeout.
type CmdError struct {
	// Cmd is the command line, for people.
	Cmd string
	// ExitCode is the exit status, or -1 if the command did not exit.
	ExitCode int
	// Output is the tail of the combined stdout and stderr.
	Output string
	// Err is the cause from package os/exec or context.
	Err error
}

// Error names the command, its status and its output tail.
func (e *CmdError) Error() string {
	msg := fmt.Sprintf("run %s: %v", e.Cmd, e.Err)
	if e.Output != "" {
		msg += ": " + e.Output
	}
	return msg
}

// Unwrap returns the cause.
func (e *CmdError) Unwrap() error { return e.Err }

// lookTool finds a program on PATH or in the sbin directories, which a
// non-login root shell may leave out of PATH.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return filepath.Abs(p)
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("find %s: %w", name, exec.ErrNotFound)
}

// run runs name with args under defaultTimeout and returns its combined
// output. A failure is a *CmdError.
func run(name string, args ...string) (string, error) {
	return runTimeout(defaultTimeout, name, args...)
}

// runTimeout is run with a chosen timeout.
func runTimeout(d time.Duration, name string, args ...string) (string, error) {
	line := strings.Join(append([]string{name}, args...), " ")
	path, err := lookTool(name)
	if err != nil {
		return "", &CmdError{Cmd: line, ExitCode: -1, Err: err}
	}

	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if err == nil {
		return out.String(), nil
	}

	ce := &CmdError{Cmd: line, ExitCode: -1, Output: tail(out.String(), 20),
		Err: err}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ce.ExitCode = ee.ExitCode()
	}
	if ctx.Err() != nil {
		ce.Err = fmt.Errorf("timed out after %v: %w", d, ctx.Err())
	}
	return out.String(), ce
}

// exitCode returns the exit status carried by err, or -1.
func exitCode(err error) int {
	var ce *CmdError
	if errors.As(err, &ce) {
		return ce.ExitCode
	}
	return -1
}

// tail returns the last n non-empty lines of s, joined by " | " so that
// they fit in one error line.
func tail(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// tailFile returns the last n lines of the file at path, or a note why it
// could not be read.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(read %s: %v)", path, err)
	}
	return tail(string(b), n)
}
