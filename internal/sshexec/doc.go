// Package sshexec is orchestrate's SSH client: it dials one host, checks
// its host key strictly against known_hosts, authenticates with key files
// or ssh-agent, and runs one command at a time over that single
// connection, reporting the command's exit status.
//
// Safety stance: a host key that is unknown, changed or revoked is never
// accepted silently; an unknown key is recorded only when the caller asks
// for it (AcceptNewHostKeys), and a changed or revoked key is always
// refused. The client never forwards the agent, never sends environment
// variables, never requests a terminal and never opens subsystems, so a
// compromised host learns nothing from the operator's machine beyond the
// commands it is sent. A connection whose peer stops answering keepalives
// is closed after a bounded time, so no caller blocks forever on a dead
// host; that matters because the freeze agent relies on end of input to
// thaw.
package sshexec

// TODO(sshconfig): ~/.ssh/config (HostName, User, Port, IdentityFile,
// UserKnownHostsFile) is not read; callers pass resolved values.
// TODO(jump): ProxyJump is not supported; Dial connects directly. A jump
// host needs a handshake bounded by a goroutine, since tunnelled
// connections have no deadlines.
