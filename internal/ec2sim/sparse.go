package ec2sim

// This file copies volume images sparsely: holes in the source stay holes
// in the copy, so a mostly empty image of hundreds of megabytes copies in
// milliseconds.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"
)

// lseek whence values for data and holes; Linux only (macOS swaps them).
const (
	seekData = 3
	seekHole = 4
)

// chunk is the unit of copying; all-zero chunks are skipped, not written.
const chunk = 1 << 20

// sparseCopy copies src to a new file dst (replacing it), keeping holes
// and the size. It finds data with SEEK_DATA/SEEK_HOLE where the system
// offers them and also skips all-zero chunks inside data.
func sparseCopy(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy image: %w", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("copy image: %w", err)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("copy image: %w", err)
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("copy image: %w", cerr)
		}
		if err != nil {
			os.Remove(dst)
		}
	}()

	size := st.Size()
	buf := make([]byte, chunk)
	for off := int64(0); off < size; {
		start, end, err := nextData(in, off, size)
		if err != nil {
			return fmt.Errorf("copy image %s: %w", src, err)
		}
		if start >= size {
			break
		}
		if err := copyRange(in, out, start, end, buf); err != nil {
			return fmt.Errorf("copy image %s: %w", src, err)
		}
		off = end
	}
	if err := out.Truncate(size); err != nil {
		return fmt.Errorf("copy image: %w", err)
	}
	return nil
}

// nextData returns the next data region [start, end) at or after off.
// Without SEEK_DATA support the rest of the file is one region.
func nextData(f *os.File, off, size int64) (start, end int64, err error) {
	if runtime.GOOS != "linux" {
		return off, size, nil
	}
	start, err = f.Seek(off, seekData)
	if errors.Is(err, syscall.ENXIO) {
		return size, size, nil
	}
	if errors.Is(err, syscall.EINVAL) {
		return off, size, nil
	}
	if err != nil {
		return 0, 0, err
	}
	end, err = f.Seek(start, seekHole)
	if err != nil {
		return 0, 0, err
	}
	return start, min(end, size), nil
}

// copyRange copies [start, end) of in to the same offsets of out,
// skipping chunks that are all zero.
func copyRange(in, out *os.File, start, end int64, buf []byte) error {
	for off := start; off < end; {
		n := int(min(int64(len(buf)), end-off))
		if _, err := in.ReadAt(buf[:n], off); err != nil && err != io.EOF {
			return err
		}
		if !allZero(buf[:n]) {
			if _, err := out.WriteAt(buf[:n], off); err != nil {
				return err
			}
		}
		off += int64(n)
	}
	return nil
}

var zeros = make([]byte, chunk)

func allZero(b []byte) bool { return bytes.Equal(b, zeros[:len(b)]) }

// ExportSnapshot writes the bytes of snapshot snapshotID to path,
// sparsely, replacing any file there. It fails with ErrSnapshotNotFound
// for an unknown or deleted snapshot and ErrNoImage for a snapshot whose
// volume had no backing file.
func (s *Server) ExportSnapshot(snapshotID, path string) error {
	s.mu.Lock()
	r := s.snapshot(snapshotID)
	var img string
	if r != nil {
		img = r.ImagePath
	}
	s.mu.Unlock()

	switch {
	case r == nil:
		return fmt.Errorf("ec2sim: export %s: %w", snapshotID, ErrSnapshotNotFound)
	case img == "":
		return fmt.Errorf("ec2sim: export %s: %w", snapshotID, ErrNoImage)
	}
	if err := sparseCopy(img, path); err != nil {
		return fmt.Errorf("ec2sim: export %s: %w", snapshotID, err)
	}
	return nil
}
