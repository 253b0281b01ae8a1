package discover

import (
	"strings"
	"testing"
)

func TestVolumeFromSerial(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"vol0123456789abcdef0", "vol-0123456789abcdef0", true},
		{"vol0123456789abcdef0    ", "vol-0123456789abcdef0", true},
		{"vol-0123456789abcdef0", "vol-0123456789abcdef0", true},
		{"vol01234567", "vol-01234567", true},
		{"Amazon Elastic Block Store_vol0123456789abcdef0", "vol-0123456789abcdef0", true},
		{"vol0123456789abcdef", "", false}, // 16 hex
		{"vol0123456789ABCDEF0", "", false},
		{"AWS1B2C3D4E5F6A7B8C9", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := volumeFromSerial(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("volumeFromSerial(%q) = %q, %v, want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestDiskVolume(t *testing.T) {
	const v1, v2 = "vol-0123456789abcdef0", "vol-0fedcba9876543210"
	disk := func(kname string) *Device {
		return &Device{KName: kname, Name: kname, Path: "/dev/" + kname, Type: "disk"}
	}
	tests := []struct {
		name string
		dev  *Device
		maps []Mapping
		want string // volume, or "!" + a substring of the message
	}{
		{"Exact", disk("xvdf"), []Mapping{{"/dev/xvdf", v1, false}}, v1},
		{"XenToSd", disk("xvdf"), []Mapping{{"/dev/sdf", v1, false}}, v1},
		{"SdToXen", disk("sdf"), []Mapping{{"/dev/xvdf", v1, false}}, v1},
		{"NoDevPrefix", disk("xvdf"), []Mapping{{"sdf", v1, false}}, v1},
		{"LongLetters", disk("xvdba"), []Mapping{{"/dev/sdba", v1, false}}, v1},
		{"LoopExact", disk("loop3"), []Mapping{{"/dev/loop3", v1, false}}, v1},
		{"RootPartitionName", disk("xvda"), []Mapping{{"/dev/sda1", v1, true}}, v1},
		{"RootPartitionNameNotRoot", disk("xvda"), []Mapping{{"/dev/sda1", v1, false}}, "!matches no EBS volume"},
		{"XenPVWholeDisk", disk("xvda1"), []Mapping{{"/dev/sda1", v1, true}}, v1},
		{"OtherLetter", disk("xvdg"), []Mapping{{"/dev/sdf", v1, false}}, "!matches no EBS volume"},
		{"Ambiguous", disk("xvdf"), []Mapping{{"/dev/sdf", v1, false}, {"/dev/xvdf", v2, false}}, "!matches several block device mappings (" + v1 + ", " + v2 + ")"},
		{"SameVolumeTwice", disk("xvdf"), []Mapping{{"/dev/sdf", v1, false}, {"/dev/xvdf", v1, false}}, v1},
		{"MalformedVolume", disk("xvdf"), []Mapping{{"/dev/sdf", "vol-xyz", false}}, `!volume ID "vol-xyz" is malformed`},
		{"NVMeNeverByName", disk("nvme1n1"), []Mapping{{"/dev/nvme1n1", v1, false}}, "!no serial or model"},
		{"NVMeOther", &Device{KName: "nvme1n1", Model: "Samsung SSD 980", Serial: "S1"}, []Mapping{{"/dev/nvme1n1", v1, false}}, `!not EBS (model "Samsung SSD 980"`},
		{"NVMeSerial", &Device{KName: "nvme1n1", Model: modelEBS + "   ", Serial: "vol0123456789abcdef0"}, []Mapping{{"/dev/sdf", v1, false}}, v1},
		{"NVMeSerialNotMapped", &Device{KName: "nvme1n1", Model: modelEBS, Serial: "vol0123456789abcdef0"}, []Mapping{{"/dev/sdf", v2, false}}, "!is EBS volume " + v1 + ", which DescribeInstances does not list"},
		{"NVMeBadSerial", &Device{KName: "nvme1n1", Model: modelEBS, Serial: "abc"}, []Mapping{{"/dev/sdf", v1, false}}, `!serial "abc" is not a volume ID`},
		{"InstanceStore", &Device{KName: "nvme2n1", Model: modelInstanceStore, Serial: "AWS123"}, []Mapping{{"/dev/sdb", v1, false}}, "!is NVMe instance store"},
		{"NoMappings", disk("xvdf"), nil, "!matches no EBS volume"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, msg := diskVolume(tt.dev, tt.maps)
			if want, bad := strings.CutPrefix(tt.want, "!"); bad {
				if got != "" || !strings.Contains(msg, want) {
					t.Errorf("diskVolume(%s) = %q, %q, want no volume and a message containing %q", tt.dev.KName, got, msg, want)
				}
				return
			}
			if got != tt.want || msg != "" {
				t.Errorf("diskVolume(%s) = %q, %q, want %q", tt.dev.KName, got, msg, tt.want)
			}
		})
	}
}
