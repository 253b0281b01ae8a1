package ec2sim

// This file serves the JSON control API under /_ec2sim/. It is not
// authenticated: the emulator is meant to listen on loopback only.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// FaultRequest is the body of POST /_ec2sim/faults: Fault names one of
// the fault setters and the other fields are its arguments. Durations are
// Go duration strings such as "1.5s".
//
//	{"fault":"latency","action":"CreateSnapshots","duration":"2s"}
//	{"fault":"fail_next","action":"CreateSnapshots","n":2,"code":"RequestLimitExceeded"}
//	{"fault":"deny","action":"DeleteSnapshot"}
//	{"fault":"allow","action":"DeleteSnapshot"}
//	{"fault":"volume_rate_limit","volume_id":"vol-0123abcd","duration":"15s"}
//	{"fault":"fail_snapshots_of","volume_id":"vol-0123abcd"}
//	{"fault":"detach_volume","volume_id":"vol-0123abcd"}
type FaultRequest struct {
	Fault    string `json:"fault"`
	Action   string `json:"action,omitempty"`
	N        int    `json:"n,omitempty"`
	Code     string `json:"code,omitempty"`
	VolumeID string `json:"volume_id,omitempty"`
	Duration string `json:"duration,omitempty"`
}

// ExportRequest is the body of POST /_ec2sim/export.
type ExportRequest struct {
	SnapshotID string `json:"snapshot_id"`
	Path       string `json:"path"`
}

// ApplyFault calls the fault setter named by f.Fault with f's arguments.
// It fails, changing nothing, for an unknown fault, a missing argument or
// a malformed duration.
func (s *Server) ApplyFault(f FaultRequest) error {
	var d time.Duration
	if f.Duration != "" {
		var err error
		if d, err = time.ParseDuration(f.Duration); err != nil {
			return fmt.Errorf("ec2sim: apply fault %s: %w", f.Fault, err)
		}
	}
	need := func(what, v string) error {
		if v == "" {
			return fmt.Errorf("ec2sim: apply fault %s: missing %s", f.Fault, what)
		}
		return nil
	}

	switch f.Fault {
	case "latency", "fail_next", "deny", "allow":
		if err := need("action", f.Action); err != nil {
			return err
		}
	case "volume_rate_limit", "fail_snapshots_of", "detach_volume":
		if err := need("volume_id", f.VolumeID); err != nil {
			return err
		}
	default:
		return fmt.Errorf("ec2sim: apply fault: unknown fault %q", f.Fault)
	}

	switch f.Fault {
	case "latency":
		s.SetLatency(f.Action, d)
	case "fail_next":
		if err := need("code", f.Code); err != nil {
			return err
		}
		s.FailNext(f.Action, f.N, f.Code)
	case "deny":
		s.Deny(f.Action)
	case "allow":
		s.Allow(f.Action)
	case "volume_rate_limit":
		s.SetVolumeRateLimit(f.VolumeID, d)
	case "fail_snapshots_of":
		s.FailSnapshotsOf(f.VolumeID)
	case "detach_volume":
		s.DetachVolume(f.VolumeID)
	}
	return nil
}

// serveControl routes /_ec2sim/ requests.
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	route := r.Method + " " + r.URL.Path
	switch route {
	case "GET /_ec2sim/snapshots":
		writeJSON(w, http.StatusOK, s.Snapshots())
	case "GET /_ec2sim/calls":
		writeJSON(w, http.StatusOK, s.Calls())
	case "POST /_ec2sim/faults":
		var f FaultRequest
		if !readJSON(w, r, &f) {
			return
		}
		if err := s.ApplyFault(f); err != nil {
			writeJSONError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	case "POST /_ec2sim/export":
		var e ExportRequest
		if !readJSON(w, r, &e) {
			return
		}
		// Over HTTP anyone on the machine can ask, so a write goes only
		// into the snapshot directory; ExportSnapshot in Go is not limited.
		err := s.checkExportPath(e.Path)
		if err == nil {
			err = s.ExportSnapshot(e.SnapshotID, e.Path)
		}
		switch {
		case errors.Is(err, ErrSnapshotNotFound):
			writeJSONError(w, http.StatusNotFound, err)
		case err != nil:
			writeJSONError(w, http.StatusBadRequest, err)
		default:
			writeJSON(w, http.StatusOK, map[string]string{"path": e.Path})
		}
	default:
		writeJSONError(w, http.StatusNotFound,
			fmt.Errorf("ec2sim: no control route %s", route))
	}
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSONError(w, http.StatusBadRequest,
			fmt.Errorf("ec2sim: decode request: %w", err))
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// checkExportPath refuses an export over the control API outside
// Options.SnapshotDir.
func (s *Server) checkExportPath(p string) error {
	dir := s.opts.SnapshotDir
	if dir == "" {
		return errors.New("ec2sim: export over HTTP needs --snapshot-dir")
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return err
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if rel, err := filepath.Rel(root, abs); err != nil || rel == "." ||
		strings.HasPrefix(rel, "..") || filepath.IsAbs(rel) {
		return fmt.Errorf("ec2sim: export path %s is outside the snapshot directory %s", p, dir)
	}
	if fi, err := os.Lstat(abs); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("ec2sim: export path %s is a symlink", p)
	}
	return nil
}
