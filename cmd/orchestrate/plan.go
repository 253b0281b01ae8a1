package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/orchestrate-dev/orchestrate/internal/run"
)

// planSchema names the version of the plan report: a run report whose
// hosts stop before the freeze.
const planSchema = "orchestrate.plan/v1"

func planCommand() *cli.Command {
	return &cli.Command{
		Name:      "plan",
		Usage:     "show what run would freeze and snapshot, changing nothing",
		UsageText: "orchestrate plan --hosts FILE [options]",
		Description: "Does everything run does before the freeze, with the same flags: checks\n" +
			"AWS credentials, describes the instances, connects, checks each host's\n" +
			"identity, discovers its mounts and volumes (for hosts that lack mounts= or\n" +
			"volumes=) and dry-runs its CreateSnapshots. It prints, per host, each\n" +
			"filesystem with its devices, volumes and type, what will be frozen, what\n" +
			"will be snapshotted, and every problem found. Nothing is frozen, nothing\n" +
			"is created.\n\n" +
			"EXAMPLES:\n" +
			"   orchestrate plan --hosts hosts.txt\n" +
			"   orchestrate plan --hosts hosts.txt --output json\n\n" +
			"EXIT CODES:\n" +
			"   0    every host was planned\n" +
			"   1    some host could not be planned (its problems are listed)\n" +
			"   2    bad command line, hosts file or configuration: nothing was done\n" +
			"   130  interrupted",
		Flags:        runFlags(),
		Action:       planAction,
		OnUsageError: onUsageError,
	}
}

func planAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("plan takes no arguments, got %q", c.Args().First())
	}
	logger, err := newLogger(c)
	if err != nil {
		return err
	}
	cfg, err := runConfig(c, logger)
	if err != nil {
		return err
	}
	cfg.PlanOnly = true
	if err := connectEC2(c, &cfg, logger); err != nil {
		return err
	}

	rep, err := run.Run(c.Context, cfg)
	if err != nil {
		return usageError("%v", err)
	}
	rep.Schema = planSchema
	if err := printPlan(c.App.Writer, c.String("output"), rep); err != nil {
		return &exitError{code: exitHostFailed, err: err}
	}
	if code := rep.ExitCode(); code != 0 {
		return &exitError{code: code, err: errors.New("")}
	}
	return nil
}

// printPlan writes the plan: one block per host.
func printPlan(w io.Writer, format string, rep *run.Report) error {
	if format == "json" {
		return printJSON(w, rep)
	}
	for _, h := range rep.Hosts {
		fmt.Fprintf(w, "%s  %s  %s\n", h.Destination, h.InstanceID, h.Status)
		if h.Plan != nil {
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "  MOUNT\tTYPE\tDEVICES\tVOLUMES\tWHY")
			for _, m := range h.Plan.Mounts {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", m.Target, m.FSType,
					orDash(strings.Join(m.Disks, ",")), orDash(strings.Join(m.Volumes, ",")), m.Why)
			}
			for _, m := range h.Plan.Skipped {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\tnot frozen: %s\n", m.Target, m.FSType,
					orDash(strings.Join(m.Disks, ",")), orDash(strings.Join(m.Volumes, ",")), m.Why)
			}
			tw.Flush()
			for _, p := range h.Plan.Problems {
				fmt.Fprintf(w, "  problem: %s\n", p)
			}
		} else if h.Status == run.StatusSucceeded {
			fmt.Fprintln(w, "  (mounts= and volumes= as given in the hosts file)")
		}
		fmt.Fprintf(w, "  freeze:   %s\n", orDash(strings.Join(h.Mounts, " ")))
		fmt.Fprintf(w, "  snapshot: %s\n", orDash(strings.Join(h.Volumes, " ")))
		for _, warn := range h.Warnings {
			fmt.Fprintf(w, "  warning:  %s\n", oneLine(warn))
		}
		if h.Error != "" {
			fmt.Fprintf(w, "  error:    %s: %s\n", h.FailedStep, oneLine(h.Error))
		}
	}
	_, err := fmt.Fprintf(w, "plan %s: %s, %d host(s); nothing was frozen or created\n",
		rep.RunID, rep.Status, len(rep.Hosts))
	return err
}
