package main

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/orchestrate-dev/orchestrate/internal/run"
)

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "preflight for a runbook: check every host could be snapshotted, changing nothing",
		UsageText: "orchestrate check --hosts FILE [options]",
		Description: "Takes the same flags as run, so a runbook can reuse its command line.\n" +
			"Per host, in this order: ssh (connect, host key), identity (the host's\n" +
			"own instance ID; skipped under --verify-identity auto when unreadable),\n" +
			"sudo (sudo -n as the agent would run it, after --sudo), tools (fsfreeze,\n" +
			"findmnt, lsblk, setsid, flock, mountpoint on the agent's PATH), lock (no\n" +
			"other orchestrate run holds the host's filesystems, and none that died\n" +
			"left them frozen), volumes (the planned volumes are attached; discovered\n" +
			"for hosts without mounts= and volumes=), iam-create-snapshots (DryRun\n" +
			"CreateSnapshots of the planned set) and iam-create-tags (the same DryRun\n" +
			"with the snapshot tags, which needs ec2:CreateTags on create). A check\n" +
			"that cannot run because another failed is skipped. Nothing is frozen,\n" +
			"nothing is created.\n\n" +
			"EXAMPLES:\n" +
			"   orchestrate check --hosts hosts.txt\n" +
			"   orchestrate check --hosts hosts.txt --output json\n\n" +
			"EXIT CODES:\n" +
			"   0    every check passed on every host (skips included)\n" +
			"   1    some check failed on some host\n" +
			"   2    bad command line, hosts file or configuration: nothing was done\n" +
			"   130  interrupted",
		Flags:        runFlags(),
		Action:       checkAction,
		OnUsageError: onUsageError,
	}
}

func checkAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("check takes no arguments, got %q", c.Args().First())
	}
	logger, err := newLogger(c)
	if err != nil {
		return err
	}
	cfg, err := runConfig(c, logger)
	if err != nil {
		return err
	}
	if err := connectEC2(c, &cfg, logger); err != nil {
		return err
	}

	rep, err := run.Check(c.Context, cfg)
	if err != nil {
		return usageError("%v", err)
	}
	if err := printCheck(c.App.Writer, c.String("output"), rep); err != nil {
		return &exitError{code: exitHostFailed, err: err}
	}
	if code := rep.ExitCode(); code != 0 {
		return &exitError{code: code, err: errors.New("")}
	}
	return nil
}

// printCheck writes one line per check per host, or one JSON document.
func printCheck(w io.Writer, format string, rep *run.CheckReport) error {
	if format == "json" {
		return printJSON(w, rep)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tCHECK\tRESULT\tDETAIL")
	for _, h := range rep.Hosts {
		for _, ck := range h.Checks {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", h.Destination, ck.Name, ck.Result,
				orDash(oneLine(ck.Detail)))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "check %s: %s, %d host(s); nothing was frozen or created\n",
		rep.RunID, rep.Status, len(rep.Hosts))
	return err
}
