package rig

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFreezeCopy freezes each kind of filesystem, copies its image while
// frozen and proves the copy consistent, then proves a live ext4 copy and
// a wrong file list fail the check.
func TestFreezeCopy(t *testing.T) {
	needRoot(t)
	r := newRig(t)
	files := map[string][]byte{
		"a.txt":        []byte("alpha\n"),
		"dir/sub/b.db": []byte(strings.Repeat("0123456789", 10000)),
	}
	for _, kind := range []string{"ext4", "xfs"} {
		t.Run(kind, func(t *testing.T) {
			f, err := r.MakeFS(kind, MinXFSMiB, "mnt-"+kind)
			if err != nil {
				t.Fatalf("MakeFS(%s) = %v, want nil error", kind, err)
			}
			if err := f.WriteFiles(files); err != nil {
				t.Fatalf("WriteFiles = %v, want nil", err)
			}
			if !f.WriteProbe(10 * time.Second) {
				t.Fatalf("WriteProbe before freeze = blocked, want ok")
			}

			frozen := freezeAndCopy(t, r, f)
			if f.WriteProbe(300 * time.Millisecond) {
				t.Errorf("WriteProbe while frozen = ok, want blocked")
			}
			if err := f.Thaw(); err != nil {
				t.Fatalf("Thaw() = %v, want nil", err)
			}
			if !f.WriteProbe(30 * time.Second) {
				t.Fatalf("WriteProbe after thaw = blocked, want ok")
			}
			if err := f.Thaw(); err != nil {
				t.Errorf("Thaw() on a thawed fs = %v, want nil", err)
			}

			if err := CheckImage(kind, frozen, r.Dir, files); err != nil {
				t.Errorf("CheckImage(frozen copy) = %v, want nil", err)
			}
			extra := map[string][]byte{"a.txt": []byte("other\n")}
			err = CheckImage(kind, frozen, r.Dir, extra)
			wantCheck(t, "CheckImage(wrong bytes)", err, CheckFiles)
		})
	}

	t.Run("LiveExt4", func(t *testing.T) {
		f, err := r.MakeFS("ext4", 64, "mnt-live")
		if err != nil {
			t.Fatalf("MakeFS(ext4) = %v, want nil error", err)
		}
		if err := f.WriteFiles(files); err != nil {
			t.Fatalf("WriteFiles = %v, want nil", err)
		}
		live := copyImage(t, f.Image, f.Image+".live")
		err = CheckImage("ext4", live, r.Dir, files)
		wantCheck(t, "CheckImage(live copy)", err, CheckNeedsRecovery)
	})
}

// freezeAndCopy freezes f, asserts that a write probe blocks, copies the
// image while frozen and returns the copy's path. The thaw is also
// registered with t.Cleanup.
func freezeAndCopy(t *testing.T, r *Rig, f *FS) string {
	t.Helper()
	if out, err := exec.Command("fsfreeze", "-f", f.Mount).
		CombinedOutput(); err != nil {
		t.Fatalf("fsfreeze -f %s = %v (%s), want success", f.Mount, err, out)
	}
	t.Cleanup(func() { f.Thaw() })
	if f.WriteProbe(300 * time.Millisecond) {
		t.Fatalf("WriteProbe after fsfreeze -f = ok, want blocked")
	}
	return copyImage(t, f.Image, filepath.Join(r.Dir,
		filepath.Base(f.Image)+".frozen"))
}

// copyImage copies src to dst and returns dst.
func copyImage(t *testing.T, src, dst string) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatalf("open image: %v", err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatalf("create copy: %v", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatalf("copy image: %v", err)
	}
	if err := out.Close(); err != nil {
		t.Fatalf("close copy: %v", err)
	}
	return dst
}

// wantCheck asserts that err is a *CheckError for check.
func wantCheck(t *testing.T, call string, err error, check string) {
	t.Helper()
	var ce *CheckError
	if !errors.As(err, &ce) || ce.Check != check {
		t.Errorf("%s = %v, want a CheckError for %s", call, err, check)
	}
}
