package ec2sim

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestDescribeInstancesFields(t *testing.T) {
	_, c := newServer(t, testFixture(), Options{})
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{
		InstanceIds: []string{instDB},
		DryRun:      aws.Bool(false),
	})
	if err != nil {
		t.Fatalf("DescribeInstances(%s) = %v", instDB, err)
	}
	if len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		t.Fatalf("DescribeInstances(%s) = %d reservations, want 1", instDB, len(out.Reservations))
	}
	in := out.Reservations[0].Instances[0]
	checks := []struct{ name, got, want string }{
		{"InstanceId", aws.ToString(in.InstanceId), instDB},
		{"State.Name", string(in.State.Name), "running"},
		{"State.Code", fmt.Sprint(aws.ToInt32(in.State.Code)), "16"},
		{"RootDeviceName", aws.ToString(in.RootDeviceName), "/dev/xvda"},
		{"PrivateIpAddress", aws.ToString(in.PrivateIpAddress), "10.0.0.5"},
		{"Placement.AvailabilityZone", aws.ToString(in.Placement.AvailabilityZone), "us-east-1a"},
		{"OwnerId", aws.ToString(out.Reservations[0].OwnerId), "123456789012"},
		{"mappings", fmt.Sprint(len(in.BlockDeviceMappings)), "3"},
		{"mapping[1].DeviceName", aws.ToString(in.BlockDeviceMappings[1].DeviceName), "/dev/sdf"},
		{"mapping[1].VolumeId", aws.ToString(in.BlockDeviceMappings[1].Ebs.VolumeId), volData},
		{"mapping[1].Status", string(in.BlockDeviceMappings[1].Ebs.Status), "attached"},
		{"mapping[0].DeleteOnTermination", fmt.Sprint(aws.ToBool(in.BlockDeviceMappings[0].Ebs.DeleteOnTermination)), "true"},
		{"tags", fmt.Sprint(tagsOf(in.Tags)), "map[Name:db1 Role:db]"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("DescribeInstances(%s) %s = %q, want %q", instDB, ch.name, ch.got, ch.want)
		}
	}
}

func TestDescribeInstancesFilters(t *testing.T) {
	_, c := newServer(t, testFixture(), Options{})
	tests := []struct {
		name    string
		filters map[string][]string
		want    []string
	}{
		{"Tag", map[string][]string{"tag:Role": {"db"}}, []string{instDB, instOld}},
		{"TagWildcard", map[string][]string{"tag:Name": {"web*"}}, []string{instWeb}},
		{"TagKey", map[string][]string{"tag-key": {"Name"}}, []string{instDB, instWeb}},
		{"State", map[string][]string{"instance-state-name": {"stopped"}}, []string{instOld}},
		{"Volume", map[string][]string{"block-device-mapping.volume-id": {volLogs}}, []string{instDB}},
		{"InstanceID", map[string][]string{"instance-id": {instWeb, instOld}}, []string{instWeb, instOld}},
		{"And", map[string][]string{"tag:Role": {"db"}, "instance-state-name": {"running"}}, []string{instDB}},
		{"None", map[string][]string{"tag:Role": {"cache"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{
				Filters: toFilters(tt.filters),
			})
			if err != nil {
				t.Fatalf("DescribeInstances(%v) = %v", tt.filters, err)
			}
			var got []string
			for _, r := range out.Reservations {
				for _, in := range r.Instances {
					got = append(got, aws.ToString(in.InstanceId))
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("DescribeInstances(%v) = %v, want %v", tt.filters, got, tt.want)
			}
		})
	}
}

func TestDescribeErrors(t *testing.T) {
	_, c := newServer(t, testFixture(), Options{})
	tests := []struct {
		name     string
		call     func() error
		wantCode string
	}{
		{"InstanceNotFound", func() error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789abcdeff"}})
			return err
		}, "InvalidInstanceID.NotFound"},
		{"InstanceMalformed", func() error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-xyz"}})
			return err
		}, "InvalidInstanceID.Malformed"},
		{"InstanceMaxResultsWithIDs", func() error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instDB}, MaxResults: aws.Int32(5)})
			return err
		}, "InvalidParameterCombination"},
		{"InstanceBadFilter", func() error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: toFilters(map[string][]string{"colour": {"x"}})})
			return err
		}, "InvalidParameterValue"},
		{"InstanceMaxResultsTooSmall", func() error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(4)})
			return err
		}, "InvalidParameterValue"},
		{"VolumeNotFound", func() error {
			_, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{"vol-12345678"}})
			return err
		}, "InvalidVolume.NotFound"},
		{"SnapshotNotFound", func() error {
			_, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{"snap-12345678"}})
			return err
		}, "InvalidSnapshot.NotFound"},
		{"SnapshotMaxResultsWithIDs", func() error {
			_, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{"snap-0ffffffffffffffff"}, MaxResults: aws.Int32(5)})
			return err
		}, "InvalidParameterCombination"},
		{"BadNextToken", func() error {
			_, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{NextToken: aws.String("bogus!")})
			return err
		}, "InvalidPaginationToken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if got := apiCode(t, err); got != tt.wantCode {
				t.Errorf("%s: code = %q, want %q", tt.name, got, tt.wantCode)
			}
			if got := httpStatusOf(err); got != 400 {
				t.Errorf("%s: HTTP status = %d, want 400", tt.name, got)
			}
		})
	}
}

func TestInstanceNotFoundMessage(t *testing.T) {
	_, c := newServer(t, testFixture(), Options{})
	_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{
		InstanceIds: []string{"i-0123456789abcdeff"}})
	want := "The instance ID 'i-0123456789abcdeff' does not exist"
	if got := messageOf(err); got != want {
		t.Errorf("DescribeInstances(unknown) message = %q, want %q", got, want)
	}
}

func TestDescribeInstancesPaginator(t *testing.T) {
	f := testFixture()
	for i := range 12 {
		f.Instances = append(f.Instances, Instance{ID: fmt.Sprintf("i-%08x", i),
			Tags: map[string]string{"fleet": "big"}})
	}
	_, c := newServer(t, f, Options{})
	p := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{
		Filters:    toFilters(map[string][]string{"tag:fleet": {"big"}}),
		MaxResults: aws.Int32(5),
	})
	var pages, n int
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("NextPage() = %v", err)
		}
		pages++
		n += len(out.Reservations)
	}
	if pages != 3 || n != 12 {
		t.Errorf("paginated DescribeInstances = %d pages, %d instances, want 3, 12", pages, n)
	}
}

func TestDescribeVolumes(t *testing.T) {
	_, c := newServer(t, testFixture(), Options{})
	tests := []struct {
		name    string
		ids     []string
		filters map[string][]string
		want    []string
	}{
		{"ByInstance", nil, map[string][]string{"attachment.instance-id": {instDB}}, []string{volRoot, volData, volLogs}},
		{"Available", nil, map[string][]string{"status": {"available"}}, []string{volSpare}},
		{"ByID", []string{volWeb}, nil, []string{volWeb}},
		{"ByIDFilter", nil, map[string][]string{"volume-id": {volData}}, []string{volData}},
		{"Tag", nil, map[string][]string{"tag:Backup": {"yes"}}, []string{volData}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{
				VolumeIds: tt.ids, Filters: toFilters(tt.filters)})
			if err != nil {
				t.Fatalf("DescribeVolumes(%v %v) = %v", tt.ids, tt.filters, err)
			}
			var got []string
			for _, v := range out.Volumes {
				got = append(got, aws.ToString(v.VolumeId))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("DescribeVolumes(%v %v) = %v, want %v", tt.ids, tt.filters, got, tt.want)
			}
		})
	}

	out, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{volData}})
	if err != nil {
		t.Fatalf("DescribeVolumes(%s) = %v", volData, err)
	}
	v := out.Volumes[0]
	got := fmt.Sprint(aws.ToInt32(v.Size), v.State, aws.ToBool(v.Encrypted), v.VolumeType,
		aws.ToString(v.Attachments[0].InstanceId), aws.ToString(v.Attachments[0].Device), v.Attachments[0].State)
	want := fmt.Sprint(100, "in-use", true, "gp3", instDB, "/dev/sdf", "attached")
	if got != want {
		t.Errorf("DescribeVolumes(%s) = %s, want %s", volData, got, want)
	}
}

func TestDescribeVolumesPaginator(t *testing.T) {
	_, c := newServer(t, testFixture(), Options{})
	p := ec2.NewDescribeVolumesPaginator(c, &ec2.DescribeVolumesInput{MaxResults: aws.Int32(5)})
	var ids []string
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("NextPage() = %v", err)
		}
		pages++
		for _, v := range out.Volumes {
			ids = append(ids, aws.ToString(v.VolumeId))
		}
	}
	want := []string{volRoot, volData, volLogs, volWeb, volSpare}
	if pages != 1 || !slices.Equal(ids, want) {
		t.Errorf("paginated DescribeVolumes = %d pages %v, want 1 page %v", pages, ids, want)
	}
}

func toFilters(m map[string][]string) []types.Filter {
	var out []types.Filter
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, types.Filter{Name: aws.String(k), Values: m[k]})
	}
	return out
}

func tagsOf(tags []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}
