package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/orchestrate-dev/orchestrate/internal/hosts"
	"github.com/orchestrate-dev/orchestrate/internal/run"
	"github.com/orchestrate-dev/orchestrate/internal/snapshot"
)

func thawCommand() *cli.Command {
	flags := append([]cli.Flag{hostsFlag()}, targetFlags()...)
	flags = append(flags, sshFlags()...)
	flags = append(flags, awsFlags()...)
	return &cli.Command{
		Name:      "thaw",
		Usage:     "thaw what an earlier run left frozen, and nothing else",
		UsageText: "orchestrate thaw --hosts FILE [options]",
		Description: "The recovery command. On each host it thaws the filesystems that an\n" +
			"earlier orchestrate run recorded as frozen under /run/orchestrate and did\n" +
			"not thaw because it died, and nothing else: a filesystem frozen by anyone\n" +
			"else is never touched, and a run still in progress is only reported (its\n" +
			"agent thaws by its own deadline). It needs AWS credentials only for\n" +
			"--filter and instance-ID destinations, and the hosts file needs only\n" +
			"destinations.\n\n" +
			"EXAMPLES:\n" +
			"   orchestrate thaw --hosts hosts.txt\n" +
			"   orchestrate thaw --filter tag:backup=daily --region eu-west-1\n" +
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
	hostList, ec2, err := thawTargets(c, logger)
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

	tc := run.ThawConfig{
		Hosts:     hostList,
		SSH:       sshConfig(c, logger),
		SSHConfig: sshcfg,
		Explicit:  explicitFlags(c),
		Sudo:      sudo,
		Parallel:  c.Int("parallel"),
		Logger:    logger,
		Address:   c.String("address"),
		Region:    c.String("region"),
	}
	if ec2 != nil {
		tc.EC2 = ec2
	}
	rep := run.Thaw(c.Context, tc)
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

// thawTargets lists the hosts to thaw, from the hosts file or --filter. EC2
// is used only when needed: for --filter, or to find the address of a
// destination that is an instance ID; then credentials are checked first.
func thawTargets(c *cli.Context, logger *slog.Logger) ([]hosts.Host, *snapshot.Client, error) {
	switch v := c.String("address"); v {
	case "private", "public", "dns":
	default:
		return nil, nil, usageError("--address %q: want private, public or dns", v)
	}
	filtered := len(c.StringSlice("filter")) > 0
	var hostList []hosts.Host
	if filtered {
		if c.String("hosts") != "" {
			return nil, nil, usageError("--hosts and --filter: choose one way to list the hosts")
		}
		if _, err := parseFilters(c.StringSlice("filter")); err != nil {
			return nil, nil, err
		}
	} else {
		file, err := loadHosts(c.String("hosts"), hosts.Requirements{})
		if err != nil {
			return nil, nil, err
		}
		hostList = file.Hosts
	}
	needEC2 := filtered
	for _, h := range hostList {
		needEC2 = needEC2 || run.IsInstanceID(h.Addr)
	}
	if !needEC2 {
		return hostList, nil, nil
	}

	ec2, err := snapshot.New(c.Context, snapshot.Config{Profile: c.String("profile"),
		Region: c.String("region"), EndpointURL: c.String("endpoint-url"),
		Logger: logger, AppVersion: buildVersion()})
	if err != nil {
		return nil, nil, usageError("%v", err)
	}
	if err := ec2.Credentials(c.Context); err != nil {
		return nil, nil, usageError("%v (thaw needs EC2 for --filter and instance-ID destinations)", err)
	}
	if filtered {
		if hostList, err = filterHosts(c, ec2); err != nil {
			return nil, nil, err
		}
	}
	return hostList, ec2, nil
}
