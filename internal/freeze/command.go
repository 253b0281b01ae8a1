// Package freeze runs the remote freeze agent and guarantees the thaw.
//
// The agent (agent.sh) is a short POSIX sh script sent as one argument over
// an existing connection; nothing is installed on the host. It checks every
// path, syncs, freezes on FREEZE and thaws in reverse on THAW, on end of
// input, on a hangup or termination signal, and at its own deadline. A
// watchdog in its own session thaws at the deadline plus a short grace even
// if the agent is killed. So no path through this package, the network or
// the operator's process leaves a filesystem frozen for longer than the
// freeze timeout plus that grace.
//
// The package knows nothing of SSH or EC2: it needs only a Runner.
package freeze

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"time"
)

//go:embed agent.sh
var agentScript string

//go:embed recover.sh
var recoverScript string

//go:embed lib.sh
var libScript string

// ScriptCommand returns the command line that runs script with /bin/sh
// as name with args, as root the way the agent gets it (sudo -n when sudo
// and user call for it), every value quoted. The script can use the
// functions the agents use: devof PATH (the MAJ:MIN the path really
// reaches, from stat) and agent_alive PID (running, not a zombie, and
// still an orchestrate agent).
func ScriptCommand(script, name string, args []string, sudo SudoMode, user string) string {
	return shellCommand(script, name, args, sudo, user)
}

// SudoMode says how the agent gets root on the host.
type SudoMode int

const (
	// SudoAuto uses sudo unless the remote user is root.
	SudoAuto SudoMode = iota
	// SudoAlways always runs the agent through sudo -n.
	SudoAlways
	// SudoNever runs the agent as the remote user, which must be root.
	SudoNever
)

// ParseSudoMode reads "auto", "always" or "never".
func ParseSudoMode(s string) (SudoMode, error) {
	switch s {
	case "auto", "":
		return SudoAuto, nil
	case "always":
		return SudoAlways, nil
	case "never":
		return SudoNever, nil
	}
	return 0, fmt.Errorf("freeze: unknown sudo mode %q (want auto, always or never)", s)
}

// String returns the flag spelling of m.
func (m SudoMode) String() string {
	switch m {
	case SudoAlways:
		return "always"
	case SudoNever:
		return "never"
	}
	return "auto"
}

// Quote returns s quoted for a POSIX shell so that the shell reads it back
// as exactly one word equal to s, whatever bytes it holds. NUL cannot be
// passed through a shell and must be rejected before this point.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Command returns the command line that starts the agent for opts when the
// remote login user is user. Every value in it is quoted with Quote; the
// remote login shell must be POSIX compatible (sh, bash, dash, zsh, ksh).
func Command(opts Options, user string) string {
	args := []string{opts.nonce, opts.RunID,
		strconv.Itoa(timeoutSeconds(opts.Timeout)), boolArg(opts.AllowRoot)}
	for i, m := range opts.Mounts {
		if i < len(opts.Devices) && opts.Devices[i] != "" {
			m = opts.Devices[i] + m // "259:1/data": checked on the host
		}
		args = append(args, m)
	}
	return shellCommand(agentScript, "orchestrate-agent", args, opts.Sudo, user)
}

// shellCommand runs script with /bin/sh under name with args, through
// sudo -n when sudo mode and user call for it.
func shellCommand(script, name string, args []string, sudo SudoMode, user string) string {
	argv := append([]string{"/bin/sh", "-c", compact(libScript + script), name}, args...)
	if useSudo(sudo, user) {
		argv = append([]string{"sudo", "-n", "--"}, argv...)
	}
	var b strings.Builder
	b.WriteString("exec")
	for _, a := range argv {
		b.WriteByte(' ')
		b.WriteString(Quote(a))
	}
	return b.String()
}

// UsesSudo reports whether the agent goes through sudo -n in mode m when
// the remote login user is user.
func UsesSudo(m SudoMode, user string) bool { return useSudo(m, user) }

func useSudo(m SudoMode, user string) bool {
	switch m {
	case SudoAlways:
		return true
	case SudoNever:
		return false
	}
	return user != "root"
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// timeoutSeconds rounds d up to whole seconds, at least one: sleep(1) in
// POSIX takes whole seconds.
func timeoutSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

// compact drops the comment lines and indentation of a script so the
// command line stays small; the scripts have no here-documents, so this
// changes no meaning.
func compact(script string) string {
	var b strings.Builder
	for _, line := range strings.Split(script, "\n") {
		t := strings.TrimLeft(line, "\t ")
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		b.WriteString(t)
		b.WriteByte('\n')
	}
	return b.String()
}
