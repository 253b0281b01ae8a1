package rig

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MinXFSMiB is the smallest image mkfs.xfs accepts, in MiB.
const MinXFSMiB = 300

// FS is a filesystem the rig made on a loop device and mounted.
type FS struct {
	// Kind is "ext4" or "xfs".
	Kind string
	// Image is the backing file, in the rig's Dir.
	Image string
	// Device is the loop device, e.g. /dev/loop3.
	Device string
	// Mount is the mount point.
	Mount string

	probeMu sync.Mutex
	probe   chan struct{} // closed when the last write probe finished
	probeN  int
}

// MakeFS makes a kind ("ext4" or "xfs") filesystem of sizeMiB in an image
// file in Dir, attaches it to a free loop device and mounts it at mount
// (made if missing; a relative path is taken under Dir; / is refused).
// xfs needs at least MinXFSMiB. Close thaws it, unmounts it, detaches the
// device and removes the image; a failed MakeFS undoes its own steps the
// same way.
func (r *Rig) MakeFS(kind string, sizeMiB int, mount string) (*FS, error) {
	n, err := r.begin()
	if err != nil {
		return nil, err
	}
	if !filepath.IsAbs(mount) {
		mount = filepath.Join(r.Dir, mount)
	}
	if filepath.Clean(mount) == "/" {
		return nil, fmt.Errorf("rig: make %s: refusing to mount on /", kind)
	}
	f := &FS{Kind: kind, Mount: filepath.Clean(mount),
		Image: filepath.Join(r.Dir, "images",
			fmt.Sprintf("fs-%d-%s.img", n, kind))}
	if err := r.makeFS(f, sizeMiB); err != nil {
		return nil, fmt.Errorf("rig: make %s on %s: %w", kind, f.Mount, err)
	}
	r.logf("%s on %s mounted at %s", kind, f.Device, f.Mount)
	return f, nil
}

// makeFS does the work of MakeFS, registering each undo step as soon as
// the thing it undoes exists.
func (r *Rig) makeFS(f *FS, sizeMiB int) error {
	mkfs, err := mkfsArgs(f.Kind, sizeMiB)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(f.Image), 0o755); err != nil {
		return fmt.Errorf("make image dir: %w", err)
	}
	img, err := os.OpenFile(f.Image, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create image: %w", err)
	}
	r.push("remove "+f.Image, func() error { return os.Remove(f.Image) })
	err = img.Truncate(int64(sizeMiB) << 20)
	if cerr := img.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("size image: %w", err)
	}

	if _, err := run(mkfs[0], append(mkfs[1:], f.Image)...); err != nil {
		return fmt.Errorf("format image: %w", err)
	}
	out, err := run("losetup", "-f", "--show", f.Image)
	if err != nil {
		return fmt.Errorf("attach image: %w", err)
	}
	f.Device = strings.TrimSpace(out)
	r.push("detach "+f.Device, func() error { return detach(f.Device) })

	if err := r.makeMountDir(f.Mount); err != nil {
		return err
	}
	if _, err := run("mount", "-t", f.Kind, f.Device, f.Mount); err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	r.push("unmount "+f.Mount, func() error {
		if err := f.Thaw(); err != nil {
			return err
		}
		if ok, err := mountedAt(f.Device, f.Mount); err != nil || !ok {
			return err
		}
		return unmount(f.Mount)
	})
	r.mu.Lock()
	r.fss = append(r.fss, f)
	r.mu.Unlock()
	return nil
}

// mkfsArgs returns the mkfs command for kind, checking the size.
func mkfsArgs(kind string, sizeMiB int) ([]string, error) {
	switch kind {
	case "ext4":
		if sizeMiB < 8 {
			return nil, fmt.Errorf("size %d MiB: ext4 needs at least 8",
				sizeMiB)
		}
		return []string{"mkfs.ext4", "-q", "-F"}, nil
	case "xfs":
		if sizeMiB < MinXFSMiB {
			return nil, fmt.Errorf("size %d MiB: xfs needs at least %d",
				sizeMiB, MinXFSMiB)
		}
		return []string{"mkfs.xfs", "-f", "-q"}, nil
	}
	return nil, fmt.Errorf("unknown filesystem kind %q, want ext4 or xfs",
		kind)
}

// makeMountDir creates the mount point and every missing parent, and
// registers their removal, innermost first.
func (r *Rig) makeMountDir(dir string) error {
	var made []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		made = append(made, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("make mount point: %w", err)
	}
	for i := len(made) - 1; i >= 0; i-- {
		d := made[i]
		r.push("remove "+d, func() error {
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
				return err
			}
			return nil
		})
	}
	return nil
}

// unmount unmounts dir, retrying for a few seconds while it is busy
// (umount exits 32 with "target is busy").
func unmount(dir string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := run("umount", dir)
		if err == nil {
			return nil
		}
		if !strings.Contains(out, "busy") || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// mountedAt reports whether dev is mounted at dir, going by
// /proc/self/mountinfo.
func mountedAt(dev, dir string) (bool, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, fmt.Errorf("read mount table: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if m, src, ok := parseMountinfo(sc.Text()); ok && m == dir &&
			src == dev {
			return true, nil
		}
	}
	return false, sc.Err()
}

// parseMountinfo returns the mount point and source of one mountinfo line:
// "ID PARENT MAJ:MIN ROOT MOUNT OPTS [TAGS…] - TYPE SOURCE SUPEROPTS".
func parseMountinfo(line string) (mount, source string, ok bool) {
	f := strings.Fields(line)
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if len(f) < 5 || sep < 0 || sep+2 >= len(f) {
		return "", "", false
	}
	return unescapeOctal(f[4]), unescapeOctal(f[sep+2]), true
}

// unescapeOctal undoes the \NNN escapes the kernel writes for space, tab,
// newline and backslash in mountinfo.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1:i+4]) {
			n, _ := strconv.ParseUint(s[i+1:i+4], 8, 8)
			b.WriteByte(byte(n))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// isOctal reports whether s is three octal digits.
func isOctal(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '7' {
			return false
		}
	}
	return len(s) == 3
}

// detach detaches a loop device; one already gone is not an error.
func detach(dev string) error {
	out, err := run("losetup", "-d", dev)
	if err != nil && strings.Contains(out, "No such device") {
		return nil
	}
	return err
}

// Thaw unfreezes the filesystem with fsfreeze -u. A filesystem that is not
// frozen ("Invalid argument") is not an error, so Thaw is safe to repeat.
// If Mount no longer holds this filesystem's Device, Thaw does nothing, so
// it never thaws a filesystem the rig did not make.
func (f *FS) Thaw() error {
	if ok, err := mountedAt(f.Device, f.Mount); err != nil || !ok {
		return err
	}
	out, err := run("fsfreeze", "-u", f.Mount)
	if err != nil && !strings.Contains(out, "Invalid argument") {
		return fmt.Errorf("rig: thaw %s: %w", f.Mount, err)
	}
	return nil
}

// WriteProbe creates, writes, fsyncs and removes a small file on the
// filesystem from a goroutine, and reports whether that finished within
// timeout. False means writes are blocked, as they are while the
// filesystem is frozen. A blocked probe cannot be cancelled: its goroutine
// stays in the kernel and finishes only at the thaw, and the next
// WriteProbe first waits (within its own timeout) for it to finish. The
// probe never blocks the caller for longer than timeout.
func (f *FS) WriteProbe(timeout time.Duration) (ok bool) {
	deadline := time.After(timeout)
	f.probeMu.Lock()
	defer f.probeMu.Unlock()

	if f.probe != nil {
		select {
		case <-f.probe:
		case <-deadline:
			return false
		}
	}
	f.probeN++
	path := filepath.Join(f.Mount,
		".rig-write-probe-"+strconv.Itoa(f.probeN))
	done := make(chan struct{})
	f.probe = done
	go func() {
		defer close(done)
		writeProbeFile(path)
	}()

	select {
	case <-done:
		return true
	case <-deadline:
		return false
	}
}

// writeProbeFile is the probe's write; errors are ignored since only its
// blocking matters.
func writeProbeFile(path string) {
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return
	}
	fh.Write([]byte("probe\n"))
	fh.Sync()
	fh.Close()
	os.Remove(path)
}

// WriteFiles writes each file at its path relative to Mount, making
// parent directories, and fsyncs each file and its directory. Paths must be
// relative and stay inside Mount. On a frozen filesystem it blocks until
// the thaw.
func (f *FS) WriteFiles(files map[string][]byte) error {
	for name, data := range files {
		p, err := inside(f.Mount, name)
		if err != nil {
			return fmt.Errorf("rig: write files: %w", err)
		}
		if err := writeSynced(p, data); err != nil {
			return fmt.Errorf("rig: write files: %w", err)
		}
	}
	return nil
}

// inside joins a relative name to root and refuses names that are
// absolute, empty or climb out of root.
func inside(root, name string) (string, error) {
	clean := filepath.Clean(name)
	if name == "" || filepath.IsAbs(name) || clean == "." ||
		clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("path %q: want a relative path inside %s",
			name, root)
	}
	return filepath.Join(root, clean), nil
}

// writeSynced writes data to path and fsyncs the file and its directory.
func writeSynced(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = fh.Write(data)
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir of %s: %w", path, err)
	}
	return nil
}
