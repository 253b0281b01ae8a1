package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/orchestrate-dev/orchestrate/internal/hosts"
	"github.com/orchestrate-dev/orchestrate/internal/run"
)

func thawCommand() *cli.Command {
	flags := append([]cli.Flag{&cli.StringFlag{Name: "hosts", Aliases: []string{"H"},
		Usage:   "hosts `FILE` (destinations are dialled as written: no EC2 look-up)",
		EnvVars: []string{"ORCHESTRATE_HOSTS"}}}, sshFlags()...)
	return &cli.Command{
		Name:      "thaw",
		Usage:     "thaw what an earlier run left frozen, and nothing else",
		UsageText: "orchestrate thaw --hosts FILE [options]",
		Description: "The recovery command. On each host it thaws the filesystems that an\n" +
			"earlier orchestrate run recorded as frozen under /run/orchestrate and did\n" +
			"not thaw because it died, and nothing else: a filesystem frozen by anyone\n" +
			"else is never touched, and a run still in progress is only reported (its\n" +
			"agent thaws by its own deadline). It needs no AWS credentials, and the\n" +
			"hosts file needs only destinations.\n\n" +
			"EXAMPLES:\n" +
			"   orchestrate thaw --hosts hosts.txt\n" +
			"   orchestrate thaw --hosts hosts.txt --output json\n\n" +
			"EXIT CODES:\n" +
			"   0    every host was reached and nothing recorded is left frozen\n" +
			"   1    a host could not be reached or refused\n" +
			"   2    bad command line or hosts file: nothing was done\n" +
			"   3    something recorded could not be thawed: check it now",
		Flags:        append(flags, outputFlags()...),
		Action:       thawAction,
		OnUsageError: onUsageError,
	}
}

func thawAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("thaw takes no arguments, got %q", c.Args().First())
	}
	logger, err := newLogger(c)
	if err != nil {
		return err
	}
	sudo, err := checkCommonFlags(c)
	if err != nil {
		return err
	}
	file, err := loadHosts(c.String("hosts"), hosts.Requirements{})
	if err != nil {
		return err
	}
	sshcfg, err := loadSSHConfig(c)
	if err != nil {
		return err
	}
	if err := checkSSHFiles(c, sshcfg != nil); err != nil {
		return err
	}

	rep := run.Thaw(c.Context, run.ThawConfig{
		Hosts:     file.Hosts,
		SSH:       sshConfig(c, logger),
		SSHConfig: sshcfg,
		Explicit:  explicitFlags(c),
		Sudo:      sudo,
		Parallel:  c.Int("parallel"),
		Logger:    logger,
	})
	if err := printThawReport(c.App.Writer, c.String("output"), rep); err != nil {
		return &exitError{code: exitHostFailed, err: err}
	}
	if code := rep.ExitCode(); code != 0 {
		return &exitError{code: code, err: errors.New("")}
	}
	return nil
}

func printThawReport(w io.Writer, format string, rep *run.ThawReport) error {
	if format == "json" {
		return printJSON(w, rep)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tSTATUS\tTHAWED\tSTILL FROZEN\tRUNNING\tERROR")
	for _, h := range rep.Hosts {
		var thawed, stuck, live []string
		for _, r := range h.Thawed {
			thawed = append(thawed, r.Mount+" (run "+r.RunID+")")
		}
		for _, r := range h.StillFrozen {
			stuck = append(stuck, r.Mount)
		}
		for _, l := range h.Live {
			live = append(live, fmt.Sprintf("pid %d run %s", l.PID, l.RunID))
		}
		errText := "-"
		if h.Error != "" {
			errText = oneLine(h.Error)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", h.Destination, h.Status,
			orDash(strings.Join(thawed, ", ")), orDash(strings.Join(stuck, ", ")),
			orDash(strings.Join(live, ", ")), errText)
	}
	return tw.Flush()
}
