package ec2sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// Options tune a Server. The zero value is usable when no volume has a
// BackingFile.
type Options struct {
	// CompleteAfter is how long a new snapshot stays pending while its
	// progress rises from 0% to 100%. Zero completes a snapshot on the
	// first read after the create call.
	CompleteAfter time.Duration
	// SnapshotDir receives the images of snapshots of volumes with a
	// BackingFile, as <snapshot-id>.img. Required if any volume has one.
	SnapshotDir string
	// Logger receives one debug record per EC2 call. Nil discards.
	Logger *slog.Logger
	// Now is the clock for snapshot times, progress and rate limits.
	// Nil means time.Now. Signature dates are always checked against
	// the real clock.
	Now func() time.Time
}

// Server is an in-memory EC2 endpoint. It is safe for concurrent use;
// every method may be called while requests are being served.
type Server struct {
	fx      *Fixture // account, region and credentials; never changes
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	started time.Time
	secrets map[string]string

	mu        sync.Mutex
	instances []*Instance
	volumes   []*Volume
	snaps     []*snapRec
	seq       int // sequence number of the next snapshot
	calls     []Call
	faults    faults
	hook      func(CreateEvent)
}

// maxBody bounds the size of a request body.
const maxBody = 1 << 20

// New returns a Server seeded with a copy of f, creating
// Options.SnapshotDir if needed. It fails if the fixture has no
// credentials, malformed or duplicate IDs, mappings to unknown volumes,
// or backing files but no Options.SnapshotDir.
func New(f *Fixture, opts Options) (*Server, error) {
	fx, err := f.clone()
	if err != nil {
		return nil, fmt.Errorf("ec2sim: %w", err)
	}
	s := &Server{
		fx:      fx,
		opts:    opts,
		log:     opts.Logger,
		now:     opts.Now,
		secrets: map[string]string{},
		faults:  newFaults(),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.started = s.now()

	for _, c := range fx.Credentials {
		s.secrets[c.AccessKeyID] = c.SecretAccessKey
	}
	for i := range fx.Instances {
		s.instances = append(s.instances, &fx.Instances[i])
	}
	for i := range fx.Volumes {
		v := &fx.Volumes[i]
		if v.BackingFile != "" && opts.SnapshotDir == "" {
			return nil, fmt.Errorf("ec2sim: volume %s has a backing file but no snapshot directory is set", v.ID)
		}
		s.volumes = append(s.volumes, v)
	}
	if opts.SnapshotDir != "" {
		if err := os.MkdirAll(opts.SnapshotDir, 0o755); err != nil {
			return nil, fmt.Errorf("ec2sim: create snapshot directory: %w", err)
		}
	}
	for _, sn := range fx.Snapshots {
		s.snaps = append(s.snaps, &snapRec{Snapshot: sn, seq: s.seq})
		s.seq++
	}
	return s, nil
}

// request is one EC2 call being handled.
type request struct {
	ctx         context.Context
	action      string
	p           params
	accessKeyID string
	dryRun      bool
}

// handler performs one action and returns its response struct.
type handler func(s *Server, c *request) (any, *apiError)

var handlers = map[string]handler{
	"DescribeInstances": (*Server).describeInstances,
	"DescribeVolumes":   (*Server).describeVolumes,
	"CreateSnapshot":    (*Server).createSnapshot,
	"CreateSnapshots":   (*Server).createSnapshotsAction,
	"DescribeSnapshots": (*Server).describeSnapshots,
	"CreateTags":        (*Server).createTags,
	"DeleteSnapshot":    (*Server).deleteSnapshot,
}

// ServeHTTP answers the EC2 Query API on any path outside /_ec2sim/ (GET
// with a query string or form POST) and the JSON control API under
// /_ec2sim/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_ec2sim/") {
		s.serveControl(w, r)
		return
	}
	start := time.Now()
	reqID := newRequestID()

	body, form, perr := readForm(r)
	c := &request{
		ctx:    r.Context(),
		action: form.Get("Action"),
		p:      params{form},
		dryRun: strings.EqualFold(form.Get("DryRun"), "true"),
	}
	akid, aerr := s.verify(r, body)
	c.accessKeyID = akid
	idx := s.recordCall(c)

	resp, e := s.handle(c, perr, aerr)
	if e == nil {
		if err := writeXML(w, c.action, reqID, resp); err != nil {
			e = errf("InternalError", "An internal error has occurred")
			writeError(w, e, reqID)
		}
	} else {
		writeError(w, e, reqID)
	}

	code := ""
	if e != nil {
		code = e.Code
	}
	s.mu.Lock()
	s.calls[idx].Code = code
	s.mu.Unlock()
	s.log.Debug("ec2 call", "action", c.action, "akid", akid,
		"dry_run", c.dryRun, "code", code, "elapsed", time.Since(start))
}

// readForm returns the body and the decoded parameters of r.
func readForm(r *http.Request) ([]byte, url.Values, *apiError) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, url.Values{}, errf("InvalidRequest",
			"The request body could not be read.")
	}
	if len(body) > maxBody {
		return nil, url.Values{}, errf("InvalidRequest",
			"The request body is too large.")
	}
	if r.Method == http.MethodGet {
		return body, r.URL.Query(), nil
	}
	if r.Method != http.MethodPost {
		return body, url.Values{}, errf("InvalidAction",
			"The HTTP method %s is not supported.", r.Method)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return body, url.Values{}, errf("InvalidParameterValue",
			"The request body is not a valid form.")
	}
	return body, form, nil
}

// handle runs the checks every call goes through, in EC2's order, then
// the action: latency, form, authentication, action and version,
// injected failures, IAM denial.
func (s *Server) handle(c *request, perr, aerr *apiError) (any, *apiError) {
	if d := s.latencyOf(c.action); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-c.ctx.Done():
			return nil, errf("RequestTimeout", "The request timed out.")
		}
	}
	if perr != nil {
		return nil, perr
	}
	if aerr != nil {
		return nil, aerr
	}

	if c.action == "" {
		return nil, errf("MissingAction",
			"The request must contain the parameter Action")
	}
	h, ok := handlers[c.action]
	if !ok {
		return nil, errf("InvalidAction",
			"The action %s is not valid for this web service.", c.action)
	}
	switch v := c.p.str("Version"); v {
	case apiVersion:
	case "":
		return nil, errf("MissingParameter",
			"The request must contain the parameter Version")
	default:
		return nil, errf("NoSuchVersion",
			"The requested version (%s) of service AmazonEC2 does not exist", v)
	}
	if _, e := c.p.boolean("DryRun"); e != nil {
		return nil, e
	}

	if code, fail := s.takeFailure(c.action); fail {
		return nil, &apiError{Code: code, Message: injectedMessage(code)}
	}
	if s.denied(c.action) {
		return nil, &apiError{Code: "UnauthorizedOperation",
			Message: deniedMessage()}
	}
	return h(s, c)
}

// recordCall appends c to the call log and returns its index.
func (s *Server) recordCall(c *request) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, Call{
		Action:      c.action,
		AccessKeyID: c.accessKeyID,
		DryRun:      c.dryRun,
		Time:        s.now(),
	})
	return len(s.calls) - 1
}

// dryRunOK is the answer to a DryRun call that would have succeeded.
func dryRunOK() *apiError { return errf("DryRunOperation", msgDryRun) }

// Call is one EC2 API call as the server saw it, in order of arrival.
// Code is the error code returned, or "" on success; a DryRun call that
// would have succeeded has Code "DryRunOperation".
type Call struct {
	Action      string    `json:"action"`
	AccessKeyID string    `json:"access_key_id"`
	DryRun      bool      `json:"dry_run"`
	Time        time.Time `json:"time"`
	Code        string    `json:"code"`
}

// Calls returns a copy of every EC2 call received so far, in order of
// arrival, including those that failed authentication.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	copy(out, s.calls)
	return out
}

// Errors returned by the Go methods of Server.
var (
	// ErrSnapshotNotFound means no snapshot has that ID (any more).
	ErrSnapshotNotFound = errors.New("ec2sim: snapshot not found")
	// ErrNoImage means the snapshot exists but has no bytes: its volume
	// had no backing file.
	ErrNoImage = errors.New("ec2sim: snapshot has no image")
)
