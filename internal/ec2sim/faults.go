package ec2sim

// This file holds fault injection and the create hook. All setters take
// the server lock and apply to calls that arrive after they return.

import (
	"maps"
	"slices"
	"time"
)

// faults is the injected misbehaviour, guarded by Server.mu.
type faults struct {
	latency  map[string]time.Duration
	failNext map[string]failRule
	deny     map[string]bool
	rateMin  map[string]time.Duration // per volume
	lastSnap map[string]time.Time     // per volume, last accepted create
	failVols map[string]bool
}

type failRule struct {
	n    int
	code string
}

func newFaults() faults {
	return faults{
		latency:  map[string]time.Duration{},
		failNext: map[string]failRule{},
		deny:     map[string]bool{},
		rateMin:  map[string]time.Duration{},
		lastSnap: map[string]time.Time{},
		failVols: map[string]bool{},
	}
}

// SetLatency delays every later call of action by d before it is
// authenticated or handled. A client that gives up meanwhile gets
// RequestTimeout. d <= 0 removes the delay.
func (s *Server) SetLatency(action string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.faults.latency, action)
		return
	}
	s.faults.latency[action] = d
}

func (s *Server) latencyOf(action string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.latency[action]
}

// FailNext makes the next n authenticated calls of action (DryRun calls
// included) fail with code, sent with EC2's HTTP status for that code
// (RequestLimitExceeded and Unavailable 503, InternalError 500,
// UnauthorizedOperation 403, AuthFailure 401, others 400) and a realistic
// message. It replaces any earlier rule for action; n <= 0 removes it.
func (s *Server) FailNext(action string, n int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= 0 {
		delete(s.faults.failNext, action)
		return
	}
	s.faults.failNext[action] = failRule{n: n, code: code}
}

// takeFailure consumes one injected failure of action, if any.
func (s *Server) takeFailure(action string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.faults.failNext[action]
	if !ok {
		return "", false
	}
	r.n--
	if r.n <= 0 {
		delete(s.faults.failNext, action)
	} else {
		s.faults.failNext[action] = r
	}
	return r.code, true
}

// Deny simulates an IAM policy without action: every later call of it,
// DryRun calls included, fails with UnauthorizedOperation (403) and an
// opaque encoded authorization failure message.
func (s *Server) Deny(action string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.deny[action] = true
}

// Allow undoes Deny for action.
func (s *Server) Allow(action string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.faults.deny, action)
}

func (s *Server) denied(action string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.deny[action]
}

// SetVolumeRateLimit makes a CreateSnapshot or CreateSnapshots call that
// would snapshot volumeID sooner than min after the last accepted one
// fail with SnapshotCreationPerVolumeRateExceeded (400). Rejected calls
// do not restart the interval. min <= 0 removes the limit.
func (s *Server) SetVolumeRateLimit(volumeID string, min time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if min <= 0 {
		delete(s.faults.rateMin, volumeID)
		return
	}
	s.faults.rateMin[volumeID] = min
}

// FailSnapshotsOf makes every later snapshot of volumeID end in state
// "error" instead of "completed". Snapshots in error count against the
// volume's concurrent snapshot limit until deleted, as on EC2.
func (s *Server) FailSnapshotsOf(volumeID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.failVols[volumeID] = true
}

// DetachVolume removes volumeID from the block device mappings of its
// instance, as if it had been detached; the volume becomes "available".
// It does nothing for an unknown or unattached volume.
func (s *Server) DetachVolume(volumeID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, in := range s.instances {
		in.BlockDeviceMappings = slices.DeleteFunc(in.BlockDeviceMappings,
			func(m Mapping) bool { return m.VolumeID == volumeID })
	}
}

// CreateEvent describes a CreateSnapshot or CreateSnapshots call at the
// moment it arrives: the action, the instance (empty for CreateSnapshot),
// the volumes about to be snapshotted, the signing key and the server
// time.
type CreateEvent struct {
	Action      string    `json:"action"`
	InstanceID  string    `json:"instance_id"`
	VolumeIDs   []string  `json:"volume_ids"`
	AccessKeyID string    `json:"access_key_id"`
	Time        time.Time `json:"time"`
}

// OnCreateSnapshots registers fn, a test hook, to be called synchronously
// for every CreateSnapshot or CreateSnapshots call that passed
// authentication, permission, parameter and rate checks and is not a
// DryRun: after those checks, before the snapshot's point in time is
// taken (its bytes copied) and before the response is sent. The call
// waits for fn to return, so fn sees the client mid-call; fn must not
// wait for the response. nil removes the hook.
func (s *Server) OnCreateSnapshots(fn func(CreateEvent)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = fn
}

// Snapshots returns a copy of every snapshot, in order of creation, with
// state and progress as of now.
func (s *Server) Snapshots() []Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	out := make([]Snapshot, 0, len(s.snaps))
	for _, r := range s.snaps {
		sn := s.view(r, now)
		sn.Tags = maps.Clone(sn.Tags)
		out = append(out, sn)
	}
	return out
}
