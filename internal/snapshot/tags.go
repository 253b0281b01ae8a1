package snapshot

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Tag keys orchestrate puts on every snapshot it creates. Only snapshots
// carrying them are ever listed or pruned as orchestrate's.
const (
	TagRunID       = "orchestrate:run-id"
	TagHost        = "orchestrate:host"
	TagInstanceID  = "orchestrate:instance-id"
	TagMounts      = "orchestrate:mounts"
	TagConsistency = "orchestrate:consistency"
)

// Values of TagConsistency: application when the filesystems were
// frozen until CreateSnapshots returned, crash when they may not have
// been, unverified until orchestrate knows.
const (
	ConsistencyApplication = "application"
	ConsistencyCrash       = "crash"
	// ConsistencyUnverified is what a snapshot is tagged with when it is
	// created, before the thaw has shown whether the filesystems stayed
	// frozen until the call returned. A snapshot left with it (orchestrate
	// was killed, or EC2 completed a call given up on) is not proven
	// consistent.
	ConsistencyUnverified = "unverified"
)

// Limits of EC2 tags, in characters.
const (
	maxTagKey   = 128
	maxTagValue = 256
)

// ErrBadTag is wrapped by every ParseTag error.
var ErrBadTag = errors.New("invalid tag")

// ParseTag splits a --tag argument "key=value" at its first "=". The key
// must be 1 to 128 characters and not start with "aws:" (reserved by
// AWS) or "orchestrate:" (set by orchestrate itself); the value may be
// empty and at most 256 characters. Errors wrap ErrBadTag.
func ParseTag(s string) (key, value string, err error) {
	key, value, ok := strings.Cut(s, "=")
	bad := func(format string, args ...any) (string, string, error) {
		return "", "", fmt.Errorf("snapshot: parse tag %q: %w: %s", s,
			ErrBadTag, fmt.Sprintf(format, args...))
	}
	switch {
	case !ok:
		return bad("want key=value")
	case !utf8.ValidString(s):
		return bad("not valid UTF-8")
	case key == "":
		return bad("empty key")
	case utf8.RuneCountInString(key) > maxTagKey:
		return bad("key longer than %d characters", maxTagKey)
	case utf8.RuneCountInString(value) > maxTagValue:
		return bad("value longer than %d characters", maxTagValue)
	}
	lower := strings.ToLower(key)
	for _, p := range []string{"aws:", "orchestrate:"} {
		if strings.HasPrefix(lower, p) {
			return bad("key prefix %q is reserved", p)
		}
	}
	return key, value, nil
}
