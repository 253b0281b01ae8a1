package hosts

import (
	"errors"
	"io/fs"
	"os"
)

// Host is one line of a hosts file: an instance to snapshot and how to
// reach it.
type Host struct {
	// Line is the 1-based line of the file the host is on.
	Line int
	// Destination is the destination as written in the file.
	Destination string
	// User is the SSH user from the destination or user=, "" if not given.
	User string
	// Addr is the host name, ssh_config alias or IP literal, no brackets.
	Addr string
	// Port is the SSH port from the destination or port=, 0 if not given.
	Port int
	// InstanceID is the EC2 instance ID from instance=, "" if not given.
	InstanceID string
	// Mounts are the mount points from mounts=, escapes resolved, in file
	// order; nil if not given.
	Mounts []string
	// Volumes are the EBS volume IDs from volumes=, in file order; nil if
	// not given.
	Volumes []string
	// Region is the AWS Region from region=, "" if not given.
	Region string
}

// File is a parsed hosts file whose every line is valid.
type File struct {
	// Path names the file in messages.
	Path string
	// Hosts are the hosts in file order; there is at least one.
	Hosts []Host
}

// Requirements says which options File.Require demands on every host,
// because no discovery step can fill them in.
type Requirements struct {
	InstanceID bool // every host needs instance=
	Mounts     bool // every host needs mounts=
	Volumes    bool // every host needs volumes=
}

// Load reads and parses the hosts file at path, as Parse does. A file that
// cannot be opened or read (a missing one included) is an ErrorList naming
// the file, whose entry wraps the *fs.PathError, so errors.Is(err,
// fs.ErrNotExist) tells a missing file.
func Load(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, ErrorList{ioError(path, "open hosts file", err)}
	}
	defer f.Close()
	return Parse(path, f)
}

// Require checks that every host gives the options r demands, and reports
// each missing one by line as an ErrorList, with what to write instead.
// It returns nil when nothing is missing.
func (f *File) Require(r Requirements) error {
	c := &collector{path: f.Path}
	for _, h := range f.Hosts {
		for _, msg := range missing(h, r) {
			c.add(h.Line, 1, "%s", msg)
		}
	}
	return c.err()
}

// LoadRequiring reads the hosts file at path as Load does, demanding the
// options in req on every host in the same pass (see ParseRequiring).
func LoadRequiring(path string, req Requirements) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, ErrorList{ioError(path, "open hosts file", err)}
	}
	defer f.Close()
	return ParseRequiring(path, f, req)
}

// missing lists what h lacks of r, one message each.
func missing(h Host, r Requirements) []string {
	var out []string
	if r.InstanceID && h.InstanceID == "" {
		out = append(out, "missing instance= (give the EC2 instance ID, e.g. instance=i-0abc123def4567890)")
	}
	if r.Mounts && len(h.Mounts) == 0 {
		out = append(out, "missing mounts= (name the mount points to freeze, e.g. mounts=/data)")
	}
	if r.Volumes && len(h.Volumes) == 0 {
		out = append(out, "missing volumes= (name the EBS volumes that back the mounts)")
	}
	return out
}

func ioError(path, what string, err error) *Error {
	msg := err.Error()
	var pe *fs.PathError
	if errors.As(err, &pe) {
		msg = pe.Err.Error() // the path is already in front
	}
	return &Error{Path: path, Msg: what + ": " + msg, Err: err}
}
