package snapshot

import (
	"errors"
	"fmt"
	"net"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// ErrOutcomeUnknown marks a Create error after which it is unknown
// whether EC2 created the snapshots: the request was sent but no answer
// came (deadline, connection reset, unreadable response). The snapshots
// may exist; look them up with FindByTag and do not trust them as
// application-consistent. Test with errors.Is.
var ErrOutcomeUnknown = errors.New("outcome unknown, the snapshots may have been created")

// APIError is an error answered by EC2 (or by the credential chain on
// its behalf), with a hint for the operator. Err is the SDK error, kept
// for errors.As (smithy.APIError, *awshttp.ResponseError).
type APIError struct {
	Action     string // EC2 action, e.g. "CreateSnapshots"
	Code       string // EC2 error code, e.g. "UnauthorizedOperation"
	Message    string // EC2's message, verbatim
	Hint       string // what the operator can do; may be ""
	HTTPStatus int    // 0 when unknown
	RequestID  string // EC2 request id, for AWS support; may be ""
	Err        error
}

// Error returns "snapshot: Action: Code: Message", then the hint, if
// any, as "; hint: ..." on the same line, so the error reads whole in a
// table cell, a JSON string and a log line alike.
func (e *APIError) Error() string {
	s := "snapshot: " + e.Action + ": " + e.Code + ": " + e.Message
	if e.Hint != "" {
		s += "; hint: " + e.Hint
	}
	return s
}

// Unwrap returns the SDK error.
func (e *APIError) Unwrap() error { return e.Err }

// PlanError means a snapshot request for an instance cannot be built or
// did not snapshot what it should: it names the instance and, when one
// is at fault, the volume.
type PlanError struct {
	InstanceID string
	VolumeID   string // may be ""
	Msg        string
}

// Error returns "snapshot: instance ID[, volume ID]: Msg".
func (e *PlanError) Error() string {
	s := "snapshot: instance " + e.InstanceID
	if e.VolumeID != "" {
		s += ", volume " + e.VolumeID
	}
	return s + ": " + e.Msg
}

// SnapshotError means a snapshot ended in a state other than completed
// (usually "error"); Message is EC2's StateMessage, possibly "".
type SnapshotError struct {
	SnapshotID string
	VolumeID   string
	State      string
	Message    string
}

// Error returns "snapshot: snapshot ID of volume ID is in state S[: Message]".
func (e *SnapshotError) Error() string {
	s := fmt.Sprintf("snapshot: snapshot %s of volume %s is in state %s",
		e.SnapshotID, e.VolumeID, e.State)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// apiError turns an error of an EC2 call into an *APIError when EC2
// answered it, with the hint for its code; other errors are wrapped
// with the action.
func apiError(action string, err error) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return fmt.Errorf("snapshot: %s: %w", action, err)
	}
	e := &APIError{Action: action, Code: ae.ErrorCode(),
		Message: ae.ErrorMessage(), Err: err}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		e.HTTPStatus = re.HTTPStatusCode()
		e.RequestID = re.ServiceRequestID()
	}
	e.Hint = hintFor(action, e.Code)
	return e
}

// hintFor returns the operator's next step for an EC2 error code.
func hintFor(action, code string) string {
	switch code {
	case "UnauthorizedOperation":
		h := "the credentials may not call ec2:" + action
		if strings.HasPrefix(action, "CreateSnapshot") {
			h += " (tagging at creation also needs ec2:CreateTags on snapshots)"
		}
		return h + "; decode the reason with `aws sts decode-authorization-message --encoded-message <message>`"
	case "AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch",
		"UnrecognizedClientException":
		return "EC2 rejected the credentials: check --profile and AWS_PROFILE, or run `aws sso login` again"
	case "RequestExpired", "ExpiredToken":
		return "the request or session expired: check the clock of this machine, or renew the session (`aws sso login`)"
	case "SnapshotCreationPerVolumeRateExceeded":
		return "EC2 takes at most one snapshot of a volume about every 15 seconds: wait at least 15 s before snapshotting this host again"
	case "ConcurrentSnapshotLimitExceeded":
		return "a volume has too many snapshots in progress (5, 1 for st1 and sc1; snapshots in state error count until deleted): wait for them to complete or delete the failed ones"
	case "InvalidVolume.NotFound":
		return "the volume does not exist in this region: check region= for the host and the volumes it maps to"
	case "InvalidInstanceID.NotFound":
		return "the instance does not exist in this region: check the instance ID and --region or region= for the host"
	case "InvalidSnapshot.NotFound":
		return "the snapshot does not exist in this region, or not yet (EC2 is eventually consistent)"
	case "RequestLimitExceeded":
		return "EC2 is throttling this account: lower --parallel or retry later"
	case "IncorrectState", "InvalidState":
		return "a previous snapshot of the volume may still be in progress: wait for it to complete"
	case "TagLimitExceeded":
		return "a snapshot may carry at most 50 tags: drop some --tag"
	}
	return ""
}

// answered reports whether err is an error answer of the endpoint, after
// which nothing was done. A send failure also comes as a ResponseError,
// with status 0, and an unreadable answer may hide a success: neither
// counts.
func answered(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae)
}

// notSent reports whether err is a failure to connect, after which the
// request surely did not reach EC2.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
