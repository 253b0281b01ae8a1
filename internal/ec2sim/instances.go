package ec2sim

import (
	"slices"
	"strconv"
	"strings"
)

// stateCodes are the instanceState codes EC2 pairs with each state name.
var stateCodes = map[string]int{
	"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48,
	"stopping": 64, "stopped": 80,
}

type describeInstancesResponse struct {
	Reservations []reservationXML `xml:"reservationSet>item"`
	NextToken    string           `xml:"nextToken,omitempty"`
}

type reservationXML struct {
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Instances     []instanceXML `xml:"instancesSet>item"`
}

type instanceXML struct {
	InstanceID       string       `xml:"instanceId"`
	State            stateXML     `xml:"instanceState"`
	PrivateDNSName   string       `xml:"privateDnsName"`
	DNSName          string       `xml:"dnsName"`
	LaunchTime       string       `xml:"launchTime"`
	AvailabilityZone string       `xml:"placement>availabilityZone"`
	PrivateIP        string       `xml:"privateIpAddress,omitempty"`
	PublicIP         string       `xml:"ipAddress,omitempty"`
	RootDeviceType   string       `xml:"rootDeviceType"`
	RootDeviceName   string       `xml:"rootDeviceName"`
	Mappings         []mappingXML `xml:"blockDeviceMapping>item"`
	TagSet           []xmlTag     `xml:"tagSet>item"`
}

type stateXML struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type mappingXML struct {
	DeviceName string `xml:"deviceName"`
	EBS        struct {
		VolumeID            string `xml:"volumeId"`
		Status              string `xml:"status"`
		AttachTime          string `xml:"attachTime"`
		DeleteOnTermination bool   `xml:"deleteOnTermination"`
	} `xml:"ebs"`
}

var instanceFilters = []string{"availability-zone",
	"block-device-mapping.device-name", "block-device-mapping.status",
	"block-device-mapping.volume-id", "instance-id", "instance-state-code",
	"instance-state-name", "ip-address", "private-dns-name", "dns-name",
	"private-ip-address", "tag-key"}

// describeInstances handles DescribeInstances, one reservation per
// instance.
func (s *Server) describeInstances(c *request) (any, *apiError) {
	ids := c.p.list("InstanceId")
	for _, id := range ids {
		if !validID(id, "i-") {
			return nil, errf("InvalidInstanceID.Malformed",
				"Invalid id: %q", id)
		}
	}
	fs, e := c.p.filters(instanceFilters)
	if e != nil {
		return nil, e
	}
	limit, paged, e := c.p.maxResults(5, 1000)
	if e != nil {
		return nil, e
	}
	if paged && len(ids) > 0 {
		return nil, errf("InvalidParameterCombination",
			"The parameter instancesSet cannot be used with the parameter maxResults")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var missing []string
	for _, id := range ids {
		if s.instance(id) == nil {
			missing = append(missing, id)
		}
	}
	switch {
	case len(missing) == 1:
		return nil, errf("InvalidInstanceID.NotFound",
			"The instance ID %s does not exist", quoteIDs(missing))
	case len(missing) > 1:
		return nil, errf("InvalidInstanceID.NotFound",
			"The instance IDs %s do not exist", quoteIDs(missing))
	case c.dryRun:
		return nil, dryRunOK()
	}

	type indexed struct {
		in  *Instance
		seq int
	}
	var all []indexed
	for i, in := range s.instances {
		if (len(ids) == 0 || slices.Contains(ids, in.ID)) &&
			instanceMatches(in, fs) {
			all = append(all, indexed{in, i})
		}
	}
	page, next, e := paginate(all, c.p.str("NextToken"), limit, paged,
		func(x indexed) int { return x.seq })
	if e != nil {
		return nil, e
	}
	resp := describeInstancesResponse{
		NextToken: next,
	}
	for _, x := range page {
		resp.Reservations = append(resp.Reservations, reservationXML{
			ReservationID: "r-" + strings.TrimPrefix(x.in.ID, "i-"),
			OwnerID:       s.fx.AccountID,
			Instances:     []instanceXML{s.toInstanceXML(x.in)},
		})
	}
	return resp, nil
}

func (s *Server) toInstanceXML(in *Instance) instanceXML {
	x := instanceXML{
		InstanceID:       in.ID,
		State:            stateXML{Code: stateCodes[in.State], Name: in.State},
		PrivateDNSName:   in.PrivateDNS,
		DNSName:          in.PublicDNS,
		LaunchTime:       xmlTime(s.started),
		AvailabilityZone: in.AvailabilityZone,
		PrivateIP:        in.PrivateIP,
		PublicIP:         in.PublicIP,
		RootDeviceType:   "ebs",
		RootDeviceName:   in.RootDeviceName,
		TagSet:           tagSet(in.Tags),
	}
	for _, m := range in.BlockDeviceMappings {
		var mx mappingXML
		mx.DeviceName = m.DeviceName
		mx.EBS.VolumeID = m.VolumeID
		mx.EBS.Status = m.Status
		mx.EBS.AttachTime = xmlTime(s.started)
		mx.EBS.DeleteOnTermination = m.DeleteOnTermination
		x.Mappings = append(x.Mappings, mx)
	}
	return x
}

func instanceMatches(in *Instance, fs []filter) bool {
	for _, f := range fs {
		if m, ok := matchTags(f, in.Tags); ok {
			if !m {
				return false
			}
			continue
		}
		var vals []string
		switch f.Name {
		case "availability-zone":
			vals = []string{in.AvailabilityZone}
		case "instance-id":
			vals = []string{in.ID}
		case "instance-state-code":
			vals = []string{strconv.Itoa(stateCodes[in.State])}
		case "instance-state-name":
			vals = []string{in.State}
		case "ip-address":
			vals = []string{in.PublicIP}
		case "private-dns-name":
			vals = []string{in.PrivateDNS}
		case "dns-name":
			vals = []string{in.PublicDNS}
		case "private-ip-address":
			vals = []string{in.PrivateIP}
		}
		for _, m := range in.BlockDeviceMappings {
			switch f.Name {
			case "block-device-mapping.device-name":
				vals = append(vals, m.DeviceName)
			case "block-device-mapping.status":
				vals = append(vals, m.Status)
			case "block-device-mapping.volume-id":
				vals = append(vals, m.VolumeID)
			}
		}
		if !matchAny(f.Values, vals...) {
			return false
		}
	}
	return true
}

// instance, volume and snapshot look up by ID; nil when absent. Call with
// s.mu held.
func (s *Server) instance(id string) *Instance {
	for _, in := range s.instances {
		if in.ID == id {
			return in
		}
	}
	return nil
}

func (s *Server) volume(id string) *Volume {
	for _, v := range s.volumes {
		if v.ID == id {
			return v
		}
	}
	return nil
}

func (s *Server) snapshot(id string) *snapRec {
	for _, r := range s.snaps {
		if r.ID == id {
			return r
		}
	}
	return nil
}
