package snapshot

import (
	"errors"
	"reflect"
	"testing"
)

// planInstance is a running instance with a root volume, three attached
// data volumes and a detached one.
func planInstance() Instance {
	return Instance{
		ID: instDB, Region: testRegion, State: "running",
		RootDeviceName: "/dev/xvda",
		Volumes: []AttachedVolume{
			{VolumeID: volRoot, DeviceName: "/dev/xvda", Status: "attached",
				Root: true},
			{VolumeID: volData, DeviceName: "/dev/sdf", Status: "attached"},
			{VolumeID: volLogs, DeviceName: "/dev/sdg", Status: "attached"},
			{VolumeID: volSpare, DeviceName: "/dev/sdh", Status: "attached"},
			{VolumeID: volOld, DeviceName: "/dev/sdi", Status: "detached"},
		},
	}
}

// manyVolumes is planInstance with n more attached data volumes.
func manyVolumes(n int) Instance {
	in := planInstance()
	for i := range n {
		in.Volumes = append(in.Volumes, AttachedVolume{
			VolumeID: volumeID(0x100 + i), Status: "attached"})
	}
	return in
}

func TestPlan(t *testing.T) {
	stopped := planInstance()
	stopped.State = "stopped"

	tests := []struct {
		name        string
		inst        Instance
		want        []string
		wantVolumes []string
		wantBoot    bool // ExcludeBoot
		wantExclude []string
		wantErrVol  string // "" and wantErr: *PlanError without volume
		wantErr     bool
	}{
		{name: "OneDataVolume", inst: planInstance(), want: []string{volData},
			wantVolumes: []string{volData}, wantBoot: true,
			wantExclude: []string{volLogs, volSpare, volOld}},
		{name: "RootWanted", inst: planInstance(),
			want:        []string{volLogs, volRoot, volData, volSpare},
			wantVolumes: []string{volRoot, volData, volLogs, volSpare},
			wantExclude: []string{volOld}},
		{name: "RootOnly", inst: planInstance(), want: []string{volRoot},
			wantVolumes: []string{volRoot},
			wantExclude: []string{volData, volLogs, volSpare, volOld}},
		{name: "Duplicates", inst: stopped,
			want:        []string{volData, volData, volLogs},
			wantVolumes: []string{volData, volLogs}, wantBoot: true,
			wantExclude: []string{volSpare, volOld}},
		{name: "FortyExclusions", inst: manyVolumes(37),
			want: []string{volData}, wantVolumes: []string{volData},
			wantBoot: true, wantExclude: append(
				[]string{volLogs, volSpare, volOld},
				volumeIDs37()...)},
		{name: "TooManyExclusions", inst: manyVolumes(38),
			want: []string{volData}, wantErr: true},
		{name: "Detached", inst: planInstance(), want: []string{volOld},
			wantErr: true, wantErrVol: volOld},
		{name: "NotAttached", inst: planInstance(),
			want: []string{volData, "vol-0123456789abcdef0"}, wantErr: true,
			wantErrVol: "vol-0123456789abcdef0"},
		{name: "NothingWanted", inst: planInstance(), wantErr: true},
		{name: "Pending", inst: withState("pending"),
			want: []string{volData}, wantErr: true},
		{name: "Terminated", inst: withState("terminated"),
			want: []string{volData}, wantErr: true},
		{name: "ShuttingDown", inst: withState("shutting-down"),
			want: []string{volData}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tags := map[string]string{TagRunID: "r1"}
			r, err := Plan(tt.inst, tt.want, tags, "desc")
			if tt.wantErr {
				var pe *PlanError
				if !errors.As(err, &pe) || pe.InstanceID != instDB ||
					pe.VolumeID != tt.wantErrVol {
					t.Fatalf("Plan(%v) = %v, want *PlanError for %s volume %q",
						tt.want, err, instDB, tt.wantErrVol)
				}
				return
			}
			if err != nil {
				t.Fatalf("Plan(%v) error: %v", tt.want, err)
			}
			want := &Request{Region: testRegion, InstanceID: instDB,
				Volumes: tt.wantVolumes, ExcludeBoot: tt.wantBoot,
				Exclude: tt.wantExclude, Tags: tags, Description: "desc"}
			if !reflect.DeepEqual(r, want) {
				t.Errorf("Plan(%v) = %+v, want %+v", tt.want, r, want)
			}
		})
	}
}

func TestPlanCopiesTags(t *testing.T) {
	tags := map[string]string{"k": "v"}
	r, err := Plan(planInstance(), []string{volData}, tags, "")
	if err != nil {
		t.Fatalf("Plan() error: %v", err)
	}
	tags["k"] = "changed"
	if got := r.Tags["k"]; got != "v" {
		t.Errorf("Plan().Tags[k] after the caller's change = %q, want %q",
			got, "v")
	}
}

func TestPlanTooManyTags(t *testing.T) {
	tags := map[string]string{}
	for i := range MaxTags + 1 {
		tags[volumeID(i)] = "x"
	}
	_, err := Plan(planInstance(), []string{volData}, tags, "")
	var pe *PlanError
	if !errors.As(err, &pe) {
		t.Errorf("Plan(%d tags) = %v, want *PlanError", len(tags), err)
	}
}

func withState(s string) Instance {
	in := planInstance()
	in.State = s
	return in
}

// volumeIDs37 are the extra volume IDs of manyVolumes(37).
func volumeIDs37() []string {
	var ids []string
	for i := range 37 {
		ids = append(ids, volumeID(0x100+i))
	}
	return ids
}
