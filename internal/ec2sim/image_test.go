package ec2sim

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestHookRunsBeforeResponse(t *testing.T) {
	s, c := newServer(t, testFixture(), Options{})
	arrived := make(chan CreateEvent, 1)
	release := make(chan struct{})
	seen := make(chan int, 1)
	s.OnCreateSnapshots(func(ev CreateEvent) {
		seen <- len(s.Snapshots())
		arrived <- ev
		<-release
	})

	done := make(chan error, 1)
	go func() {
		_, err := c.CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{
			InstanceSpecification: &types.InstanceSpecification{
				InstanceId: aws.String(instDB), ExcludeBootVolume: aws.Bool(true)}})
		done <- err
	}()

	ev := <-arrived
	select {
	case err := <-done:
		t.Fatalf("CreateSnapshots returned (%v) while the hook was running", err)
	default:
	}
	if n := <-seen; n != 1 {
		t.Errorf("Snapshots() inside the hook = %d, want 1 (none taken yet)", n)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("CreateSnapshots = %v", err)
	}

	want := CreateEvent{Action: "CreateSnapshots", InstanceID: instDB,
		VolumeIDs: []string{volData, volLogs}, AccessKeyID: testAKID}
	if ev.Action != want.Action || ev.InstanceID != want.InstanceID ||
		ev.AccessKeyID != want.AccessKeyID ||
		len(ev.VolumeIDs) != 2 || ev.VolumeIDs[0] != volData || ev.VolumeIDs[1] != volLogs {
		t.Errorf("hook event = %+v, want %+v", ev, want)
	}
}

func TestHookSkipsDryRun(t *testing.T) {
	s, c := newServer(t, testFixture(), Options{})
	calls := 0
	s.OnCreateSnapshots(func(CreateEvent) { calls++ })
	everyAction(c, true)["CreateSnapshot"]()
	everyAction(c, false)["CreateSnapshot"]()
	if calls != 1 {
		t.Errorf("hook calls for one DryRun and one real create = %d, want 1", calls)
	}
}

// writeAt writes data to path at offset off, creating it sparse.
func writeAt(t *testing.T, path string, data []byte, off, size int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

func TestBackingFileCapturedAtCallTime(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "data.img")
	const size = 4 << 20
	writeAt(t, img, bytes.Repeat([]byte("A"), 4096), 1<<20, size)

	f := testFixture()
	f.Volumes[1].BackingFile = img
	s, c := newServer(t, f, Options{SnapshotDir: filepath.Join(dir, "snaps")})

	// What the hook writes happens before the point in time.
	s.OnCreateSnapshots(func(CreateEvent) {
		writeAt(t, img, bytes.Repeat([]byte("B"), 4096), 1<<20, size)
	})
	out, err := c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(volData)})
	if err != nil {
		t.Fatalf("CreateSnapshot(%s) = %v", volData, err)
	}
	writeAt(t, img, bytes.Repeat([]byte("C"), 4096), 1<<20, size)

	id := aws.ToString(out.SnapshotId)
	exported := filepath.Join(dir, "export.img")
	if err := s.ExportSnapshot(id, exported); err != nil {
		t.Fatalf("ExportSnapshot(%s) = %v", id, err)
	}
	got, err := os.ReadFile(exported)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, size)
	copy(want[1<<20:], bytes.Repeat([]byte("B"), 4096))
	if !bytes.Equal(got, want) {
		t.Errorf("ExportSnapshot(%s) bytes differ from the file at call time (len %d, want %d)", id, len(got), len(want))
	}

	tests := []struct {
		name, id string
		want     error
	}{
		{"NoImage", "snap-0ffffffffffffffff", ErrNoImage},
		{"Unknown", "snap-12345678", ErrSnapshotNotFound},
	}
	for _, tt := range tests {
		if err := s.ExportSnapshot(tt.id, exported); !errors.Is(err, tt.want) {
			t.Errorf("ExportSnapshot(%s) = %v, want %v", tt.id, err, tt.want)
		}
	}
}

func TestSparseCopyKeepsSize(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	const size = 300 << 20
	writeAt(t, src, []byte("superblock"), 1024, size)
	writeAt(t, src, []byte("tail"), size-4, size)

	dst := filepath.Join(dir, "dst.img")
	if err := sparseCopy(src, dst); err != nil {
		t.Fatalf("sparseCopy() = %v", err)
	}
	st, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != size {
		t.Errorf("sparseCopy() size = %d, want %d", st.Size(), size)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Blocks*512 > 8<<20 {
		t.Errorf("sparseCopy() allocated %d bytes, want holes kept (< 8 MiB)", sys.Blocks*512)
	}
	out, err := os.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	for _, at := range []struct {
		off  int64
		want string
	}{{1024, "superblock"}, {size - 4, "tail"}, {1020, "\x00\x00\x00\x00supe"}} {
		buf := make([]byte, len(at.want))
		if _, err := out.ReadAt(buf, at.off); err != nil || string(buf) != at.want {
			t.Errorf("sparseCopy() bytes at %d = %q (%v), want %q", at.off, buf, err, at.want)
		}
	}
}

func BenchmarkSparseCopy300MB(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "src.img")
	f, _ := os.Create(src)
	f.Truncate(300 << 20)
	f.WriteAt([]byte("data"), 150<<20)
	f.Close()
	for b.Loop() {
		if err := sparseCopy(src, filepath.Join(dir, "dst.img")); err != nil {
			b.Fatal(err)
		}
	}
}
