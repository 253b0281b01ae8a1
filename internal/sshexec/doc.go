// Package sshexec is orchestrate's SSH client: it dials one host, checks
// its host key strictly against known_hosts, authenticates with key files
// or ssh-agent, and runs one command at a time over that single
// connection, reporting the command's exit status. It can go through
// ProxyJump hosts (each host key checked like the target's) and apply an
// ssh_config file (LoadConfig, SSHConfig.Apply).
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

// TODO(sshconfig): only the file given to LoadConfig is read, not
// /etc/ssh/ssh_config; Match supports host and all only (the parser
// refuses exec, user, localuser, originalhost, canonical and final), and
// "Match host" matches the alias, not the HostName as OpenSSH does.
// TODO(jump): a ProxyJump hop's own ProxyJump in ssh_config is not
// followed, and every hop uses the target's keys and known_hosts files
// rather than its own IdentityFile and UserKnownHostsFile.
