package rig

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Names of the checks CheckImage runs, as CheckError.Check reports them.
const (
	CheckNeedsRecovery = "needs_recovery"
	CheckFsck          = "e2fsck"
	CheckMount         = "mount"
	CheckFiles         = "files"
	CheckRepair        = "xfs_repair"
)

// CheckError is a consistency check of an image that failed.
type CheckError struct {
	// Image is the image file checked.
	Image string
	// Check is one of the Check… constants.
	Check string
	// Detail says what was wrong, with the tool's output tail.
	Detail string
	// Err is the cause, if a tool failed.
	Err error
}

// Error names the image, the check and what it found.
func (e *CheckError) Error() string {
	msg := fmt.Sprintf("rig: check image %s: %s failed: %s", e.Image,
		e.Check, e.Detail)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *CheckError) Unwrap() error { return e.Err }

// CheckImage proves that image, a copy of a kind ("ext4" or "xfs")
// filesystem, is consistent as it stands and holds every file in want
// (paths relative to the filesystem root) with exactly those bytes.
//
// For ext4: `dumpe2fs -h` must not list needs_recovery (a copy taken live
// has it), `e2fsck -fn` must exit 0, and the files read back from a
// read-only, no-journal-replay mount must match. For xfs, whose frozen
// copies still carry log records, the copy is mounted read-write with
// nouuid so the log replays (this changes the image), the files are
// compared, it is unmounted, and `xfs_repair -n` must exit 0.
//
// Mount points go in scratchDir, which must exist. Every loop device
// CheckImage attaches is detached before it returns. A failed check is a
// *CheckError naming the check and the tool's output.
func CheckImage(kind, image, scratchDir string, want map[string][]byte) error {
	switch kind {
	case "ext4":
		return checkExt4(image, scratchDir, want)
	case "xfs":
		return checkXFS(image, scratchDir, want)
	}
	return fmt.Errorf("rig: check image %s: unknown kind %q, want ext4 or xfs",
		image, kind)
}

// checkExt4 runs the ext4 checks.
func checkExt4(image, scratchDir string, want map[string][]byte) error {
	out, err := run("dumpe2fs", "-h", image)
	if err != nil {
		return &CheckError{Image: image, Check: CheckNeedsRecovery,
			Detail: "dumpe2fs -h could not read the superblock", Err: err}
	}
	if feats := ext4Features(out); hasWord(feats, "needs_recovery") {
		return &CheckError{Image: image, Check: CheckNeedsRecovery,
			Detail: "the journal needs recovery (features: " + feats + ")"}
	}
	if _, err := run("e2fsck", "-fn", image); err != nil {
		return &CheckError{Image: image, Check: CheckFsck,
			Detail: "e2fsck -fn found problems", Err: err}
	}
	return withMounted(image, scratchDir, "ext4", true, func(dir string) error {
		return compareFiles(image, dir, want)
	})
}

// checkXFS runs the xfs checks.
func checkXFS(image, scratchDir string, want map[string][]byte) error {
	err := withMounted(image, scratchDir, "xfs", false, func(dir string) error {
		return compareFiles(image, dir, want)
	})
	if err != nil {
		return err
	}
	if _, err := run("xfs_repair", "-n", image); err != nil {
		return &CheckError{Image: image, Check: CheckRepair,
			Detail: "xfs_repair -n after log replay found problems", Err: err}
	}
	return nil
}

// ext4Features returns the "Filesystem features:" value of dumpe2fs -h.
func ext4Features(dump string) string {
	for _, l := range strings.Split(dump, "\n") {
		if v, ok := strings.CutPrefix(l, "Filesystem features:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// hasWord reports whether the space-separated list holds word.
func hasWord(list, word string) bool {
	for _, w := range strings.Fields(list) {
		if w == word {
			return true
		}
	}
	return false
}

// withMounted attaches image to a loop device, mounts it in a fresh
// directory under scratchDir (ext4 read-only without journal replay, xfs
// read-write with nouuid), calls fn and undoes all of it, always.
func withMounted(image, scratchDir, kind string, readOnly bool,
	fn func(dir string) error) (err error) {
	dir, err := os.MkdirTemp(scratchDir, "check-")
	if err != nil {
		return fmt.Errorf("rig: check image %s: make mount point: %w",
			image, err)
	}
	defer func() { err = errors.Join(err, os.Remove(dir)) }()

	args := []string{"-f", "--show"}
	opts := "nouuid"
	if readOnly {
		args = append(args, "-r")
		opts = "ro,noload"
	}
	out, err := run("losetup", append(args, image)...)
	if err != nil {
		return fmt.Errorf("rig: check image %s: attach: %w", image, err)
	}
	dev := strings.TrimSpace(out)
	defer func() { err = errors.Join(err, detach(dev)) }()

	if _, err := run("mount", "-t", kind, "-o", opts, dev, dir); err != nil {
		return &CheckError{Image: image, Check: CheckMount,
			Detail: "mount -o " + opts + " of the copy failed", Err: err}
	}
	defer func() { err = errors.Join(err, unmount(dir)) }()
	return fn(dir)
}

// compareFiles reads each wanted file under dir and reports every one that
// is missing or differs.
func compareFiles(image, dir string, want map[string][]byte) error {
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)

	var bad []string
	for _, n := range names {
		p, err := inside(dir, n)
		if err != nil {
			return fmt.Errorf("rig: check image %s: %w", image, err)
		}
		got, err := os.ReadFile(p)
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s: %v", n, err))
		case !bytes.Equal(got, want[n]):
			bad = append(bad, fmt.Sprintf("%s: %d bytes differ from the %d "+
				"wanted", n, len(got), len(want[n])))
		}
	}
	if len(bad) > 0 {
		return &CheckError{Image: image, Check: CheckFiles,
			Detail: filepath.Base(image) + ": " + strings.Join(bad, "; ")}
	}
	return nil
}
