package snapshot

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// Instance is an EC2 instance as Describe found it.
type Instance struct {
	ID               string
	Region           string
	State            string // "running", "stopped", "pending", ...
	AvailabilityZone string
	RootDeviceName   string
	// Addresses, "" when the instance has none of the kind.
	PrivateIP, PublicIP, PrivateDNS, PublicDNS string
	// Tags are the instance's tags.
	Tags map[string]string
	// Volumes are the EBS volumes of its block device mappings, in API
	// order. Instance store volumes never appear.
	Volumes []AttachedVolume
}

// AttachedVolume is one EBS block device mapping of an instance.
type AttachedVolume struct {
	VolumeID   string
	DeviceName string // as given at attach time, e.g. "/dev/sdf"
	Status     string // "attached", "attaching", "detaching", "detached"
	Root       bool   // DeviceName is the instance's RootDeviceName
}

// Limits of DescribeInstances: InstanceIds per request as EC2 documents
// it, and values per filter, which EC2 caps at 200.
const (
	describeBatch  = 1000
	filterMaxValue = 200
)

// Describe looks up the instances ids in region ("" for the default
// region), at most 1000 per DescribeInstances request, and returns those
// found by ID. An unknown ID is not an error: it is absent from the map.
// It fails with *APIError when EC2 refuses the look-up (credentials,
// permission, a malformed ID) and with ErrNoRegion when region is "" and
// there is no default.
func (c *Client) Describe(ctx context.Context, region string,
	ids []string) (map[string]Instance, error) {
	cl, region, err := c.ec2For(region)
	if err != nil {
		return nil, err
	}

	found := make(map[string]Instance, len(ids))
	for _, batch := range chunks(dedupe(ids), describeBatch) {
		err := c.describeIDs(ctx, cl, region, batch, found)
		var ae smithy.APIError
		if errors.As(err, &ae) &&
			ae.ErrorCode() == "InvalidInstanceID.NotFound" {
			// EC2 fails the whole call for one unknown ID; a filter
			// returns the known ones instead.
			err = c.describeFiltered(ctx, cl, region, batch, found)
		}
		if err != nil {
			return nil, apiError("DescribeInstances", err)
		}
	}
	return found, nil
}

// describeIDs describes ids by InstanceIds, following NextToken, into
// found.
func (c *Client) describeIDs(ctx context.Context, cl *ec2.Client,
	region string, ids []string, found map[string]Instance) error {
	in := &ec2.DescribeInstancesInput{InstanceIds: ids}
	return c.describePages(ctx, cl, region, in, found)
}

// describeFiltered describes ids with the instance-id filter, which
// ignores unknown IDs, in requests of at most filterMaxValue values.
func (c *Client) describeFiltered(ctx context.Context, cl *ec2.Client,
	region string, ids []string, found map[string]Instance) error {
	for _, part := range chunks(ids, filterMaxValue) {
		in := &ec2.DescribeInstancesInput{
			Filters: []types.Filter{{
				Name: aws.String("instance-id"), Values: part,
			}},
			MaxResults: aws.Int32(describeBatch),
		}
		if err := c.describePages(ctx, cl, region, in, found); err != nil {
			return err
		}
	}
	return nil
}

// describePages sends in and its following pages, adding every instance
// to found.
func (c *Client) describePages(ctx context.Context, cl *ec2.Client,
	region string, in *ec2.DescribeInstancesInput,
	found map[string]Instance) error {
	for {
		start := time.Now()
		out, err := cl.DescribeInstances(ctx, in)
		c.logCall("DescribeInstances", region, start, err,
			"ids", len(in.InstanceIds), "filtered", len(in.Filters) > 0)
		if err != nil {
			return err
		}
		for _, r := range out.Reservations {
			for _, inst := range r.Instances {
				i := toInstance(inst, region)
				found[i.ID] = i
			}
		}
		next := aws.ToString(out.NextToken)
		if next == "" || next == aws.ToString(in.NextToken) {
			return nil
		}
		cp := *in
		cp.NextToken = aws.String(next)
		in = &cp
	}
}

// toInstance converts an SDK instance.
func toInstance(in types.Instance, region string) Instance {
	i := Instance{
		ID:             aws.ToString(in.InstanceId),
		Region:         region,
		RootDeviceName: aws.ToString(in.RootDeviceName),
		PrivateIP:      aws.ToString(in.PrivateIpAddress),
		PublicIP:       aws.ToString(in.PublicIpAddress),
		PrivateDNS:     aws.ToString(in.PrivateDnsName),
		PublicDNS:      aws.ToString(in.PublicDnsName),
	}
	if len(in.Tags) > 0 {
		i.Tags = map[string]string{}
		for _, t := range in.Tags {
			i.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	if in.State != nil {
		i.State = string(in.State.Name)
	}
	if in.Placement != nil {
		i.AvailabilityZone = aws.ToString(in.Placement.AvailabilityZone)
	}
	for _, m := range in.BlockDeviceMappings {
		if m.Ebs == nil || aws.ToString(m.Ebs.VolumeId) == "" {
			continue
		}
		dev := aws.ToString(m.DeviceName)
		i.Volumes = append(i.Volumes, AttachedVolume{
			VolumeID:   aws.ToString(m.Ebs.VolumeId),
			DeviceName: dev,
			Status:     string(m.Ebs.Status),
			Root:       dev != "" && dev == i.RootDeviceName,
		})
	}
	return i
}

// chunks splits s into consecutive slices of at most n elements.
func chunks[T any](s []T, n int) [][]T {
	var out [][]T
	for len(s) > n {
		out = append(out, s[:n:n])
		s = s[n:]
	}
	if len(s) > 0 {
		out = append(out, s)
	}
	return out
}

// dedupe returns s without repeated or empty strings, in first-seen
// order.
func dedupe(s []string) []string {
	seen := make(map[string]bool, len(s))
	out := make([]string, 0, len(s))
	for _, v := range s {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// Find returns the instances in region that match every filter (EC2
// DescribeInstances filters, e.g. "tag:team" or "private-ip-address", each
// with its accepted values), paginated at 1000 a call. A filter with more
// than 200 values is split over several calls. Terminated instances are
// never returned.
func (c *Client) Find(ctx context.Context, region string,
	filters map[string][]string) ([]Instance, error) {
	cl, region, err := c.ec2For(region)
	if err != nil {
		return nil, err
	}

	// Only one filter may be long (the addresses of a fleet); split it.
	var long string
	for k, v := range filters {
		if len(v) > maxFilterValues {
			long = k
		}
	}
	parts := [][]string{filters[long]}
	if long != "" {
		parts = chunks(filters[long], maxFilterValues)
	}

	seen := map[string]bool{}
	var out []Instance
	for _, part := range parts {
		in := &ec2.DescribeInstancesInput{MaxResults: aws.Int32(1000)}
		for k, v := range filters {
			if k == long {
				v = part
			}
			in.Filters = append(in.Filters, types.Filter{Name: aws.String(k), Values: v})
		}
		pages := ec2.NewDescribeInstancesPaginator(cl, in)
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				return nil, apiError("DescribeInstances", err)
			}
			for _, r := range page.Reservations {
				for _, inst := range r.Instances {
					i := toInstance(inst, region)
					if i.State == "terminated" || seen[i.ID] {
						continue
					}
					seen[i.ID] = true
					out = append(out, i)
				}
			}
		}
	}
	return out, nil
}

// maxFilterValues is how many values EC2 takes in one filter.
const maxFilterValues = 200
