package e2e

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/orchestrate-dev/orchestrate/internal/ec2sim"
	"github.com/orchestrate-dev/orchestrate/internal/run"
)

// proxy forwards TCP from a loopback port to target until cut.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { io.Copy(s, c); s.Close() }()
		go func() { io.Copy(c, s); c.Close() }()
	}
}

// cut closes every forwarded connection, both sides, at once.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// countingListener accepts and counts connections, to prove none was made.
type countingListener struct {
	addr string
	mu   sync.Mutex
	n    int
}

func newCountingListener(t *testing.T) *countingListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	cl := &countingListener{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			cl.mu.Lock()
			cl.n++
			cl.mu.Unlock()
			c.Close()
		}
	}()
	return cl
}

func (c *countingListener) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// knownHostsFor writes a known_hosts naming the sshd's ed25519 key for addr.
func knownHostsFor(t *testing.T, addr string) string {
	t.Helper()
	key := world.sshd.HostKeys[ssh.KeyAlgoED25519]
	kh := filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, key)
	if err := os.WriteFile(kh, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return kh
}

func TestConnectionCutWhileFrozenThawsWithinTimeout(t *testing.T) {
	begin(t)
	srv, url := emulator(t)
	h := world.hosts[0]
	px := newProxy(t, net.JoinHostPort(h.addr, strconv.Itoa(world.sshd.Port)))
	kh := knownHostsFor(t, px.addr())
	const freezeTimeout = 6 * time.Second

	// While the CreateSnapshots call is held, cut the connection and time
	// how long the filesystem takes to accept writes again.
	var thawedAfter time.Duration
	var thawed bool
	srv.OnCreateSnapshots(func(ec2sim.CreateEvent) {
		if h.fss[0].WriteProbe(200 * time.Millisecond) {
			t.Errorf("filesystem was not frozen when CreateSnapshots arrived")
		}
		start := time.Now()
		px.cut()
		for time.Since(start) < freezeTimeout+3*time.Second {
			if h.fss[0].WriteProbe(250 * time.Millisecond) {
				thawed, thawedAfter = true, time.Since(start)
				return
			}
		}
	})
	hostsFile := writeHostsFile(t, hostLine(h, px.addr()))

	res := orchestrate(t, url, "--hosts", hostsFile, "--known-hosts", kh,
		"--freeze-timeout", freezeTimeout.String(), "--output", "json")
	if !thawed {
		t.Fatalf("filesystem still frozen %v after the cut", freezeTimeout+3*time.Second)
	}
	t.Logf("writable again %v after the connection was cut", thawedAfter)
	if thawedAfter > freezeTimeout {
		t.Errorf("thawed %v after the cut, want within the freeze timeout %v", thawedAfter, freezeTimeout)
	}
	if res.code != 3 {
		t.Errorf("exit code = %d, want 3 (thaw could not be confirmed)", res.code)
	}
	hr := parseReport(t, res.stdout).Hosts[0]
	if hr.Status != run.StatusThawUnconfirmed || hr.Consistency == "application" {
		t.Errorf("host status %q consistency %q, want thaw_unconfirmed and not application",
			hr.Status, hr.Consistency)
	}
	if !strings.Contains(res.stderr, "THAW NOT CONFIRMED") {
		t.Errorf("stderr does not say loudly that the thaw is unconfirmed:\n%s", res.stderr)
	}
	requireWritable(t, 5*time.Second)
}
