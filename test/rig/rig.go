// Package rig stands up, on the machine it runs on and as root, the pieces
// the end-to-end tests and the demo need: throwaway users with sudo rules,
// a real OpenSSH sshd on loopback addresses (127.0.0.2, 127.0.0.3, … each
// playing one host), and ext4 or xfs filesystems on loop devices.
//
// Safety stance: the rig touches only what it made. Every user, sudoers
// file, daemon, loop device, mount and image it creates is recorded on a
// cleanup stack as soon as it exists, and Rig.Close unwinds that stack in
// reverse, always running every step and thawing every filesystem it made
// before unmounting it. Users that exist already and were not made by a
// rig are refused, never changed. Processes are stopped by the PID the rig
// started them with. No command that could write to a frozen filesystem
// is run under a timeout that pretends to bound it: such a write blocks in
// the kernel until the thaw and cannot be killed.
//
// The package does not depend on package testing, so the demo program can
// use it as well as the tests.
package rig

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// ErrClosed is returned by the methods of a Rig after Close.
var ErrClosed = errors.New("rig: closed")

// Rig owns a scratch directory and everything it sets up on the machine.
// Its methods are safe for concurrent use. Close undoes all of it.
type Rig struct {
	// Dir is the scratch directory the rig owns and removes on Close.
	Dir string
	// Logf, if not nil, receives one line per step the rig takes.
	Logf func(format string, args ...any)

	mu       sync.Mutex
	cleanups []cleanup
	closed   bool
	users    map[string]*User
	seq      int
	fss      []*FS   // thawed first on Close
	sshds    []*SSHD // stopped second on Close
}

// cleanup is one undo step on the rig's stack.
type cleanup struct {
	what string
	fn   func() error
}

// New makes a rig that owns dir. An empty dir makes a fresh directory under
// os.TempDir. The directory is created if needed and set to mode 0755,
// because sshd reads authorized_keys files in it as the target user; New
// fails if some parent directory is not traversable by other users. New
// does not need root, but most methods do.
func New(dir string) (*Rig, error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "orch-rig-")
		if err != nil {
			return nil, fmt.Errorf("rig: make scratch dir: %w", err)
		}
		dir = d
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("rig: resolve scratch dir %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("rig: make scratch dir: %w", err)
	}
	if err := os.Chmod(abs, 0o755); err != nil {
		return nil, fmt.Errorf("rig: make scratch dir traversable: %w", err)
	}
	if err := checkTraversable(filepath.Dir(abs)); err != nil {
		return nil, err
	}

	r := &Rig{Dir: abs, users: map[string]*User{}}
	r.push("remove "+abs, func() error {
		if err := os.RemoveAll(abs); err != nil {
			return fmt.Errorf("remove scratch dir: %w", err)
		}
		return nil
	})
	return r, nil
}

// checkTraversable fails unless dir and every parent grant search
// permission to other users.
func checkTraversable(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("rig: check scratch dir parent: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("rig: check scratch dir parent: %s is mode %v, "+
				"sshd cannot read authorized_keys below it as the user", d,
				fi.Mode().Perm())
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// Close undoes everything the rig made, always all of it, and returns the
// errors joined. First it thaws every filesystem it made, so that no
// process stays blocked on one; then it stops every sshd it started and
// the session processes those forked, so nothing holds a mount or a user;
// then it runs the cleanup steps in reverse order of registration:
// unmount, detach loop devices, remove images, delete sudoers files and
// users, remove Dir. Close is idempotent: a second call returns nil.
func (r *Rig) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	steps, fss, sshds := r.cleanups, r.fss, r.sshds
	r.cleanups, r.fss, r.sshds = nil, nil, nil
	r.mu.Unlock()

	var errs []error
	for _, f := range fss {
		if err := f.Thaw(); err != nil {
			errs = append(errs, fmt.Errorf("rig: cleanup: %w", err))
		}
	}
	for _, s := range sshds {
		if err := s.stop(); err != nil {
			errs = append(errs, fmt.Errorf("rig: cleanup: %w", err))
		}
	}
	for i := len(steps) - 1; i >= 0; i-- {
		r.logf("cleanup: %s", steps[i].what)
		if err := steps[i].fn(); err != nil {
			errs = append(errs,
				fmt.Errorf("rig: cleanup %s: %w", steps[i].what, err))
		}
	}
	return errors.Join(errs...)
}

// push registers an undo step. If the rig is closed already, the step
// runs at once, so nothing made by a racing call is left behind.
func (r *Rig) push(what string, fn func() error) {
	r.mu.Lock()
	if !r.closed {
		r.cleanups = append(r.cleanups, cleanup{what: what, fn: fn})
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	if err := fn(); err != nil {
		r.logf("cleanup %s: %v", what, err)
	}
}

// begin fails with ErrClosed after Close and otherwise returns a number
// unique within the rig, for naming files.
func (r *Rig) begin() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, ErrClosed
	}
	r.seq++
	return r.seq, nil
}

// logf writes one line to Logf when it is set.
func (r *Rig) logf(format string, args ...any) {
	if r.Logf != nil {
		r.Logf("rig: "+format, args...)
	}
}

// CheckTools reports which of the external programs the rig runs are
// missing from PATH, /usr/sbin and /sbin. The error lists them and names the
// Debian packages that provide them; nil means all are present.
func CheckTools() error {
	var missing []string
	for _, t := range requiredTools {
		if _, err := lookTool(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return &MissingToolsError{Tools: missing}
}

// requiredTools are the programs CheckTools looks for.
var requiredTools = []string{
	"sshd", "ssh-keygen", "sudo", "fsfreeze", "losetup", "mkfs.ext4",
	"mkfs.xfs", "e2fsck", "dumpe2fs", "xfs_repair", "mount", "umount",
	"sfdisk", "partx",
}

// MissingToolsError lists the programs CheckTools did not find.
type MissingToolsError struct {
	Tools []string
}

// Error names the missing programs and how to install them.
func (e *MissingToolsError) Error() string {
	return fmt.Sprintf("rig: find tools: missing %v; install them with "+
		"`apt-get install openssh-server sudo xfsprogs e2fsprogs fdisk "+
		"util-linux`", e.Tools)
}

// OnClose registers fn to run on Close, in reverse order of registration
// with the rig's own steps, after every filesystem has been thawed and
// every sshd stopped. Use it for processes and files the caller made.
func (r *Rig) OnClose(what string, fn func() error) { r.push(what, fn) }
