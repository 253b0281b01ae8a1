package ec2sim

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"
)

// Fixture is the seed state of a Server, usually loaded from a JSON file
// with LoadFixture. Empty fields take the defaults documented on each type.
type Fixture struct {
	// AccountID owns every volume and every snapshot the server creates.
	// Default "123456789012".
	AccountID string `json:"account_id"`
	// Region is the only region requests may be signed for.
	// Default "us-east-1".
	Region string `json:"region"`
	// Credentials are the access keys that may sign requests.
	Credentials []Credential `json:"credentials"`
	// Instances, in the order DescribeInstances returns them.
	Instances []Instance `json:"instances"`
	// Volumes, in the order DescribeVolumes returns them.
	Volumes []Volume `json:"volumes"`
	// Snapshots are optional pre-existing snapshots. Their state and
	// progress stay as given.
	Snapshots []Snapshot `json:"snapshots"`
}

// Credential is an access key pair that may sign requests. Any session
// token sent with it is accepted without being checked.
type Credential struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
}

// Instance is an EC2 instance. State defaults to "running";
// AvailabilityZone defaults to the region plus "a".
type Instance struct {
	ID                  string            `json:"id"`
	State               string            `json:"state"`
	AvailabilityZone    string            `json:"availability_zone"`
	RootDeviceName      string            `json:"root_device_name"`
	PrivateIP           string            `json:"private_ip"`
	PublicIP            string            `json:"public_ip"`
	PrivateDNS          string            `json:"private_dns"`
	PublicDNS           string            `json:"public_dns"`
	Tags                map[string]string `json:"tags"`
	BlockDeviceMappings []Mapping         `json:"block_device_mappings"`
}

// Mapping attaches a volume to an instance under DeviceName. Status
// defaults to "attached"; only attached volumes are taken by
// CreateSnapshots. The mapping whose DeviceName equals the instance's
// RootDeviceName is the boot volume.
type Mapping struct {
	DeviceName          string `json:"device_name"`
	VolumeID            string `json:"volume_id"`
	DeleteOnTermination bool   `json:"delete_on_termination"`
	Status              string `json:"status"`
}

// Volume is an EBS volume. SizeGiB defaults to 8, VolumeType to "gp3",
// AvailabilityZone to that of the instance it is attached to. When
// BackingFile is set, a snapshot of the volume copies that file's bytes at
// the moment the create call is handled.
type Volume struct {
	ID               string            `json:"id"`
	SizeGiB          int               `json:"size_gib"`
	AvailabilityZone string            `json:"availability_zone"`
	VolumeType       string            `json:"volume_type"`
	Encrypted        bool              `json:"encrypted"`
	Tags             map[string]string `json:"tags"`
	BackingFile      string            `json:"backing_file"`
}

// Snapshot is an EBS snapshot as the server holds it. For snapshots the
// server created, State and Progress are computed at the time of reading.
// ImagePath is where the snapshot's bytes are, or "" if it has none.
type Snapshot struct {
	ID            string            `json:"id"`
	VolumeID      string            `json:"volume_id"`
	State         string            `json:"state"`
	Progress      string            `json:"progress"`
	Description   string            `json:"description"`
	OwnerID       string            `json:"owner_id"`
	StartTime     time.Time         `json:"start_time"`
	VolumeSizeGiB int               `json:"volume_size_gib"`
	Encrypted     bool              `json:"encrypted"`
	Tags          map[string]string `json:"tags"`
	ImagePath     string            `json:"image_path"`
}

// LoadFixture reads and decodes the JSON fixture at path. Unknown fields
// are errors, so a misspelt key does not silently seed nothing. The
// content is validated by New, not here.
func LoadFixture(path string) (*Fixture, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ec2sim: load fixture: %w", err)
	}
	defer f.Close()

	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	var fx Fixture
	if err := dec.Decode(&fx); err != nil {
		return nil, fmt.Errorf("ec2sim: decode fixture %s: %w", path, err)
	}
	return &fx, nil
}

// clone returns a deep copy of f with defaults filled in, after checking
// that IDs are well formed and unique and that every mapping names a
// known volume attached to one instance only.
func (f *Fixture) clone() (*Fixture, error) {
	c := &Fixture{AccountID: f.AccountID, Region: f.Region}
	if c.AccountID == "" {
		c.AccountID = "123456789012"
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if len(f.Credentials) == 0 {
		return nil, fmt.Errorf("check fixture: no credentials")
	}
	c.Credentials = slices.Clone(f.Credentials)

	vols := map[string]bool{}
	for _, v := range f.Volumes {
		if !validID(v.ID, "vol-") {
			return nil, fmt.Errorf("check fixture: malformed volume ID %q", v.ID)
		}
		if vols[v.ID] {
			return nil, fmt.Errorf("check fixture: duplicate volume %s", v.ID)
		}
		vols[v.ID] = true
		v.Tags = maps.Clone(v.Tags)
		c.Volumes = append(c.Volumes, v)
	}

	attached := map[string]string{}
	seen := map[string]bool{}
	for _, in := range f.Instances {
		if !validID(in.ID, "i-") {
			return nil, fmt.Errorf("check fixture: malformed instance ID %q", in.ID)
		}
		if seen[in.ID] {
			return nil, fmt.Errorf("check fixture: duplicate instance %s", in.ID)
		}
		seen[in.ID] = true
		if in.State == "" {
			in.State = "running"
		}
		if _, ok := stateCodes[in.State]; !ok {
			return nil, fmt.Errorf("check fixture: instance %s: unknown state %q", in.ID, in.State)
		}
		if in.AvailabilityZone == "" {
			in.AvailabilityZone = c.Region + "a"
		}
		in.Tags = maps.Clone(in.Tags)
		in.BlockDeviceMappings = slices.Clone(in.BlockDeviceMappings)
		for i := range in.BlockDeviceMappings {
			m := &in.BlockDeviceMappings[i]
			if !vols[m.VolumeID] {
				return nil, fmt.Errorf("check fixture: instance %s: unknown volume %q", in.ID, m.VolumeID)
			}
			if other, ok := attached[m.VolumeID]; ok {
				return nil, fmt.Errorf("check fixture: volume %s attached to both %s and %s", m.VolumeID, other, in.ID)
			}
			attached[m.VolumeID] = in.ID
			if m.Status == "" {
				m.Status = "attached"
			}
		}
		c.Instances = append(c.Instances, in)
	}

	// Volumes default to the zone of their instance.
	for i := range c.Volumes {
		v := &c.Volumes[i]
		if v.SizeGiB <= 0 {
			v.SizeGiB = 8
		}
		if v.VolumeType == "" {
			v.VolumeType = "gp3"
		}
		if v.AvailabilityZone == "" {
			v.AvailabilityZone = c.Region + "a"
			for _, in := range c.Instances {
				if in.ID == attached[v.ID] {
					v.AvailabilityZone = in.AvailabilityZone
				}
			}
		}
	}

	snaps := map[string]bool{}
	for _, s := range f.Snapshots {
		if !validID(s.ID, "snap-") {
			return nil, fmt.Errorf("check fixture: malformed snapshot ID %q", s.ID)
		}
		if snaps[s.ID] {
			return nil, fmt.Errorf("check fixture: duplicate snapshot %s", s.ID)
		}
		snaps[s.ID] = true
		if s.OwnerID == "" {
			s.OwnerID = c.AccountID
		}
		if s.State == "" {
			s.State = "completed"
		}
		if s.Progress == "" && s.State == "completed" {
			s.Progress = "100%"
		}
		s.Tags = maps.Clone(s.Tags)
		c.Snapshots = append(c.Snapshots, s)
	}
	return c, nil
}
