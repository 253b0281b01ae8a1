// Package hosts reads the hosts file that lists the EC2 instances
// orchestrate snapshots. It checks the whole file before anything touches
// a host: a bad file yields no hosts at all and every problem found, each
// with its file, line and column, so one edit can fix them all.
//
// # Format
//
// One instance per line. Blank lines are ignored; a '#' at the start of a
// line or after a space or tab starts a comment that runs to the end of the
// line ('#' inside a field is an ordinary character). A line is a
// destination followed by key=value options, separated by spaces or tabs:
//
//	# destination          options
//	db1.internal           instance=i-0abc123def4567890 mounts=/data
//	ubuntu@10.0.3.17:2222  mounts=/srv,/var/lib/mysql region=eu-west-1
//	[fd00::17]:2222        volumes=vol-0abc123def4567890
//	web-2                  # an alias from ~/.ssh/config
//
// The destination is [user@]host[:port], [ipv6]:port, [ipv6], a bare IPv6
// address (a destination with more than one colon and no brackets is an
// IPv6 address without a port), or an ssh_config Host alias. Users are
// letters, digits, '.', '_' and '-'; hosts are host names (labels of
// letters, digits, '-' and '_'), IPv4 or IPv6 literals; ports are 1-65535.
// Nothing may start with '-', so no field can reach ssh as an option.
//
// Options (each at most once per line, no empty values):
//
//	instance=i-0abc1234         EC2 instance ID, 8 or 17 lowercase hex
//	mounts=/data,/var/lib/x     mount points to freeze, comma-separated
//	volumes=vol-0abc1234,...    EBS volumes behind the mounts
//	region=eu-west-1            the instance's Region
//	user=ubuntu                 SSH user, when the destination has none
//	port=2222                   SSH port, when the destination has none
//
// Mount points must be absolute and normalised (path.Clean leaves them
// unchanged), without duplicates or control characters. A field cannot
// hold whitespace, so a mount point writes some bytes as octal escapes,
// the way /proc/mounts and fstab do: \040 for a space, \134 for a
// backslash and \054 for a comma (the list separator). \011 (tab) is
// understood but refused, since a tab is a control character. Any other
// backslash is an error. Quotes, '$' and backquotes need no escape; the
// packages that send a mount point to a remote shell quote it.
//
// The same destination (user, host and port as written, compared after
// normalising case and IPv6 spelling, with no defaults filled in) or the
// same instance ID on two lines is an error.
//
// Parse accepts a host without instance=, mounts= or volumes=, for the
// discovery steps that may fill them in; File.Require then demands the
// ones that cannot be discovered yet.
package hosts
