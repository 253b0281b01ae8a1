package ec2sim

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TestDenyCreateTagsRefusesTagOnCreate: as in IAM, tagging snapshots as
// they are created (TagSpecification) needs ec2:CreateTags too, DryRun
// calls included; a create without tags does not.
func TestDenyCreateTagsRefusesTagOnCreate(t *testing.T) {
	spec := []types.TagSpecification{{ResourceType: types.ResourceTypeSnapshot,
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("db")}}}}
	calls := map[string]func(c *ec2.Client, dry bool, tags []types.TagSpecification) error{
		"CreateSnapshot": func(c *ec2.Client, dry bool, tags []types.TagSpecification) error {
			_, err := c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(volWeb),
				DryRun: aws.Bool(dry), TagSpecifications: tags})
			return err
		},
		"CreateSnapshots": func(c *ec2.Client, dry bool, tags []types.TagSpecification) error {
			_, err := c.CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{DryRun: aws.Bool(dry),
				InstanceSpecification: &types.InstanceSpecification{InstanceId: aws.String(instWeb)},
				TagSpecifications:     tags})
			return err
		},
	}
	tests := []struct {
		name       string
		denyTags   bool
		tagged     bool
		dry        bool
		wantCode   string
		wantCreate bool
	}{
		{"DeniedTaggedDryRun", true, true, true, "UnauthorizedOperation", false},
		{"DeniedTagged", true, true, false, "UnauthorizedOperation", false},
		{"DeniedUntaggedDryRun", true, false, true, "DryRunOperation", false},
		{"DeniedUntagged", true, false, false, "", true},
		{"AllowedTaggedDryRun", false, true, true, "DryRunOperation", false},
		{"AllowedTagged", false, true, false, "", true},
	}
	for action, call := range calls {
		for _, tt := range tests {
			t.Run(action+"/"+tt.name, func(t *testing.T) {
				s, c := newServer(t, testFixture(), Options{})
				if tt.denyTags {
					s.Deny("CreateTags")
				}
				before := len(s.Snapshots())
				var tags []types.TagSpecification
				if tt.tagged {
					tags = spec
				}
				err := call(c, tt.dry, tags)
				if got := apiCode(t, err); got != tt.wantCode {
					t.Fatalf("%s(DryRun=%v, tagged=%v) with CreateTags denied=%v: code = %q, want %q",
						action, tt.dry, tt.tagged, tt.denyTags, got, tt.wantCode)
				}
				if tt.wantCode == "UnauthorizedOperation" && httpStatusOf(err) != 403 {
					t.Errorf("%s refused for tags: HTTP status = %d, want 403", action, httpStatusOf(err))
				}
				if got := len(s.Snapshots()) > before; got != tt.wantCreate {
					t.Errorf("%s created snapshots = %v, want %v", action, got, tt.wantCreate)
				}
			})
		}
	}
}
