package ec2sim

import (
	"maps"
	"slices"
	"strconv"
)

type describeVolumesResponse struct {
	Volumes   []volumeXML `xml:"volumeSet>item"`
	NextToken string      `xml:"nextToken,omitempty"`
}

type volumeXML struct {
	VolumeID         string          `xml:"volumeId"`
	Size             int             `xml:"size"`
	SnapshotID       string          `xml:"snapshotId"`
	AvailabilityZone string          `xml:"availabilityZone"`
	Status           string          `xml:"status"`
	CreateTime       string          `xml:"createTime"`
	VolumeType       string          `xml:"volumeType"`
	Encrypted        bool            `xml:"encrypted"`
	MultiAttach      bool            `xml:"multiAttachEnabled"`
	Attachments      []attachmentXML `xml:"attachmentSet>item"`
	TagSet           []xmlTag        `xml:"tagSet>item"`
}

type attachmentXML struct {
	VolumeID            string `xml:"volumeId"`
	InstanceID          string `xml:"instanceId"`
	Device              string `xml:"device"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

var volumeFilters = []string{"attachment.device", "attachment.instance-id",
	"attachment.status", "availability-zone", "encrypted", "size", "status",
	"tag-key", "volume-id", "volume-type"}

// describeVolumes handles DescribeVolumes. A volume is "in-use" while
// some instance maps it, "available" otherwise.
func (s *Server) describeVolumes(c *request) (any, *apiError) {
	ids := c.p.list("VolumeId")
	for _, id := range ids {
		if !validID(id, "vol-") {
			return nil, errf("InvalidVolumeID.Malformed",
				"Invalid id: %q (expecting \"vol-...\")", id)
		}
	}
	fs, e := c.p.filters(volumeFilters)
	if e != nil {
		return nil, e
	}
	limit, paged, e := c.p.maxResults(5, 500)
	if e != nil {
		return nil, e
	}
	if paged && len(ids) > 0 {
		return nil, errf("InvalidParameterCombination",
			"The parameter volumeSet cannot be used with the parameter maxResults")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var missing []string
	for _, id := range ids {
		if s.volume(id) == nil {
			missing = append(missing, id)
		}
	}
	switch {
	case len(missing) > 0:
		return nil, errf("InvalidVolume.NotFound",
			"The volume %s does not exist.", quoteIDs(missing))
	case c.dryRun:
		return nil, dryRunOK()
	}

	type indexed struct {
		x   volumeXML
		seq int
	}
	var all []indexed
	for i, v := range s.volumes {
		x := s.toVolumeXML(v)
		if (len(ids) == 0 || slices.Contains(ids, v.ID)) && volumeMatches(x, v, fs) {
			all = append(all, indexed{x, i})
		}
	}
	page, next, e := paginate(all, c.p.str("NextToken"), limit, paged,
		func(x indexed) int { return x.seq })
	if e != nil {
		return nil, e
	}
	resp := describeVolumesResponse{
		NextToken: next,
	}
	for _, x := range page {
		resp.Volumes = append(resp.Volumes, x.x)
	}
	return resp, nil
}

// toVolumeXML renders v with its attachment, found in the instances'
// mappings. Call with s.mu held.
func (s *Server) toVolumeXML(v *Volume) volumeXML {
	x := volumeXML{
		VolumeID: v.ID, Size: v.SizeGiB, AvailabilityZone: v.AvailabilityZone,
		Status: "available", CreateTime: xmlTime(s.started),
		VolumeType: v.VolumeType, Encrypted: v.Encrypted,
		TagSet: tagSet(v.Tags),
	}
	for _, in := range s.instances {
		for _, m := range in.BlockDeviceMappings {
			if m.VolumeID != v.ID {
				continue
			}
			x.Status = "in-use"
			x.Attachments = append(x.Attachments, attachmentXML{
				VolumeID: v.ID, InstanceID: in.ID, Device: m.DeviceName,
				Status: m.Status, AttachTime: xmlTime(s.started),
				DeleteOnTermination: m.DeleteOnTermination,
			})
		}
	}
	return x
}

func volumeMatches(x volumeXML, v *Volume, fs []filter) bool {
	for _, f := range fs {
		if m, ok := matchTags(f, v.Tags); ok {
			if !m {
				return false
			}
			continue
		}
		var vals []string
		switch f.Name {
		case "availability-zone":
			vals = []string{x.AvailabilityZone}
		case "encrypted":
			vals = []string{strconv.FormatBool(x.Encrypted)}
		case "size":
			vals = []string{strconv.Itoa(x.Size)}
		case "status":
			vals = []string{x.Status}
		case "volume-id":
			vals = []string{x.VolumeID}
		case "volume-type":
			vals = []string{x.VolumeType}
		}
		for _, a := range x.Attachments {
			switch f.Name {
			case "attachment.device":
				vals = append(vals, a.Device)
			case "attachment.instance-id":
				vals = append(vals, a.InstanceID)
			case "attachment.status":
				vals = append(vals, a.Status)
			}
		}
		if !matchAny(f.Values, vals...) {
			return false
		}
	}
	return true
}

// createTags handles CreateTags on snapshots, volumes and instances. All
// resources are checked before any is changed.
func (s *Server) createTags(c *request) (any, *apiError) {
	ids := c.p.list("ResourceId")
	if len(ids) == 0 {
		return nil, errf("MissingParameter",
			"The request must contain the parameter resourceIdSet")
	}
	tags, e := c.p.tagList("Tag")
	if e != nil {
		return nil, e
	}
	if len(tags) == 0 {
		return nil, errf("MissingParameter",
			"The request must contain the parameter tagSet")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var targets []*map[string]string
	for _, id := range ids {
		t, e := s.tagsOf(id)
		if e != nil {
			return nil, e
		}
		merged := maps.Clone(*t)
		if merged == nil {
			merged = map[string]string{}
		}
		maps.Copy(merged, tagMap(tags))
		if len(merged) > maxTags {
			return nil, errf("TagLimitExceeded",
				"The maximum number of Tags for a resource has been reached.")
		}
		targets = append(targets, t)
	}
	if c.dryRun {
		return nil, dryRunOK()
	}
	for _, t := range targets {
		if *t == nil {
			*t = map[string]string{}
		}
		maps.Copy(*t, tagMap(tags))
	}
	return returnResponse{Return: true}, nil
}

// tagsOf returns the tag map of the resource id. Call with s.mu held.
func (s *Server) tagsOf(id string) (*map[string]string, *apiError) {
	switch {
	case validID(id, "snap-"):
		r := s.snapshot(id)
		if r == nil {
			return nil, errf("InvalidSnapshot.NotFound",
				"The snapshot '%s' does not exist.", id)
		}
		if r.OwnerID != s.fx.AccountID {
			return nil, &apiError{Code: "UnauthorizedOperation",
				Message: deniedMessage()}
		}
		return &r.Tags, nil
	case validID(id, "vol-"):
		if v := s.volume(id); v != nil {
			return &v.Tags, nil
		}
		return nil, errf("InvalidVolume.NotFound",
			"The volume '%s' does not exist.", id)
	case validID(id, "i-"):
		if in := s.instance(id); in != nil {
			return &in.Tags, nil
		}
		return nil, errf("InvalidInstanceID.NotFound",
			"The instance ID '%s' does not exist", id)
	}
	return nil, errf("InvalidID", "The ID '%s' is not valid", id)
}
