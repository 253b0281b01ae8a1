package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/orchestrate-dev/orchestrate/internal/ec2sim"
	"github.com/orchestrate-dev/orchestrate/test/rig"
)

// verify asks the emulator for the snapshots it holds, writes each one's
// bytes out and proves it is a consistent filesystem with the files that
// were written before the run.
func verify(url string, hosts []*demoHost, dir string) error {
	resp, err := http.Get(url + "/_ec2sim/snapshots")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var snaps []ec2sim.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&snaps); err != nil {
		return fmt.Errorf("read the emulator's snapshots: %w", err)
	}

	checked := 0
	for _, s := range snaps {
		for _, h := range hosts {
			if h.vol != s.VolumeID {
				continue
			}
			img := filepath.Join(dir, "snapshots", "export-"+s.ID+".img")
			body, _ := json.Marshal(ec2sim.ExportRequest{SnapshotID: s.ID, Path: img})
			r, err := http.Post(url+"/_ec2sim/export", "application/json", bytes.NewReader(body))
			if err != nil {
				return err
			}
			r.Body.Close()
			if r.StatusCode != http.StatusOK {
				return fmt.Errorf("export %s: HTTP %d", s.ID, r.StatusCode)
			}
			if err := rig.CheckImage(h.fs.Kind, img, dir, h.files); err != nil {
				return fmt.Errorf("snapshot %s of %s is NOT consistent: %w", s.ID, h.fs.Mount, err)
			}
			step("verified %s (%s, tagged consistency=%s): %s filesystem is clean and holds all %d files written before the run",
				s.ID, s.State, s.Tags["orchestrate:consistency"], h.fs.Kind, len(h.files))
			checked++
		}
	}
	if checked != len(hosts) {
		return fmt.Errorf("verified %d snapshots, want %d", checked, len(hosts))
	}
	return nil
}
