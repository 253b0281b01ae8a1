package sshexec

import (
	"context"
	"os"
	"strings"
	"testing"
)

func TestDialRefusesDevNullKnownHosts(t *testing.T) {
	_, err := Dial(context.Background(), Target{Name: "h", Addr: "127.0.0.1", Port: 1},
		Config{KnownHostsFiles: []string{os.DevNull}, AcceptNewHostKeys: true,
			IdentityFiles: []string{"unused"}})
	if err == nil || !strings.Contains(err.Error(), "/dev/null") {
		t.Fatalf("Dial with known_hosts /dev/null = %v, want a refusal naming it", err)
	}
}
