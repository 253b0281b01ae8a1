package sshexec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Client is one SSH connection to one host, kept for the host's whole
// pipeline. Its methods are safe for concurrent use; each Exec opens its
// own session on the shared connection.
type Client struct {
	ep      endpoint
	conn    *ssh.Client
	hops    []*ssh.Client // jump host connections, first hop first
	hostKey ssh.PublicKey
	log     *slog.Logger

	done      chan struct{} // closed when the connection is gone
	closing   chan struct{} // closed by Close
	closeOnce sync.Once
	wg        sync.WaitGroup // keepalive and watcher goroutines

	mu    sync.Mutex
	cause error // why the connection ended; set once
}

// Dial connects to t, through the jump hosts of cfg.ProxyJump if any,
// verifies each host key against cfg.KnownHostsFiles, and authenticates
// with public keys. The whole of TCP connect, handshakes and
// authentication, over every hop, is bounded by cfg.ConnectTimeout and
// by ctx.
//
// Errors name the target, and the jump host when one failed. A refused
// host key is a *HostKeyError (matching ErrHostKeyUnknown,
// ErrHostKeyChanged or ErrHostKeyRevoked), refused keys an *AuthError
// (matching ErrAuth), for the target and for hops alike. Missing keys
// (ErrNoKey) and missing known_hosts files (ErrNoKnownHosts) are reported
// before any connection is made. A timeout matches
// context.DeadlineExceeded; cancellation wraps ctx.Err(). Dial has no
// side effect on failure except that an unknown key accepted under
// AcceptNewHostKeys stays recorded; every connection it opened is closed.
func Dial(ctx context.Context, t Target, cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if onlyDevNull(cfg.KnownHostsFiles) {
		return nil, fmt.Errorf("sshexec: %s: known_hosts %s would let any host key in: "+
			"refusing (name a real known_hosts file)", t.Name, os.DevNull)
	}
	ep, err := resolve(t, cfg)
	if err != nil {
		return nil, err
	}
	steps, err := jumpSteps(ep, cfg.ProxyJump)
	if err != nil {
		return nil, err
	}

	// Everything that can fail locally fails before any packet is sent.
	keys, err := loadKeys(ctx, ep, cfg)
	if err != nil {
		return nil, err
	}
	defer keys.close()
	hks := make([]*hostKeys, len(steps))
	for i, st := range steps {
		if hks[i], err = newHostKeys(st, cfg); err != nil {
			return nil, err
		}
	}

	conns, err := connectChain(ctx, steps, hks, keys, cfg)
	if err != nil {
		return nil, err
	}
	last := len(conns) - 1
	c := &Client{
		ep:      ep,
		conn:    conns[last],
		hops:    conns[:last],
		hostKey: hks[last].verified,
		log:     cfg.Logger,
		done:    make(chan struct{}),
		closing: make(chan struct{}),
	}
	c.wg.Add(2)
	go c.watch()
	go c.keepalive(cfg.KeepaliveInterval, cfg.KeepaliveCountMax)
	cfg.Logger.Debug("ssh connected", "host", ep.label(), "user", ep.user,
		"hostkey", c.hostKey.Type(), "jumps", len(c.hops))
	return c, nil
}

// dialError turns a failed handshake into the error Dial returns.
func dialError(ctx context.Context, ep endpoint, hk *hostKeys, keys *keySet, timeout time.Duration, err error) error {
	if hk.err != nil {
		return hk.err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("sshexec: connect to %s: %w", ep.label(), ctx.Err())
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("sshexec: connect to %s: timed out after %s: %w", ep.label(), timeout, context.DeadlineExceeded)
	}
	// x/crypto reports refused keys only as text; the host key having
	// passed tells us the failure came after key exchange.
	if hk.verified != nil && strings.Contains(err.Error(), "unable to authenticate") {
		return &AuthError{User: ep.user, Host: ep.label(), Methods: keys.methods, Err: err}
	}
	return fmt.Errorf("sshexec: connect to %s: %w", ep.label(), err)
}

// User returns the remote user name the client logged in as.
func (c *Client) User() string { return c.ep.user }

// HostKey returns the host key the server proved it holds.
func (c *Client) HostKey() ssh.PublicKey { return c.hostKey }

// Done returns a channel closed when the connection is gone: closed by
// Close, by the peer, or after unanswered keepalives.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why Done was closed: an error matching ErrClosed after
// Close, or ErrConnectionLost otherwise. It returns nil while the
// connection is up.
func (c *Client) Err() error {
	select {
	case <-c.done:
	default:
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cause
}

// Close closes the connection and those to its jump hosts, ending any
// running Exec with an error, and waits for the client's goroutines to stop. It is safe to call more than
// once; only the first call can return an error.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.setCause(fmt.Errorf("sshexec: connection to %s: %w", c.ep.label(), ErrClosed))
		close(c.closing)
		err = c.conn.Close()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
		c.wg.Wait()
	})
	if err != nil {
		return fmt.Errorf("sshexec: close connection to %s: %w", c.ep.label(), err)
	}
	return nil
}

// setCause records why the connection ends, unless a reason is known.
func (c *Client) setCause(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cause == nil {
		c.cause = err
	}
}

// watch closes done when the connection ends, after closing the jump
// host connections under it.
func (c *Client) watch() {
	defer c.wg.Done()
	werr := c.conn.Wait()
	for i := len(c.hops) - 1; i >= 0; i-- {
		c.hops[i].Close()
	}
	if werr == nil {
		werr = errors.New("closed by the server")
	}
	c.setCause(fmt.Errorf("sshexec: connection to %s: %w: %w", c.ep.label(), ErrConnectionLost, werr))
	close(c.done)
}

// keepalive sends keepalive@openssh.com every interval, one request at a
// time, and closes the connection when countMax intervals pass without a
// reply. Any reply, including REQUEST_FAILURE, proves the peer alive.
func (c *Client) keepalive(interval time.Duration, countMax int) {
	defer c.wg.Done()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	replies := make(chan error, 1)
	inFlight, missed := false, 0

	for {
		select {
		case <-c.done:
			return
		case <-c.closing:
			return
		case err := <-replies:
			inFlight, missed = false, 0
			if err != nil {
				return // connection gone; watch reports it
			}
		case <-tick.C:
			if !inFlight {
				inFlight = true
				c.wg.Add(1)
				go c.ping(replies)
				continue
			}
			missed++
			if missed < countMax {
				continue
			}
			silent := interval * time.Duration(countMax)
			c.log.Warn("ssh keepalive timeout", "host", c.ep.label(), "silent", silent)
			c.setCause(fmt.Errorf("sshexec: connection to %s: %w: no keepalive reply for %s", c.ep.label(), ErrConnectionLost, silent))
			c.conn.Close()
			return
		}
	}
}

// ping sends one keepalive and reports the outcome on replies, which has
// room for it. SendRequest returns once the connection closes, so ping
// never outlives the connection.
func (c *Client) ping(replies chan<- error) {
	defer c.wg.Done()
	_, _, err := c.conn.SendRequest("keepalive@openssh.com", true, nil)
	replies <- err
}

// onlyDevNull reports whether every known_hosts file given is /dev/null,
// which with accept-new checks nothing at all (ssh_config users write
// UserKnownHostsFile /dev/null to switch host-key checking off).
func onlyDevNull(files []string) bool {
	for _, f := range files {
		if f != os.DevNull {
			return false
		}
	}
	return len(files) > 0
}
