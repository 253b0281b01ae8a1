package ec2sim

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func snapshotTags(kv ...string) []types.TagSpecification {
	var tags []types.Tag
	for i := 0; i+1 < len(kv); i += 2 {
		tags = append(tags, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return []types.TagSpecification{{ResourceType: types.ResourceTypeSnapshot, Tags: tags}}
}

func TestCreateSnapshot(t *testing.T) {
	_, c := newServer(t, testFixture(), Options{})
	out, err := c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{
		VolumeId:          aws.String(volData),
		Description:       aws.String("before upgrade"),
		TagSpecifications: snapshotTags("orchestrate:run-id", "r1"),
		DryRun:            aws.Bool(false),
	})
	if err != nil {
		t.Fatalf("CreateSnapshot(%s) = %v", volData, err)
	}
	got := fmt.Sprint(out.State, aws.ToString(out.Progress), aws.ToString(out.VolumeId),
		aws.ToString(out.OwnerId), aws.ToInt32(out.VolumeSize), aws.ToBool(out.Encrypted),
		aws.ToString(out.Description), tagsOf(out.Tags))
	want := fmt.Sprint("pending", "0%", volData, "123456789012", 100, true,
		"before upgrade", map[string]string{"orchestrate:run-id": "r1"})
	if got != want {
		t.Errorf("CreateSnapshot(%s) = %s, want %s", volData, got, want)
	}
	if id := aws.ToString(out.SnapshotId); !validID(id, "snap-") || len(id) != 22 {
		t.Errorf("CreateSnapshot(%s) SnapshotId = %q, want snap- and 17 hex digits", volData, id)
	}
	if out.StartTime == nil || out.StartTime.IsZero() {
		t.Errorf("CreateSnapshot(%s) StartTime = %v, want set", volData, out.StartTime)
	}

	d, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{
		SnapshotIds: []string{aws.ToString(out.SnapshotId)}, OwnerIds: []string{"self"}})
	if err != nil {
		t.Fatalf("DescribeSnapshots(%s) = %v", aws.ToString(out.SnapshotId), err)
	}
	if len(d.Snapshots) != 1 || d.Snapshots[0].State != types.SnapshotStateCompleted ||
		aws.ToString(d.Snapshots[0].Progress) != "100%" {
		t.Errorf("DescribeSnapshots after create = %+v, want one completed at 100%%", d.Snapshots)
	}
}

func TestCreateSnapshotsExclusions(t *testing.T) {
	var forty []string
	for i := range 41 {
		forty = append(forty, fmt.Sprintf("vol-%08x", i))
	}
	tests := []struct {
		name     string
		spec     types.InstanceSpecification
		want     []string
		wantCode string
	}{
		{"All", types.InstanceSpecification{}, []string{volRoot, volData, volLogs}, ""},
		{"NoBoot", types.InstanceSpecification{ExcludeBootVolume: aws.Bool(true)},
			[]string{volData, volLogs}, ""},
		{"ExcludeData", types.InstanceSpecification{ExcludeDataVolumeIds: []string{volLogs}},
			[]string{volRoot, volData}, ""},
		{"NoBootExcludeData", types.InstanceSpecification{ExcludeBootVolume: aws.Bool(true),
			ExcludeDataVolumeIds: []string{volData}}, []string{volLogs}, ""},
		{"ExcludeRoot", types.InstanceSpecification{ExcludeDataVolumeIds: []string{volRoot}},
			nil, "InvalidParameterValue"},
		{"TooMany", types.InstanceSpecification{ExcludeDataVolumeIds: forty},
			nil, "InvalidParameterValue"},
		{"MalformedExclusion", types.InstanceSpecification{ExcludeDataVolumeIds: []string{"vol-zz"}},
			nil, "InvalidVolumeID.Malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := newServer(t, testFixture(), Options{})
			tt.spec.InstanceId = aws.String(instDB)
			out, err := c.CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{InstanceSpecification: &tt.spec})
			if got := apiCode(t, err); got != tt.wantCode {
				t.Fatalf("CreateSnapshots(%s) code = %q, want %q", tt.name, got, tt.wantCode)
			}
			if err != nil {
				return
			}
			var got []string
			for _, sn := range out.Snapshots {
				got = append(got, aws.ToString(sn.VolumeId))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("CreateSnapshots(%s) volumes = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

func TestCreateSnapshotsFields(t *testing.T) {
	s, c := newServer(t, testFixture(), Options{CompleteAfter: time.Hour})
	out, err := c.CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{
		InstanceSpecification: &types.InstanceSpecification{InstanceId: aws.String(instDB)},
		CopyTagsFromSource:    types.CopyTagsFromSourceVolume,
		Description:           aws.String("set"),
		TagSpecifications:     snapshotTags("Name", "db1", "orchestrate:host", "db1"),
	})
	if err != nil {
		t.Fatalf("CreateSnapshots(%s) = %v", instDB, err)
	}
	if len(out.Snapshots) != 3 {
		t.Fatalf("CreateSnapshots(%s) = %d snapshots, want 3", instDB, len(out.Snapshots))
	}
	first := out.Snapshots[0]
	for _, sn := range out.Snapshots {
		if sn.State != types.SnapshotStatePending {
			t.Errorf("CreateSnapshots(%s) State = %q, want pending", instDB, sn.State)
		}
		if !aws.ToTime(sn.StartTime).Equal(aws.ToTime(first.StartTime)) {
			t.Errorf("CreateSnapshots(%s) StartTime = %v, want %v for all", instDB, sn.StartTime, first.StartTime)
		}
		if aws.ToString(sn.OwnerId) != "123456789012" || aws.ToString(sn.Description) != "set" {
			t.Errorf("CreateSnapshots(%s) owner, description = %q, %q, want account, set",
				instDB, aws.ToString(sn.OwnerId), aws.ToString(sn.Description))
		}
	}
	// Spec tags win over copied volume tags.
	data := out.Snapshots[1]
	want := map[string]string{"Name": "db1", "Backup": "yes", "orchestrate:host": "db1"}
	if got := tagsOf(data.Tags); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("CreateSnapshots tags of %s = %v, want %v", volData, got, want)
	}
	if got := len(s.Snapshots()); got != 4 {
		t.Errorf("Snapshots() after create = %d, want 4 (3 new, 1 seeded)", got)
	}
}

func TestCreateSnapshotsNotFound(t *testing.T) {
	_, c := newServer(t, testFixture(), Options{})
	_, err := c.CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{
		InstanceSpecification: &types.InstanceSpecification{InstanceId: aws.String("i-0123456789abcdeff")}})
	if got := apiCode(t, err); got != "InvalidInstanceID.NotFound" {
		t.Errorf("CreateSnapshots(unknown) code = %q, want InvalidInstanceID.NotFound", got)
	}
	_, err = c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String("vol-12345678")})
	if got := apiCode(t, err); got != "InvalidVolume.NotFound" {
		t.Errorf("CreateSnapshot(unknown) code = %q, want InvalidVolume.NotFound", got)
	}
	_, err = c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(volData),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeVolume,
			Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}}})
	if got := apiCode(t, err); got != "InvalidParameterValue" {
		t.Errorf("CreateSnapshot(volume tag spec) code = %q, want InvalidParameterValue", got)
	}
}

func TestSnapshotProgress(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s, c := newServer(t, testFixture(), Options{CompleteAfter: 10 * time.Second, Now: clock.now})
	out, err := c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(volRoot)})
	if err != nil {
		t.Fatalf("CreateSnapshot(%s) = %v", volRoot, err)
	}
	id := aws.ToString(out.SnapshotId)
	tests := []struct {
		after        time.Duration
		wantState    types.SnapshotState
		wantProgress string
	}{
		{0, "pending", "0%"},
		{5 * time.Second, "pending", "50%"},
		{9900 * time.Millisecond, "pending", "99%"},
		{10 * time.Second, "completed", "100%"},
	}
	for _, tt := range tests {
		clock.t = aws.ToTime(out.StartTime).Add(tt.after)
		d, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
		if err != nil {
			t.Fatalf("DescribeSnapshots(%s) = %v", id, err)
		}
		sn := d.Snapshots[0]
		if sn.State != tt.wantState || aws.ToString(sn.Progress) != tt.wantProgress {
			t.Errorf("DescribeSnapshots at +%v = %s %s, want %s %s", tt.after,
				sn.State, aws.ToString(sn.Progress), tt.wantState, tt.wantProgress)
		}
	}
	if got := s.Snapshots()[1].State; got != "completed" {
		t.Errorf("Snapshots()[1].State = %q, want completed", got)
	}
}

func TestDescribeSnapshotsFilters(t *testing.T) {
	_, c := newServer(t, testFixture(), Options{})
	for _, v := range []string{volRoot, volData, volWeb} {
		_, err := c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(v),
			Description:       aws.String("run " + v),
			TagSpecifications: snapshotTags("orchestrate:run-id", "run-"+v[len(v)-1:])})
		if err != nil {
			t.Fatalf("CreateSnapshot(%s) = %v", v, err)
		}
	}
	tests := []struct {
		name    string
		owners  []string
		filters map[string][]string
		want    []string
	}{
		{"Self", []string{"self"}, nil, []string{volRoot, volData, volWeb}},
		{"Account", []string{"123456789012"}, nil, []string{volRoot, volData, volWeb}},
		{"Everyone", nil, nil, []string{"vol-ffffffff", volRoot, volData, volWeb}},
		{"Tag", []string{"self"}, map[string][]string{"tag:orchestrate:run-id": {"run-b"}}, []string{volData}},
		{"TagKey", nil, map[string][]string{"tag-key": {"orchestrate:*"}}, []string{volRoot, volData, volWeb}},
		{"Status", nil, map[string][]string{"status": {"completed"}, "owner-id": {"999999999999"}}, []string{"vol-ffffffff"}},
		{"Volume", []string{"self"}, map[string][]string{"volume-id": {volWeb}}, []string{volWeb}},
		{"Description", nil, map[string][]string{"description": {"run vol-*a"}}, []string{volRoot}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{
				OwnerIds: tt.owners, Filters: toFilters(tt.filters)})
			if err != nil {
				t.Fatalf("DescribeSnapshots(%v %v) = %v", tt.owners, tt.filters, err)
			}
			var got []string
			for _, sn := range d.Snapshots {
				got = append(got, aws.ToString(sn.VolumeId))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("DescribeSnapshots(%v %v) volumes = %v, want %v", tt.owners, tt.filters, got, tt.want)
			}
		})
	}
}

func TestDescribeSnapshotsPaginator(t *testing.T) {
	_, c := newServer(t, testFixture(), Options{})
	var want []string
	for range 12 {
		out, err := c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(volSpare)})
		if err != nil {
			t.Fatalf("CreateSnapshot(%s) = %v", volSpare, err)
		}
		want = append(want, aws.ToString(out.SnapshotId))
	}
	p := ec2.NewDescribeSnapshotsPaginator(c, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}},
		func(o *ec2.DescribeSnapshotsPaginatorOptions) { o.Limit = 5 })
	var got []string
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("NextPage() = %v", err)
		}
		pages++
		for _, sn := range out.Snapshots {
			got = append(got, aws.ToString(sn.SnapshotId))
		}
	}
	if pages != 3 || !slices.Equal(got, want) {
		t.Errorf("paginated DescribeSnapshots = %d pages %v, want 3 pages %v", pages, got, want)
	}
}

func TestCreateTagsAndDelete(t *testing.T) {
	s, c := newServer(t, testFixture(), Options{})
	out, err := c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(volRoot)})
	if err != nil {
		t.Fatalf("CreateSnapshot(%s) = %v", volRoot, err)
	}
	id := aws.ToString(out.SnapshotId)
	_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id, volRoot, instDB},
		Tags: []types.Tag{{Key: aws.String("orchestrate:consistency"), Value: aws.String("crash")}}})
	if err != nil {
		t.Fatalf("CreateTags(%s) = %v", id, err)
	}
	d, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{
		Filters: toFilters(map[string][]string{"tag:orchestrate:consistency": {"crash"}})})
	if err != nil || len(d.Snapshots) != 1 || aws.ToString(d.Snapshots[0].SnapshotId) != id {
		t.Errorf("DescribeSnapshots(tag set by CreateTags) = %v, %v, want %s", d, err, id)
	}
	v, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{
		Filters: toFilters(map[string][]string{"tag-key": {"orchestrate:consistency"}})})
	if err != nil || len(v.Volumes) != 1 {
		t.Errorf("DescribeVolumes(tag set by CreateTags) = %v, %v, want 1 volume", v, err)
	}

	tests := []struct {
		name     string
		call     func() error
		wantCode string
	}{
		{"TagUnknown", func() error {
			_, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{"snap-12345678"},
				Tags: []types.Tag{{Key: aws.String("k")}}})
			return err
		}, "InvalidSnapshot.NotFound"},
		{"TagReservedKey", func() error {
			_, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id},
				Tags: []types.Tag{{Key: aws.String("aws:x")}}})
			return err
		}, "InvalidParameterValue"},
		{"TagBadID", func() error {
			_, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{"ami-1"},
				Tags: []types.Tag{{Key: aws.String("k")}}})
			return err
		}, "InvalidID"},
		{"DeleteForeign", func() error {
			_, err := c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String("snap-0ffffffffffffffff")})
			return err
		}, "UnauthorizedOperation"},
		{"Delete", func() error {
			_, err := c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(id)})
			return err
		}, ""},
		{"DeleteAgain", func() error {
			_, err := c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(id)})
			return err
		}, "InvalidSnapshot.NotFound"},
		{"DescribeDeleted", func() error {
			_, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
			return err
		}, "InvalidSnapshot.NotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := apiCode(t, tt.call()); got != tt.wantCode {
				t.Errorf("%s: code = %q, want %q", tt.name, got, tt.wantCode)
			}
		})
	}
	for _, sn := range s.Snapshots() {
		if sn.ID == id {
			t.Errorf("Snapshots() after DeleteSnapshot still has %s", id)
		}
	}
	if msg := messageOf(tests[len(tests)-1].call()); !strings.Contains(msg, id) {
		t.Errorf("InvalidSnapshot.NotFound message = %q, want it to name %s", msg, id)
	}
}
