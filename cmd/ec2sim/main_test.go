package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:0", true},
		{"127.1.2.3:8080", true},
		{"[::1]:9000", true},
		{"localhost:80", true},
		{":8080", false},
		{"0.0.0.0:8080", false},
		{"10.0.0.1:80", false},
		{"example.com:80", false},
		{"127.0.0.1", false},
	}
	for _, tt := range tests {
		if got := isLoopback(tt.addr); got != tt.want {
			t.Errorf("isLoopback(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

func TestRunRejects(t *testing.T) {
	tests := []struct {
		name, want string
		args       []string
	}{
		{"NoState", "--state is required", nil},
		{"Remote", "refusing to listen", []string{"--state", "x.json", "--listen", "0.0.0.0:0"}},
		{"MissingFixture", "load fixture", []string{"--state", filepath.Join(t.TempDir(), "none.json")}},
		{"BadFlag", "flag provided but not defined", []string{"--nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr strings.Builder
			if got := run(context.Background(), tt.args, &stderr); got != 2 {
				t.Errorf("run(%v) = %d, want 2", tt.args, got)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("run(%v) stderr = %q, want it to contain %q", tt.args, stderr.String(), tt.want)
			}
		})
	}
}

func TestRunServesControlAPI(t *testing.T) {
	state := filepath.Join(t.TempDir(), "fixture.json")
	fixture := `{"credentials":[{"access_key_id":"AK","secret_access_key":"S"}],
		"snapshots":[{"id":"snap-0123abcd","volume_id":"vol-0123abcd"}]}`
	if err := os.WriteFile(state, []byte(fixture), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--state", state}, pw)
		pw.Close()
	}()

	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatalf("run printed nothing, exit %d", <-done)
	}
	url, ok := strings.CutPrefix(lines.Text(), "ec2sim: listening on ")
	if !ok || !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("first stderr line = %q, want ec2sim: listening on http://127.0.0.1:PORT", lines.Text())
	}
	go io.Copy(io.Discard, pr)

	resp, err := http.Get(url + "/_ec2sim/snapshots")
	if err != nil {
		t.Fatalf("GET /_ec2sim/snapshots = %v", err)
	}
	var snaps []map[string]any
	err = json.NewDecoder(resp.Body).Decode(&snaps)
	resp.Body.Close()
	if err != nil || len(snaps) != 1 || snaps[0]["id"] != "snap-0123abcd" {
		t.Errorf("GET /_ec2sim/snapshots = %v, %v, want the seeded snapshot", snaps, err)
	}

	cancel()
	if got := <-done; got != 0 {
		t.Errorf("run after cancel = %d, want 0", got)
	}
}
