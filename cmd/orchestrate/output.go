package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/orchestrate-dev/orchestrate/internal/run"
)

// printReport writes the run's result to stdout as a table or one JSON
// document.
func printReport(w io.Writer, format string, rep *run.Report) error {
	if format == "json" {
		return printJSON(w, rep)
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tINSTANCE\tSTATUS\tFROZEN\tCONSISTENCY\tSNAPSHOTS\tERROR")
	for _, h := range rep.Hosts {
		frozen := "-"
		if h.FreezeWindowMS != nil {
			frozen = fmt.Sprintf("%.1fms", *h.FreezeWindowMS)
		}
		snaps := make([]string, 0, len(h.Snapshots))
		for _, s := range h.Snapshots {
			snaps = append(snaps, s.SnapshotID+"("+s.State+")")
		}
		errText := "-"
		if h.Error != "" {
			errText = h.FailedStep + ": " + oneLine(h.Error)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Destination, h.InstanceID,
			h.Status, frozen, orDash(h.Consistency), orDash(strings.Join(snaps, ",")), errText)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "run %s: %s, %d host(s) in %.0fms\n",
		rep.RunID, rep.Status, len(rep.Hosts), rep.DurationMS)
	return err
}

// printJSON writes v as the one indented JSON document of the command.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// hintAfterRun tells the operator on stderr what to do about the outcome.
func hintAfterRun(w io.Writer, rep *run.Report, hostsPath string) {
	for _, h := range rep.Hosts {
		for _, warn := range h.Warnings {
			fmt.Fprintf(w, "orchestrate: warning: %s: %s\n", h.Destination, oneLine(warn))
		}
		if h.Status == run.StatusThawUnconfirmed {
			fmt.Fprintf(w, "orchestrate: error: %s: THAW NOT CONFIRMED: %s\n",
				h.Destination, oneLine(h.Error))
		}
	}
	thawed := "nothing was frozen"
	for _, h := range rep.Hosts {
		if h.FreezeWindowMS != nil {
			thawed = "every filesystem that was frozen has been thawed"
		}
	}
	switch rep.Status {
	case run.StatusThawUnconfirmed:
		var lines []string
		for _, h := range rep.Hosts {
			if h.Status == run.StatusThawUnconfirmed {
				lines = append(lines, h.Address)
			}
		}
		if hostsPath != "" {
			fmt.Fprintf(w, "orchestrate: hint: run `orchestrate thaw --hosts %s` now "+
				"(with the same SSH options); the agent's watchdog also thaws at "+
				"--freeze-timeout plus 2s\n", hostsPath)
		} else {
			fmt.Fprintf(w, "orchestrate: hint: run `orchestrate thaw` now with the same "+
				"--filter, AWS and SSH options (the hosts: %s); the agent's watchdog "+
				"also thaws at --freeze-timeout plus 2s\n", strings.Join(lines, " "))
		}
	case run.StatusFailed:
		fmt.Fprintln(w, "orchestrate: warning: some hosts failed; "+thawed)
	case run.StatusInterrupted:
		fmt.Fprintln(w, "orchestrate: warning: interrupted; "+thawed)
	}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
