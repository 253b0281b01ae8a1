package e2e

// This file holds the network-fault tools of the e2e tests: a TCP proxy
// that can cut, stall or slow the connections it forwards, at once or at a
// precise moment, and helpers that watch the agent on the host.

import (
	"bytes"
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
)

// direction is the way a chunk travels through the proxy.
type direction int

const (
	toServer direction = iota // client (orchestrate) to server (sshd)
	toClient                  // server to client
)

func (d direction) String() string {
	if d == toServer {
		return "client-to-server"
	}
	return "server-to-client"
}

// moment says when an armed fault fires relative to the chunk it matched.
type moment int

const (
	// afterChunk forwards the chunk, then fires: the chunk is delivered,
	// what follows is not (e.g. THAW delivered, its answer lost).
	afterChunk moment = iota
	// insteadOfChunk fires before the chunk is forwarded, so the fault
	// applies to it too (e.g. THAW never delivered).
	insteadOfChunk
)

// proxy forwards TCP from a loopback port to target. Faults apply to every
// forwarded connection: cut closes them, stall holds every byte (and every
// close) in both directions without closing anything, slow delays every
// chunk. Cleanup cuts everything and ends the stall, so no goroutine
// outlives the test.
type proxy struct {
	ln     net.Listener
	target string

	mu            sync.Mutex
	pairs         []*pair
	closeOnAccept bool          // cut every new connection at accept
	stalled       bool          // hold every chunk and close
	resume        chan struct{} // closed when the current stall ends
	delay         time.Duration // added before every chunk is forwarded
	arms          []*trigger
	clientClosed  time.Time // when a client first closed its side
	closed        bool
}

// pair is one forwarded connection: the client's side and the server's.
type pair struct {
	c, s net.Conn
	done chan struct{} // closed by cut
	once sync.Once
}

func (pr *pair) close() {
	pr.once.Do(func() {
		close(pr.done)
		pr.c.Close()
		pr.s.Close()
	})
}

// trigger is a fault armed to fire on a chunk, or one fired by hand.
type trigger struct {
	dir   direction
	when  moment
	cond  func() bool // nil: the next chunk in dir matches
	fault func()

	mu    sync.Mutex
	fired chan struct{}
	at    time.Time
	size  int // size of the chunk that fired it
}

func newTrigger(fault func()) *trigger {
	return &trigger{fault: fault, fired: make(chan struct{})}
}

// fire runs the fault once and records when.
func (tr *trigger) fire(size int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	select {
	case <-tr.fired:
		return
	default:
	}
	tr.at, tr.size = time.Now(), size
	tr.fault()
	close(tr.fired)
}

// firedAt returns when the trigger fired and whether it has.
func (tr *trigger) firedAt() (time.Time, bool) {
	select {
	case <-tr.fired:
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return tr.at, true
	default:
		return time.Time{}, false
	}
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, resume: make(chan struct{})}
	t.Cleanup(p.close)
	go p.serve()
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

// close stops accepting, cuts every connection and ends any stall.
func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.ln.Close()
	p.cut()
	p.unstall()
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.closeOnAccept || p.closed
		p.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		pr := &pair{c: c, s: s, done: make(chan struct{})}
		p.mu.Lock()
		p.pairs = append(p.pairs, pr)
		p.mu.Unlock()
		go p.pump(pr, toServer, c, s)
		go p.pump(pr, toClient, s, c)
	}
}

// pump copies src to dst one chunk at a time, through the faults. Reading
// goes on while forwarding is held, so a close by either side is seen at
// once (and timed) even while it is not passed on.
func (p *proxy) pump(pr *pair, d direction, src, dst net.Conn) {
	queue := make(chan []byte, 1024)
	go func() {
		defer close(queue)
		for {
			buf := make([]byte, 32*1024)
			n, err := src.Read(buf)
			if n > 0 {
				select {
				case queue <- buf[:n]:
				case <-pr.done:
					return
				}
			}
			if err != nil {
				if d == toServer {
					p.noteClientClosed()
				}
				return
			}
		}
	}()

	for chunk := range queue {
		if !p.forward(pr, d, chunk, dst) {
			pr.close()
			return
		}
	}
	// The source closed: pass that on too, unless forwarding is held.
	if p.gate(pr) {
		pr.close()
	}
}

// forward sends one chunk through any armed trigger, the stall and the
// delay; false means the connection is gone.
func (p *proxy) forward(pr *pair, d direction, chunk []byte, dst net.Conn) bool {
	tr := p.match(d)
	if tr != nil && tr.when == insteadOfChunk {
		tr.fire(len(chunk))
	}
	if !p.gate(pr) {
		return false
	}
	p.mu.Lock()
	delay := p.delay
	p.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-pr.done:
			return false
		}
	}
	if _, err := dst.Write(chunk); err != nil {
		return false
	}
	if tr != nil && tr.when == afterChunk {
		tr.fire(len(chunk))
	}
	return true
}

// match returns, and disarms, the first trigger armed for d whose
// condition holds now.
func (p *proxy) match(d direction) *trigger {
	p.mu.Lock()
	arms := append([]*trigger(nil), p.arms...)
	p.mu.Unlock()
	for _, tr := range arms {
		if tr.dir != d || (tr.cond != nil && !tr.cond()) {
			continue
		}
		p.mu.Lock()
		for i, a := range p.arms {
			if a == tr {
				p.arms = append(p.arms[:i:i], p.arms[i+1:]...)
				p.mu.Unlock()
				return tr
			}
		}
		p.mu.Unlock()
	}
	return nil
}

// gate waits while the proxy is stalled; false means the connection was
// cut meanwhile.
func (p *proxy) gate(pr *pair) bool {
	for {
		p.mu.Lock()
		stalled, resume := p.stalled, p.resume
		p.mu.Unlock()
		if !stalled {
			select {
			case <-pr.done:
				return false
			default:
				return true
			}
		}
		select {
		case <-resume:
		case <-pr.done:
			return false
		}
	}
}

// onChunk returns a trigger that, once armed on a proxy, runs fault on
// the first chunk travelling in d for which cond holds (any chunk when
// cond is nil), at moment when.
func onChunk(d direction, when moment, cond func() bool, fault func()) *trigger {
	tr := newTrigger(fault)
	tr.dir, tr.when, tr.cond = d, when, cond
	return tr
}

// arm puts tr, made by onChunk, in place on every forwarded connection.
func (p *proxy) arm(tr *trigger) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.arms = append(p.arms, tr)
}

// cut closes every forwarded connection, both sides, at once.
func (p *proxy) cut() {
	p.mu.Lock()
	pairs := p.pairs
	p.pairs = nil
	p.mu.Unlock()
	for _, pr := range pairs {
		pr.close()
	}
}

// cutOnAccept closes every connection accepted from now on, at once.
func (p *proxy) cutOnAccept() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closeOnAccept = true
}

// stall stops forwarding in both directions, closes included, without
// closing anything: to both peers the network has gone silent.
func (p *proxy) stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stalled {
		p.stalled = true
		p.resume = make(chan struct{})
	}
}

// unstall resumes forwarding after stall.
func (p *proxy) unstall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stalled {
		p.stalled = false
		close(p.resume)
	}
}

// slow delays every chunk forwarded from now on by d.
func (p *proxy) slow(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

func (p *proxy) noteClientClosed() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.clientClosed.IsZero() {
		p.clientClosed = time.Now()
	}
}

// clientClosedAt returns when a client first closed its connection to the
// proxy, whether or not the close was passed on.
func (p *proxy) clientClosedAt() (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.clientClosed, !p.clientClosed.IsZero()
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

// knownHostsWith writes a known_hosts that knows every world host and the
// proxy at addr, for a run with hosts on both.
func knownHostsWith(t *testing.T, addr string) string {
	t.Helper()
	px, err := os.ReadFile(knownHostsFor(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	all, err := os.ReadFile(world.sshd.KnownHostsPath)
	if err != nil {
		t.Fatal(err)
	}
	kh := filepath.Join(t.TempDir(), "known_hosts.all")
	if err := os.WriteFile(kh, append(append(all, '\n'), px...), 0o600); err != nil {
		t.Fatal(err)
	}
	return kh
}

// stateDir is where the agent keeps its state on the host; every test host
// shares this machine's kernel and so this directory.
const stateDir = "/run/orchestrate"

// agentProc is one live agent on the host, found by its state directory.
type agentProc struct {
	pid    int
	dir    string   // stateDir/agent.PID
	frozen []string // its frozen list, one mount per line
	hasLst bool     // whether the frozen list exists yet
}

// liveAgents returns the live agents whose command line names mount: the
// mounts are unique to this test process, so these are this test's agents.
func liveAgents(mount string) []agentProc {
	dirs, _ := filepath.Glob(filepath.Join(stateDir, "agent.*"))
	var out []agentProc
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "agent."))
		if err != nil || !agentCmdlineNames(pid, mount) {
			continue
		}
		a := agentProc{pid: pid, dir: d}
		if b, err := os.ReadFile(filepath.Join(d, "frozen")); err == nil {
			a.hasLst = true
			a.frozen = strings.Fields(string(b))
		}
		out = append(out, a)
	}
	return out
}

// agentCmdlineNames reports whether pid is an orchestrate agent given
// mount as an argument.
func agentCmdlineNames(pid int, mount string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	args := bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0})
	agent, named := false, false
	for _, a := range args {
		agent = agent || string(a) == "orchestrate-agent"
		named = named || string(a) == mount
	}
	return agent && named
}

// agentStartedNotFrozen reports whether an agent for mount is running and
// has created its empty frozen list: prepared, not frozen.
func agentStartedNotFrozen(mount string) bool {
	for _, a := range liveAgents(mount) {
		if a.hasLst && len(a.frozen) == 0 {
			return true
		}
	}
	return false
}

// mountFrozenByAgent reports whether some agent lists mount as frozen.
func mountFrozenByAgent(mount string) bool {
	files, _ := filepath.Glob(filepath.Join(stateDir, "agent.*", "frozen"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if l == mount {
				return true
			}
		}
	}
	return false
}

// waitAgentsGone waits up to d until no agent for any world filesystem is
// alive, and reports whether none is.
func waitAgentsGone(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		alive := false
		for _, h := range world.hosts {
			for _, fs := range h.fss {
				alive = alive || len(liveAgents(fs.Mount)) > 0
			}
		}
		if !alive {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
