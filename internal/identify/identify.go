package identify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Sources of an instance ID, as named in Options.Sources and
// Identity.Source.
const (
	// SourceDMI is the Nitro DMI asset tag, a file any user may read.
	SourceDMI = "dmi"
	// SourceIMDS is the instance metadata service, spoken with IMDSv2.
	SourceIMDS = "imds"
)

// DefaultEndpoint is the metadata service address every EC2 instance can
// reach; Options.Endpoint "" means it. The IPv6 one is
// "http://[fd00:ec2::254]", for instances with the IPv6 endpoint on.
const DefaultEndpoint = "http://169.254.169.254"

// EndpointEnv is the environment variable AWS tools read for the metadata
// endpoint. The operator side may fill Options.Endpoint from it; this
// package never reads the environment.
const EndpointEnv = "AWS_EC2_METADATA_SERVICE_ENDPOINT"

// DefaultTimeout bounds a whole probe when Options.Timeout is 0.
const DefaultTimeout = 5 * time.Second

// stepTimeout bounds each HTTP request the host makes.
const stepTimeout = 2 * time.Second

// dmiPath is where Nitro instances expose their instance ID.
const dmiPath = "/sys/devices/virtual/dmi/id/board_asset_tag"

// idPattern is the shape of an instance ID, as the hosts file accepts it.
var idPattern = regexp.MustCompile(`^i-([0-9a-f]{8}|[0-9a-f]{17})$`)

// regionPattern is the shape of a Region name (us-east-1, us-gov-west-1).
var regionPattern = regexp.MustCompile(`^[a-z]{2,}(-[a-z]+)+-[0-9]+$`)

// Runner runs one command on a host. Exec feeds stdin to the command,
// copies its output to stdout and stderr, and returns when it exits: nil
// on status 0, an error otherwise. Cancelling ctx must end the command.
// It has the shape of freeze.Runner; sshexec.Client satisfies it.
type Runner interface {
	Exec(ctx context.Context, cmd string, stdin io.Reader,
		stdout, stderr io.Writer) error
}

// Options configures one probe.
type Options struct {
	// Endpoint is the metadata service base URL, http or https, with no
	// user info, query or fragment; "" means DefaultEndpoint. It is the
	// HOST that contacts this address, not the operator: the operator side
	// sets it from --metadata-endpoint or EndpointEnv, and it must make
	// sense from the host.
	Endpoint string
	// Sources is the order to try, SourceDMI and SourceIMDS, each at most
	// once; nil means both, DMI first.
	Sources []string
	// Timeout bounds the whole probe, connection round trips included;
	// 0 means DefaultTimeout. Each HTTP request on the host gets at most
	// 2 s (whole seconds, at least one).
	Timeout time.Duration

	// testOnlyDMIPath replaces the DMI asset tag path; tests only.
	testOnlyDMIPath string
}

// Identity is what a host said about itself.
type Identity struct {
	InstanceID string // always matches i- and 8 or 17 lowercase hex digits
	Source     string // SourceDMI or SourceIMDS
	Region     string // from IMDS placement/region when read, else ""
}

// Read asks the host behind r for its instance ID, trying opts.Sources in
// order, within opts.Timeout. It changes nothing on the host, needs no
// root, and is safe to retry.
//
// Errors: invalid options (nothing run); an error matching ErrUnavailable
// when no source gave an ID or the probe ran out of time; ctx's error when
// ctx ended first; otherwise the Runner's error, or a malformed answer,
// wrapped. Read never returns an ID that did not pass the shape check.
func Read(ctx context.Context, r Runner, opts Options) (*Identity, error) {
	o, err := normalise(opts)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, errors.New("identify: no runner")
	}
	cmd := command(o)

	pctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	out := &capped{max: 64 << 10}
	runErr := r.Exec(pctx, cmd, strings.NewReader(""), out, io.Discard)

	// An ID printed before the deadline or a failure is still the host's
	// own answer: the script prints it only after checking it.
	ans, perr := parseAnswer(out.Bytes())
	switch {
	case perr == nil && ans.id != nil:
		return ans.id, nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("identify: read instance id: %w", ctx.Err())
	case pctx.Err() != nil:
		return nil, fmt.Errorf("%w: probe timed out after %s",
			ErrUnavailable, o.Timeout)
	case runErr != nil:
		return nil, fmt.Errorf("identify: run probe: %w", runErr)
	case perr != nil:
		return nil, perr
	}

	reasons := make([]string, 0, len(ans.noID))
	for _, c := range ans.noID {
		reasons = append(reasons, reasonText(c, o.Endpoint, o.testOnlyDMIPath))
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "no source tried")
	}
	return nil, fmt.Errorf("%w: %s", ErrUnavailable, strings.Join(reasons, "; "))
}

// Check compares the host's identity with want, the instance ID from the
// hosts file or EC2. It returns nil when they are equal, a *MismatchError
// when they differ, an error matching ErrUnavailable when id is nil, and
// an error when want is not an instance ID.
func Check(id *Identity, want string) error {
	if !idPattern.MatchString(want) {
		return fmt.Errorf("identify: check against invalid instance id %q", want)
	}
	if id == nil {
		return fmt.Errorf("%w: nothing to check against %s", ErrUnavailable, want)
	}
	if id.InstanceID != want {
		return &MismatchError{Got: id.InstanceID, Want: want, Source: id.Source}
	}
	return nil
}

// normalise fills defaults and checks every option.
func normalise(o Options) (Options, error) {
	ep, err := checkEndpoint(o.Endpoint)
	if err != nil {
		return o, err
	}
	o.Endpoint = ep

	if o.Sources == nil {
		o.Sources = []string{SourceDMI, SourceIMDS}
	}
	if len(o.Sources) == 0 {
		return o, errors.New("identify: no identity source to try")
	}
	seen := map[string]bool{}
	for _, s := range o.Sources {
		if s != SourceDMI && s != SourceIMDS {
			return o, fmt.Errorf("identify: unknown identity source %q (want dmi or imds)", s)
		}
		if seen[s] {
			return o, fmt.Errorf("identify: identity source %q given twice", s)
		}
		seen[s] = true
	}

	switch {
	case o.Timeout < 0:
		return o, fmt.Errorf("identify: negative timeout %s", o.Timeout)
	case o.Timeout == 0:
		o.Timeout = DefaultTimeout
	}
	if o.testOnlyDMIPath == "" {
		o.testOnlyDMIPath = dmiPath
	}
	return o, nil
}

// checkEndpoint validates a metadata endpoint and drops a trailing slash.
func checkEndpoint(ep string) (string, error) {
	if ep == "" {
		return DefaultEndpoint, nil
	}
	for _, c := range []byte(ep) {
		if c <= ' ' || c == 0x7f {
			return "", fmt.Errorf("identify: metadata endpoint %q: holds a space or control character", ep)
		}
	}
	u, err := url.Parse(ep)
	if err != nil {
		return "", fmt.Errorf("identify: metadata endpoint %q: %w", ep, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("identify: metadata endpoint %q: want an http or https URL", ep)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("identify: metadata endpoint %q: no host", ep)
	case u.User != nil:
		return "", fmt.Errorf("identify: metadata endpoint %q: must not hold a user or password", ep)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(ep, "#"):
		return "", fmt.Errorf("identify: metadata endpoint %q: must not hold a query or fragment", ep)
	}
	return strings.TrimRight(ep, "/"), nil
}

// capped keeps at least the last max bytes written, and at most twice
// that: the answer comes last, and a chatty login shell cannot fill
// memory.
type capped struct {
	bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	c.Buffer.Write(p)
	if over := c.Len() - c.max; over > c.max {
		c.Buffer.Next(over)
		rest := append([]byte(nil), c.Bytes()...)
		c.Reset()
		c.Buffer.Write(rest)
	}
	return len(p), nil
}
