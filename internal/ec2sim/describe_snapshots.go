package ec2sim

import (
	"encoding/base64"
	"os"
	"slices"
	"strconv"
	"strings"
)

// snapshotXML is a Snapshot as CreateSnapshot (as the whole response)
// and DescribeSnapshots send it. Its state is in <status>.
type snapshotXML struct {
	SnapshotID  string   `xml:"snapshotId"`
	VolumeID    string   `xml:"volumeId"`
	Status      string   `xml:"status"`
	StartTime   string   `xml:"startTime"`
	Progress    string   `xml:"progress"`
	OwnerID     string   `xml:"ownerId"`
	VolumeSize  int      `xml:"volumeSize"`
	Description string   `xml:"description"`
	Encrypted   bool     `xml:"encrypted"`
	StorageTier string   `xml:"storageTier"`
	TagSet      []xmlTag `xml:"tagSet>item"`
}

// snapshotInfoXML is a snapshot as CreateSnapshots sends it. Its state
// is in <state>: the SDK reads nothing else for SnapshotInfo.
type snapshotInfoXML struct {
	SnapshotID       string   `xml:"snapshotId"`
	VolumeID         string   `xml:"volumeId"`
	State            string   `xml:"state"`
	StartTime        string   `xml:"startTime"`
	Progress         string   `xml:"progress"`
	OwnerID          string   `xml:"ownerId"`
	VolumeSize       int      `xml:"volumeSize"`
	Encrypted        bool     `xml:"encrypted"`
	Description      string   `xml:"description"`
	TagSet           []xmlTag `xml:"tagSet>item"`
	AvailabilityZone string   `xml:"availabilityZone"`
}

type createSnapshotsResponse struct {
	Snapshots []snapshotInfoXML `xml:"snapshotSet>item"`
}

type describeSnapshotsResponse struct {
	Snapshots []snapshotXML `xml:"snapshotSet>item"`
	NextToken string        `xml:"nextToken,omitempty"`
}

type returnResponse struct {
	Return bool `xml:"return"`
}

func toSnapshotXML(sn Snapshot) snapshotXML {
	return snapshotXML{
		SnapshotID: sn.ID, VolumeID: sn.VolumeID, Status: sn.State,
		StartTime: xmlTime(sn.StartTime), Progress: sn.Progress,
		OwnerID: sn.OwnerID, VolumeSize: sn.VolumeSizeGiB,
		Description: sn.Description, Encrypted: sn.Encrypted,
		StorageTier: "standard", TagSet: tagSet(sn.Tags),
	}
}

func toSnapshotInfoXML(r *snapRec) snapshotInfoXML {
	sn := r.Snapshot
	return snapshotInfoXML{
		SnapshotID: sn.ID, VolumeID: sn.VolumeID, State: sn.State,
		StartTime: xmlTime(sn.StartTime), Progress: sn.Progress,
		OwnerID: sn.OwnerID, VolumeSize: sn.VolumeSizeGiB,
		Encrypted: sn.Encrypted, Description: sn.Description,
		TagSet: tagSet(sn.Tags), AvailabilityZone: r.az,
	}
}

var snapshotFilters = []string{"description", "encrypted", "owner-id",
	"progress", "snapshot-id", "status", "tag-key", "volume-id",
	"volume-size"}

// describeSnapshots handles DescribeSnapshots.
func (s *Server) describeSnapshots(c *request) (any, *apiError) {
	ids := c.p.list("SnapshotId")
	for _, id := range ids {
		if !validID(id, "snap-") {
			return nil, errf("InvalidSnapshotID.Malformed",
				"Invalid id: %q (expecting \"snap-...\")", id)
		}
	}
	owners := c.p.list("Owner")
	fs, e := c.p.filters(snapshotFilters)
	if e != nil {
		return nil, e
	}
	limit, paged, e := c.p.maxResults(5, 1000)
	if e != nil {
		return nil, e
	}
	if paged && len(ids) > 0 {
		return nil, errf("InvalidParameterCombination",
			"The parameter snapshotSet cannot be used with the parameter maxResults")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var missing []string
	for _, id := range ids {
		if s.snapshot(id) == nil {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, errf("InvalidSnapshot.NotFound",
			"The snapshot %s does not exist.", quoteIDs(missing))
	}
	if c.dryRun {
		return nil, dryRunOK()
	}

	var all []*snapRec
	for _, r := range s.snaps {
		sn := s.view(r, now)
		if (len(ids) == 0 || slices.Contains(ids, sn.ID)) &&
			s.ownedBy(sn, owners) && snapshotMatches(sn, fs) {
			all = append(all, r)
		}
	}
	page, next, e := paginate(all, c.p.str("NextToken"), limit, paged,
		func(r *snapRec) int { return r.seq })
	if e != nil {
		return nil, e
	}
	resp := describeSnapshotsResponse{
		NextToken: next,
	}
	for _, r := range page {
		resp.Snapshots = append(resp.Snapshots, toSnapshotXML(s.view(r, now)))
	}
	return resp, nil
}

// ownedBy applies Owner.N: "self" or an account ID; "amazon" and the
// other aliases match nothing here. No owners matches all.
func (s *Server) ownedBy(sn Snapshot, owners []string) bool {
	if len(owners) == 0 {
		return true
	}
	for _, o := range owners {
		if o == "self" && sn.OwnerID == s.fx.AccountID || o == sn.OwnerID {
			return true
		}
	}
	return false
}

func snapshotMatches(sn Snapshot, fs []filter) bool {
	for _, f := range fs {
		if m, ok := matchTags(f, sn.Tags); ok {
			if !m {
				return false
			}
			continue
		}
		var v string
		switch f.Name {
		case "description":
			v = sn.Description
		case "encrypted":
			v = strconv.FormatBool(sn.Encrypted)
		case "owner-id":
			v = sn.OwnerID
		case "progress":
			v = sn.Progress
		case "snapshot-id":
			v = sn.ID
		case "status":
			v = sn.State
		case "volume-id":
			v = sn.VolumeID
		case "volume-size":
			v = strconv.Itoa(sn.VolumeSizeGiB)
		}
		if !matchAny(f.Values, v) {
			return false
		}
	}
	return true
}

// deleteSnapshot handles DeleteSnapshot. A snapshot of another account
// cannot be deleted. The snapshot's image file is removed too.
func (s *Server) deleteSnapshot(c *request) (any, *apiError) {
	id, e := c.p.required("SnapshotId")
	if e != nil {
		return nil, e
	}
	if !validID(id, "snap-") {
		return nil, errf("InvalidSnapshotID.Malformed",
			"Invalid id: %q (expecting \"snap-...\")", id)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.snapshot(id)
	switch {
	case r == nil:
		return nil, errf("InvalidSnapshot.NotFound",
			"The snapshot '%s' does not exist.", id)
	case r.OwnerID != s.fx.AccountID:
		return nil, &apiError{Code: "UnauthorizedOperation",
			Message: deniedMessage()}
	case c.dryRun:
		return nil, dryRunOK()
	}
	s.snaps = slices.DeleteFunc(s.snaps,
		func(x *snapRec) bool { return x == r })
	if r.created && r.ImagePath != "" {
		os.Remove(r.ImagePath)
	}
	return returnResponse{Return: true}, nil
}

// paginate returns the page of items (ordered by seq) that starts at
// token, at most limit long when paged, and the token of the next page.
func paginate[T any](items []T, token string, limit int, paged bool,
	seq func(T) int) ([]T, string, *apiError) {
	start := 0
	if token != "" {
		from, ok := decodeToken(token)
		if !ok {
			return nil, "", errf("InvalidPaginationToken",
				"The pagination token '%s' is invalid.", token)
		}
		start = len(items)
		for i, it := range items {
			if seq(it) >= from {
				start = i
				break
			}
		}
	}
	items = items[start:]
	if !paged || len(items) <= limit {
		return items, "", nil
	}
	return items[:limit], encodeToken(seq(items[limit])), nil
}

const tokenPrefix = "ec2sim:"

func encodeToken(seq int) string {
	return base64.RawURLEncoding.EncodeToString(
		[]byte(tokenPrefix + strconv.Itoa(seq)))
}

func decodeToken(tok string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimPrefix(string(b), tokenPrefix))
	return n, err == nil && strings.HasPrefix(string(b), tokenPrefix)
}
