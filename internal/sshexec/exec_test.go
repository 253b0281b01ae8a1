package sshexec

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestExec(t *testing.T) {
	f := newFixture(t)
	c := mustDial(t, f.srv.target(), f.cfg)

	tests := []struct {
		name       string
		cmd        string
		stdin      io.Reader
		wantOut    string
		wantErrOut string
		wantExit   *ExitError
	}{
		{"Echo", "echo hello world", nil, "hello world\n", "", nil},
		{"Stderr", "echoerr oops", nil, "", "oops\n", nil},
		{"NonZero", "exit 3", nil, "", "", &ExitError{Status: 3}},
		{"Signal", "kill TERM", nil, "", "", &ExitError{Status: 128 + 15, Signal: "TERM"}},
		{"NotFound", "frobnicate", nil, "", "frobnicate: not found\n", &ExitError{Status: 127}},
		// cat exits only at end of input, so these prove stdin EOF arrives.
		{"StdinEOF", "cat", strings.NewReader("line 1\nline 2\n"), "line 1\nline 2\n", "", nil},
		{"NilStdin", "cat", nil, "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := c.Exec(context.Background(), tt.cmd, tt.stdin, &out, &errOut)
			if tt.wantExit == nil && err != nil {
				t.Fatalf("Exec(%q) = %v, want nil", tt.cmd, err)
			}
			if tt.wantExit != nil {
				var ee *ExitError
				if !errors.As(err, &ee) || *ee != *tt.wantExit {
					t.Fatalf("Exec(%q) = %#v, want %#v", tt.cmd, err, tt.wantExit)
				}
			}
			if got := out.String(); got != tt.wantOut {
				t.Errorf("Exec(%q) stdout = %q, want %q", tt.cmd, got, tt.wantOut)
			}
			if got := errOut.String(); got != tt.wantErrOut {
				t.Errorf("Exec(%q) stderr = %q, want %q", tt.cmd, got, tt.wantErrOut)
			}
		})
	}
	f.srv.assertNoForbiddenRequests(t)
}

func TestExitErrorMessage(t *testing.T) {
	tests := []struct {
		in   ExitError
		want string
	}{
		{ExitError{Status: 2}, "sshexec: remote command exited with status 2"},
		{ExitError{Status: 137, Signal: "KILL"}, "sshexec: remote command killed by signal KILL"},
	}
	for _, tt := range tests {
		if got := tt.in.Error(); got != tt.want {
			t.Errorf("(%+v).Error() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestExecCancel(t *testing.T) {
	f := newFixture(t)
	c := mustDial(t, f.srv.target(), f.cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// A stdin that never ends: only the cancel can end the command.
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	errc := make(chan error, 1)
	go func() { errc <- c.Exec(ctx, "sleep", pr, nil, nil) }()
	wait(t, f.srv.started, "remote start")
	cancel()

	if err := wait(t, errc, "Exec return"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Exec(sleep) after cancel = %v, want context.Canceled", err)
	}
	if got := wait(t, f.srv.inputEnded, "remote end of input"); got != "sleep" {
		t.Errorf("remote end of input for %q, want %q", got, "sleep")
	}
	if err := c.Exec(context.Background(), "exit 0", nil, nil, nil); err != nil {
		t.Errorf("Exec after a cancelled Exec = %v, want nil (connection kept)", err)
	}
}

func TestExecCancelledBeforeStart(t *testing.T) {
	f := newFixture(t)
	c := mustDial(t, f.srv.target(), f.cfg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	if err := c.Exec(ctx, "echo x", nil, nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Exec(cancelled ctx) = %v, want context.Canceled", err)
	}
	if got := f.srv.executed(); len(got) != 0 {
		t.Errorf("server executed %q, want nothing", got)
	}
}

func TestExecConnectionDropped(t *testing.T) {
	f := newFixture(t)
	c := mustDial(t, f.srv.target(), f.cfg)

	err := c.Exec(context.Background(), "drop", nil, nil, nil)
	if !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("Exec(drop) = %v, want ErrConnectionLost", err)
	}
	wait(t, c.Done(), "Done after drop")
	if err := c.Err(); !errors.Is(err, ErrConnectionLost) {
		t.Errorf("Err() after drop = %v, want ErrConnectionLost", err)
	}
	if err := c.Exec(context.Background(), "echo x", nil, nil, nil); !errors.Is(err, ErrConnectionLost) {
		t.Errorf("Exec after drop = %v, want ErrConnectionLost", err)
	}
}
