// Command orchestrate takes application-consistent EBS snapshots of EC2
// instances without putting AWS credentials on them.
//
// Output rule: results go to stdout, everything else (logs, errors, hints)
// to stderr, each line prefixed "orchestrate:". Only this package exits.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/urfave/cli/v2"
)

// version is set with -ldflags "-X main.version=...".
var version = ""

// Exit codes, documented in the help and the README.
const (
	exitOK          = 0
	exitHostFailed  = 1
	exitUsage       = 2
	exitThawUnknown = 3
	exitInterrupted = 130
)

// exitError carries an exit code and an already printed message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func main() {
	os.Exit(mainWithArgs(os.Args, os.Stdout, os.Stderr))
}

func mainWithArgs(args []string, stdout, stderr io.Writer) int {
	// The first SIGINT, SIGTERM or SIGHUP (a closed terminal) cancels ctx: the run thaws every frozen
	// host and exits 130. Later ones are swallowed until then, so a second
	// Ctrl-C cannot abandon a thaw.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()

	app := newApp(stdout, stderr)
	err := app.RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintf(stderr, "orchestrate: error: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "orchestrate: error: %v\n", err)
	return exitUsage
}

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:    "orchestrate",
		Usage:   "application-consistent EBS snapshots, with the credentials kept off the hosts",
		Version: buildVersion(),
		Description: "orchestrate SSHes into each host of a hosts file, syncs and freezes the\n" +
			"chosen filesystems, calls EC2 CreateSnapshots with YOUR credentials from\n" +
			"this machine, and thaws over the same connection as soon as the call\n" +
			"returns. No AWS credential ever reaches a host.\n\n" + exitCodesHelp,
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: false,
		HideHelpCommand:      true,
		Commands:             []*cli.Command{runCommand(), planCommand(), checkCommand(), thawCommand()},
		ExitErrHandler:       func(*cli.Context, error) {},
		OnUsageError:         onUsageError,
	}
}

const exitCodesHelp = `EXIT CODES:
   0    every host succeeded
   1    at least one host failed (every filesystem frozen was thawed)
   2    bad command line, hosts file or configuration: nothing was done
   3    a thaw could not be confirmed on some host: run orchestrate thaw now
   130  interrupted (after thawing every frozen host)`

// onUsageError reports a flag mistake on stderr, never the help on
// stdout: a runbook's `-o json > report.json` must not fill up with help.
func onUsageError(c *cli.Context, err error, _ bool) error {
	name := "orchestrate"
	if c.Command != nil && c.Command.Name != "" {
		name += " " + c.Command.Name
	}
	return usageError("%v (see %s --help)", err, name)
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}
