package ec2sim

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// everyAction calls each action once on c with DryRun set to dry.
func everyAction(c *ec2.Client, dry bool) map[string]func() error {
	d := aws.Bool(dry)
	return map[string]func() error{
		"DescribeInstances": func() error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{DryRun: d})
			return err
		},
		"DescribeVolumes": func() error {
			_, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{DryRun: d})
			return err
		},
		"CreateSnapshot": func() error {
			_, err := c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(volWeb), DryRun: d})
			return err
		},
		"CreateSnapshots": func() error {
			_, err := c.CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{DryRun: d,
				InstanceSpecification: &types.InstanceSpecification{InstanceId: aws.String(instDB)}})
			return err
		},
		"DescribeSnapshots": func() error {
			_, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{DryRun: d, OwnerIds: []string{"self"}})
			return err
		},
		"CreateTags": func() error {
			_, err := c.CreateTags(ctx, &ec2.CreateTagsInput{DryRun: d, Resources: []string{volData},
				Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
			return err
		},
		"DeleteSnapshot": func() error {
			_, err := c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{DryRun: d,
				SnapshotId: aws.String("snap-0ffffffffffffffff")})
			return err
		},
	}
}

func TestDryRun(t *testing.T) {
	s, c := newServer(t, testFixture(), Options{})
	for action, call := range everyAction(c, true) {
		t.Run(action, func(t *testing.T) {
			err := call()
			want := "DryRunOperation"
			if action == "DeleteSnapshot" {
				want = "UnauthorizedOperation" // the seeded snapshot is foreign
			}
			if got := apiCode(t, err); got != want {
				t.Errorf("%s(DryRun) code = %q, want %q", action, got, want)
			}
			if want == "DryRunOperation" && httpStatusOf(err) != 412 {
				t.Errorf("%s(DryRun) HTTP status = %d, want 412", action, httpStatusOf(err))
			}
		})
	}
	if got := len(s.Snapshots()); got != 1 {
		t.Errorf("Snapshots() after DryRun creates = %d, want 1 (the seeded one)", got)
	}
	if calls := s.Calls(); len(calls) != 7 || !calls[0].DryRun {
		t.Errorf("Calls() = %v, want 7 DryRun calls", codes(calls))
	}
}

func TestDenyWinsOverDryRun(t *testing.T) {
	s, c := newServer(t, testFixture(), Options{})
	for action := range everyAction(c, false) {
		s.Deny(action)
	}
	for _, dry := range []bool{true, false} {
		for action, call := range everyAction(c, dry) {
			err := call()
			if got := apiCode(t, err); got != "UnauthorizedOperation" {
				t.Errorf("%s(DryRun=%v) after Deny code = %q, want UnauthorizedOperation", action, dry, got)
			}
			if got := httpStatusOf(err); got != 403 {
				t.Errorf("%s(DryRun=%v) after Deny HTTP status = %d, want 403", action, dry, got)
			}
			msg := messageOf(err)
			if !strings.HasPrefix(msg, "You are not authorized to perform this operation. Encoded authorization failure message: ") {
				t.Errorf("%s after Deny message = %q, want the IAM denial text", action, msg)
			}
		}
	}
	s.Allow("DescribeVolumes")
	if err := everyAction(c, false)["DescribeVolumes"](); err != nil {
		t.Errorf("DescribeVolumes after Allow = %v, want success", err)
	}
}

func TestAuthFailure(t *testing.T) {
	s, _ := newServer(t, testFixture(), Options{})
	url := start(t, s)
	tests := []struct {
		name, akid, secret, token string
		wantCode                  string
	}{
		{"Good", testAKID, testSecret, "", ""},
		{"OtherKey", otherAKID, "other", "", ""},
		{"SessionToken", testAKID, testSecret, "opaque-session-token", ""},
		{"WrongSecret", testAKID, "not-the-secret", "", "AuthFailure"},
		{"UnknownKey", "AKIDNOBODY", testSecret, "", "AuthFailure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := client(url, tt.akid, tt.secret, tt.token, 1)
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
			if got := apiCode(t, err); got != tt.wantCode {
				t.Fatalf("DescribeInstances signed by %s code = %q, want %q", tt.akid, got, tt.wantCode)
			}
			if err != nil && httpStatusOf(err) != 401 {
				t.Errorf("AuthFailure HTTP status = %d, want 401", httpStatusOf(err))
			}
			calls := s.Calls()
			last := calls[len(calls)-1]
			if last.AccessKeyID != tt.akid || last.Code != tt.wantCode {
				t.Errorf("last Call = %+v, want key %s code %q", last, tt.akid, tt.wantCode)
			}
		})
	}
}

func TestFailNext(t *testing.T) {
	tests := []struct {
		code       string
		wantStatus int
	}{
		{"RequestLimitExceeded", 503},
		{"InternalError", 500},
		{"Unavailable", 503},
		{"UnauthorizedOperation", 403},
		{"SnapshotCreationPerVolumeRateExceeded", 400},
		{"IncorrectState", 400},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			s, c := newServer(t, testFixture(), Options{})
			s.FailNext("CreateSnapshots", 1, tt.code)
			call := everyAction(c, false)["CreateSnapshots"]
			err := call()
			if got := apiCode(t, err); got != tt.code {
				t.Errorf("CreateSnapshots after FailNext code = %q, want %q", got, tt.code)
			}
			if got := httpStatusOf(err); got != tt.wantStatus {
				t.Errorf("%s HTTP status = %d, want %d", tt.code, got, tt.wantStatus)
			}
			if messageOf(err) == "" {
				t.Errorf("%s message is empty, want a realistic one", tt.code)
			}
			if err := call(); err != nil {
				t.Errorf("second CreateSnapshots = %v, want success", err)
			}
		})
	}
}

func TestRequestLimitExceededRetried(t *testing.T) {
	s, _ := newServer(t, testFixture(), Options{})
	c := client(start(t, s), testAKID, testSecret, "", 3)
	s.FailNext("DescribeInstances", 2, "RequestLimitExceeded")
	if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err != nil {
		t.Fatalf("DescribeInstances with 2 throttles and 3 attempts = %v, want success", err)
	}
	got := codes(s.Calls())
	want := []string{`DescribeInstances:"RequestLimitExceeded"`,
		`DescribeInstances:"RequestLimitExceeded"`, `DescribeInstances:""`}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Calls() = %v, want %v", got, want)
	}

	s.FailNext("DescribeInstances", 5, "RequestLimitExceeded")
	_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	var me *retry.MaxAttemptsError
	if !errors.As(err, &me) || apiCode(t, err) != "RequestLimitExceeded" {
		t.Errorf("DescribeInstances with 5 throttles = %v, want MaxAttemptsError RequestLimitExceeded", err)
	}
}

func TestVolumeRateLimit(t *testing.T) {
	s, c := newServer(t, testFixture(), Options{})
	s.SetVolumeRateLimit(volData, time.Hour)
	create := everyAction(c, false)
	if err := create["CreateSnapshots"](); err != nil {
		t.Fatalf("first CreateSnapshots = %v, want success", err)
	}
	err := create["CreateSnapshots"]()
	if got := apiCode(t, err); got != "SnapshotCreationPerVolumeRateExceeded" || httpStatusOf(err) != 400 {
		t.Errorf("second CreateSnapshots = %q %d, want SnapshotCreationPerVolumeRateExceeded 400", got, httpStatusOf(err))
	}
	_, err = c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(volData)})
	if got := apiCode(t, err); got != "SnapshotCreationPerVolumeRateExceeded" {
		t.Errorf("CreateSnapshot(%s) too soon code = %q, want SnapshotCreationPerVolumeRateExceeded", volData, got)
	}
	if err := create["CreateSnapshot"](); err != nil {
		t.Errorf("CreateSnapshot of another volume = %v, want success", err)
	}
	if got := len(s.Snapshots()); got != 5 {
		t.Errorf("Snapshots() = %d, want 5 (1 seeded, 3, 1)", got)
	}
}

func TestConcurrentSnapshotLimit(t *testing.T) {
	s, c := newServer(t, testFixture(), Options{CompleteAfter: time.Hour})
	// volLogs is st1: one pending snapshot at a time.
	if _, err := c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(volLogs)}); err != nil {
		t.Fatalf("CreateSnapshot(%s) = %v", volLogs, err)
	}
	_, err := c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(volLogs)})
	if got := apiCode(t, err); got != "ConcurrentSnapshotLimitExceeded" {
		t.Errorf("second CreateSnapshot(st1) code = %q, want ConcurrentSnapshotLimitExceeded", got)
	}
	for i := range 5 {
		_, err := c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(volData)})
		if err != nil {
			t.Fatalf("CreateSnapshot(%s) #%d = %v", volData, i+1, err)
		}
	}
	_, err = c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(volData)})
	if got := apiCode(t, err); got != "ConcurrentSnapshotLimitExceeded" {
		t.Errorf("sixth CreateSnapshot(gp3) code = %q, want ConcurrentSnapshotLimitExceeded", got)
	}
	if got := len(s.Snapshots()); got != 7 {
		t.Errorf("Snapshots() = %d, want 7", got)
	}
}

func TestFailSnapshotsOf(t *testing.T) {
	s, c := newServer(t, testFixture(), Options{})
	s.FailSnapshotsOf(volData)
	out, err := c.CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{
		InstanceSpecification: &types.InstanceSpecification{InstanceId: aws.String(instDB)}})
	if err != nil {
		t.Fatalf("CreateSnapshots(%s) = %v", instDB, err)
	}
	var ids []string
	for _, sn := range out.Snapshots {
		ids = append(ids, aws.ToString(sn.SnapshotId))
	}
	d, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: ids})
	if err != nil {
		t.Fatalf("DescribeSnapshots(%v) = %v", ids, err)
	}
	for _, sn := range d.Snapshots {
		want := types.SnapshotStateCompleted
		if aws.ToString(sn.VolumeId) == volData {
			want = types.SnapshotStateError
		}
		if sn.State != want {
			t.Errorf("snapshot of %s State = %q, want %q", aws.ToString(sn.VolumeId), sn.State, want)
		}
	}

	// The SDK waiter treats error as terminal failure.
	w := ec2.NewSnapshotCompletedWaiter(c)
	err = w.Wait(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: ids}, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "Failure") {
		t.Errorf("SnapshotCompletedWaiter.Wait = %v, want a failure state error", err)
	}
}

func TestDetachVolume(t *testing.T) {
	s, c := newServer(t, testFixture(), Options{})
	s.DetachVolume(volLogs)
	out, err := c.CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{
		InstanceSpecification: &types.InstanceSpecification{InstanceId: aws.String(instDB)}})
	if err != nil || len(out.Snapshots) != 2 {
		t.Fatalf("CreateSnapshots after DetachVolume = %v, %v, want 2 snapshots", out, err)
	}
	v, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{volLogs}})
	if err != nil || v.Volumes[0].State != types.VolumeStateAvailable {
		t.Errorf("DescribeVolumes(%s) after detach = %v, %v, want available", volLogs, v, err)
	}
}
