package ec2sim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadFixture(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, json, wantErr string
	}{
		{"Good", `{"region":"eu-west-1","credentials":[{"access_key_id":"AK","secret_access_key":"S"}],
			"instances":[{"id":"i-0123abcd","root_device_name":"/dev/xvda",
			"block_device_mappings":[{"device_name":"/dev/xvda","volume_id":"vol-0123abcd"}]}],
			"volumes":[{"id":"vol-0123abcd","size_gib":10}]}`, ""},
		{"UnknownField", `{"regoin":"eu-west-1"}`, "unknown field"},
		{"NotJSON", `{`, "decode fixture"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".json")
			if err := os.WriteFile(path, []byte(tt.json), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := LoadFixture(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("LoadFixture(%s) = %v, want error containing %q", tt.name, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadFixture(%s) = %v", tt.name, err)
			}
			s, err := New(f, Options{})
			if err != nil {
				t.Fatalf("New(%s) = %v", tt.name, err)
			}
			in := s.instances[0]
			if in.State != "running" || in.AvailabilityZone != "eu-west-1a" ||
				in.BlockDeviceMappings[0].Status != "attached" || s.volumes[0].VolumeType != "gp3" ||
				s.fx.AccountID != "123456789012" {
				t.Errorf("New(%s) defaults = %+v %+v, want running, eu-west-1a, attached, gp3", tt.name, in, s.volumes[0])
			}
		})
	}
	if _, err := LoadFixture(filepath.Join(dir, "missing.json")); err == nil {
		t.Errorf("LoadFixture(missing) = nil, want error")
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(f *Fixture)
		opts    Options
		wantErr string
	}{
		{"NoCredentials", func(f *Fixture) { f.Credentials = nil }, Options{}, "no credentials"},
		{"BadInstanceID", func(f *Fixture) { f.Instances[0].ID = "i-nothex00" }, Options{}, "malformed instance ID"},
		{"DuplicateVolume", func(f *Fixture) { f.Volumes[1].ID = volRoot }, Options{}, "duplicate volume"},
		{"UnknownVolume", func(f *Fixture) { f.Instances[1].BlockDeviceMappings[0].VolumeID = "vol-99999999" }, Options{}, "unknown volume"},
		{"DoubleAttach", func(f *Fixture) { f.Instances[1].BlockDeviceMappings[0].VolumeID = volRoot }, Options{}, "attached to both"},
		{"BadState", func(f *Fixture) { f.Instances[0].State = "sleeping" }, Options{}, "unknown state"},
		{"BackingNoDir", func(f *Fixture) { f.Volumes[0].BackingFile = "/nonexistent.img" }, Options{}, "no snapshot directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := testFixture()
			tt.edit(f)
			_, err := New(f, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "ec2sim: ") {
				t.Errorf("New(%s) = %v, want ec2sim: error containing %q", tt.name, err, tt.wantErr)
			}
		})
	}
}

func TestNewCopiesFixture(t *testing.T) {
	f := testFixture()
	s, _ := newServer(t, f, Options{})
	f.Volumes[1].Tags["Backup"] = "changed"
	s.mu.Lock()
	defer s.mu.Unlock()
	if got := s.volume(volData).Tags["Backup"]; got != "yes" {
		t.Errorf("volume tag after editing the caller's fixture = %q, want yes", got)
	}
}
