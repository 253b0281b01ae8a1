// Package identify asks a host for its own EC2 instance ID, so that
// orchestrate never freezes or snapshots an instance other than the one the
// hosts file or EC2 says is behind an address.
//
// The question is a short POSIX sh script (identify.sh) sent over the
// existing connection as `exec /bin/sh -c SCRIPT NAME ARGS`; nothing is
// installed on the host and nothing runs as root. The script reads the
// Nitro DMI asset tag (/sys/devices/virtual/dmi/id/board_asset_tag), then
// asks the instance metadata service with IMDSv2 (a token from PUT
// /latest/api/token, then GET /latest/meta-data/instance-id) through curl,
// or GNU wget when curl is missing.
//
// Safety stance: no credential of any kind is sent by the operator or by
// the host. The script ignores curl, wget and netrc configuration files,
// bypasses proxies, follows no redirect and puts no environment value into
// a request. IMDSv1 (a plain GET without a token) is never used: a service
// that offers no token is not the EC2 one and counts as unavailable. Every
// value the host prints is checked here against the instance ID shape
// before it is used, so a confused or hostile metadata server can make the
// check unavailable but cannot supply an ID that was not well formed.
//
// The package knows nothing of SSH or EC2: it needs only a Runner.
package identify
