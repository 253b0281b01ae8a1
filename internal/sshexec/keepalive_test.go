package sshexec

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh/knownhosts"
)

// stallProxy forwards TCP between a client and target until stall is
// called; from then on it holds every byte, like a peer that hangs.
type stallProxy struct {
	ln      net.Listener
	target  string
	stalled chan struct{}
	once    sync.Once
	quit    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	p := &stallProxy{ln: ln, target: target,
		stalled: make(chan struct{}), quit: make(chan struct{})}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *stallProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *stallProxy) stall() { p.once.Do(func() { close(p.stalled) }) }

func (p *stallProxy) close() {
	close(p.quit)
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *stallProxy) serve() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(out, in)
		go p.pipe(in, out)
	}
}

// pipe copies src to dst until an error, or blocks once stalled.
func (p *stallProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-p.stalled:
			<-p.quit
			return
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				dst.Close()
			}
			return
		}
	}
}

func TestKeepaliveClosesStalledConnection(t *testing.T) {
	f := newFixture(t)
	proxy := newStallProxy(t, f.srv.ln.Addr().String())
	tg := f.srv.target()
	tg.Port = proxy.port()
	f.cfg.KnownHostsFiles = []string{writeKnownHosts(t,
		knownhosts.Line([]string{proxy.ln.Addr().String()}, f.hostED.PublicKey()))}
	f.cfg.KeepaliveInterval = 50 * time.Millisecond
	f.cfg.KeepaliveCountMax = 3

	c := mustDial(t, tg, f.cfg)
	if err := c.Exec(context.Background(), "exit 0", nil, nil, nil); err != nil {
		t.Fatalf("Exec before stall = %v, want nil", err)
	}
	proxy.stall()

	wait(t, c.Done(), "Done after stall")
	err := c.Err()
	if !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("Err() after stall = %v, want ErrConnectionLost", err)
	}
	if !strings.Contains(err.Error(), "no keepalive reply for 150ms") {
		t.Errorf("Err() after stall = %q, want it to say no keepalive reply for 150ms", err)
	}
	if err := c.Exec(context.Background(), "echo x", nil, nil, nil); !errors.Is(err, ErrConnectionLost) {
		t.Errorf("Exec after keepalive timeout = %v, want ErrConnectionLost", err)
	}
}

// The test server answers keepalives with REQUEST_FAILURE, as OpenSSH
// does; that is a reply and must keep the connection up.
func TestKeepaliveFailureReplyCountsAsAlive(t *testing.T) {
	f := newFixture(t)
	f.cfg.KeepaliveInterval = 20 * time.Millisecond
	f.cfg.KeepaliveCountMax = 2
	c := mustDial(t, f.srv.target(), f.cfg)

	for range 2 * f.cfg.KeepaliveCountMax * 3 {
		wait(t, f.srv.keepalives, "keepalive")
	}
	select {
	case <-c.Done():
		t.Fatalf("Done() closed after answered keepalives, Err() = %v, want open", c.Err())
	default:
	}
	if err := c.Exec(context.Background(), "exit 0", nil, nil, nil); err != nil {
		t.Errorf("Exec after answered keepalives = %v, want nil", err)
	}
}
