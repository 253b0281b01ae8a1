package freeze

import (
	"errors"
	"fmt"
)

var (
	// ErrSudoPassword means sudo -n refused because it wants a password.
	// Nothing was frozen.
	ErrSudoPassword = errors.New("freeze: sudo -n needs a password " +
		"(allow the agent with NOPASSWD in sudoers, or log in as root)")

	// ErrThawUnconfirmed means the agent did not confirm that every
	// filesystem it froze was thawed. The host needs attention now.
	ErrThawUnconfirmed = errors.New("freeze: thaw not confirmed")

	errAgentExited = errors.New("freeze: agent exited")
)

// AgentError is a refusal reported by the agent: a failed check before the
// freeze, a held lock, or a freeze that failed (after which the agent has
// thawed everything it froze). Code is the agent's short reason, e.g.
// "notmount", "root", "busy", "locked", "freeze".
type AgentError struct {
	Code  string
	Mount string // the mount it concerns, or ""
	Msg   string
}

func (e *AgentError) Error() string {
	if e.Mount != "" {
		return fmt.Sprintf("freeze: %s: %s (%s)", e.Mount, e.Msg, e.Code)
	}
	return fmt.Sprintf("freeze: %s (%s)", e.Msg, e.Code)
}
