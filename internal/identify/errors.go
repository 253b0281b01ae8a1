package identify

import (
	"errors"
	"fmt"
)

// ErrUnavailable means no source gave the host's instance ID: no Nitro asset
// tag, and the metadata service was unreachable, disabled, IMDSv1 only,
// answered with something that is not an instance ID, or there was no curl
// or usable wget on the host. Errors from Read match it with errors.Is and
// say why for each source. Nothing on the host was changed; the caller
// decides whether that is fatal (--verify-identity require) or a warning
// (auto).
var ErrUnavailable = errors.New("identify: instance id unavailable")

// MismatchError means the host reported an instance ID other than the one
// expected: the address leads to a different instance. Nothing may be
// frozen or snapshotted on that host.
type MismatchError struct {
	Got    string // the ID the host reported
	Want   string // the ID from the hosts file or EC2
	Source string // where the host read Got: SourceDMI or SourceIMDS
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("identify: host reports instance %s (from %s), want %s",
		e.Got, sourceLabel(e.Source), e.Want)
}

func sourceLabel(s string) string {
	switch s {
	case SourceDMI:
		return "its dmi asset tag"
	case SourceIMDS:
		return "instance metadata"
	}
	return s
}

// reasonText turns a reason code printed by the script into words.
func reasonText(code, endpoint, dmiPath string) string {
	switch code {
	case "dmi:absent":
		return "dmi: no readable asset tag at " + dmiPath
	case "dmi:not-id":
		return "dmi: asset tag at " + dmiPath +
			" is not an instance id (not a nitro instance)"
	case "imds:no-client":
		return "imds: neither curl nor wget on the host"
	case "imds:wget-no-put":
		return "imds: wget on the host cannot send PUT " +
			"(busybox wget?); install curl or GNU wget"
	case "imds:no-token":
		return "imds: no IMDSv2 token from " + endpoint +
			" (unreachable, disabled, or IMDSv1 only)"
	case "imds:no-id":
		return "imds: no instance id from " + endpoint
	case "imds:bad-id":
		return "imds: " + endpoint + " answered with something that is not an instance id"
	}
	return fmt.Sprintf("unknown reason %q", code)
}
