package snapshot

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/orchestrate-dev/orchestrate/internal/ec2sim"
)

func TestDescribeBatching(t *testing.T) {
	const n = 1500
	fx := testFixture()
	var ids []string
	for i := range n {
		id := instanceID(0x100 + i)
		ids = append(ids, id)
		fx.Instances = append(fx.Instances, ec2sim.Instance{ID: id})
	}
	srv, c := startSim(t, fx, ec2sim.Options{})

	found, err := c.Describe(context.Background(), "", ids)
	if err != nil {
		t.Fatalf("Describe(%d ids) error: %v", n, err)
	}
	if len(found) != n {
		t.Errorf("Describe(%d ids) found %d, want %d", n, len(found), n)
	}
	if got := countCalls(srv, "DescribeInstances"); got != 2 {
		t.Errorf("Describe(%d ids) made %d DescribeInstances calls, want 2",
			n, got)
	}
}

func TestDescribeUnknownID(t *testing.T) {
	srv, c := startSim(t, testFixture(), ec2sim.Options{})

	ids := []string{instDB, unknownInst, instStopped}
	found, err := c.Describe(context.Background(), "", ids)
	if err != nil {
		t.Fatalf("Describe(%v) error: %v", ids, err)
	}
	for _, id := range []string{instDB, instStopped} {
		if _, ok := found[id]; !ok {
			t.Errorf("Describe(%v) lacks %s", ids, id)
		}
	}
	if _, ok := found[unknownInst]; ok {
		t.Errorf("Describe(%v) has unknown %s", ids, unknownInst)
	}
	if got := countCalls(srv, "DescribeInstances"); got != 2 {
		t.Errorf("Describe(%v) made %d DescribeInstances calls, want 2 (ids, then filter)",
			ids, got)
	}
}

func TestDescribeInstance(t *testing.T) {
	_, c := startSim(t, testFixture(), ec2sim.Options{})

	found, err := c.Describe(context.Background(), testRegion,
		[]string{instDB, instDB})
	if err != nil {
		t.Fatalf("Describe(%s) error: %v", instDB, err)
	}
	want := Instance{
		ID: instDB, Region: testRegion, State: "running",
		AvailabilityZone: testRegion + "a", RootDeviceName: "/dev/xvda",
		Volumes: []AttachedVolume{
			{VolumeID: volRoot, DeviceName: "/dev/xvda", Status: "attached",
				Root: true},
			{VolumeID: volData, DeviceName: "/dev/sdf", Status: "attached"},
			{VolumeID: volLogs, DeviceName: "/dev/sdg", Status: "attached"},
			{VolumeID: volSpare, DeviceName: "/dev/sdh", Status: "detaching"},
		},
	}
	if got := found[instDB]; !reflect.DeepEqual(got, want) {
		t.Errorf("Describe(%s) = %+v, want %+v", instDB, got, want)
	}
}

func TestDescribeDenied(t *testing.T) {
	srv, c := startSim(t, testFixture(), ec2sim.Options{})
	srv.Deny("DescribeInstances")

	_, err := c.Describe(context.Background(), "", []string{instDB})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "UnauthorizedOperation" ||
		ae.Action != "DescribeInstances" {
		t.Errorf("Describe() = %v, want *APIError UnauthorizedOperation of DescribeInstances", err)
	}
}
