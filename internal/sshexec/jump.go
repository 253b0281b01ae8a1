package sshexec

// This file connects a chain: the first hop over TCP, each further hop
// and the target through a direct-tcpip channel of the previous one. One
// deadline covers the chain. Tunnelled connections have no deadlines, so
// the TCP connection under them carries it, and closing that connection
// when ctx ends aborts whatever handshake is running on top.

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// jumpSteps returns the endpoints to connect, hops first, target last.
func jumpSteps(target endpoint, hops []Target) ([]endpoint, error) {
	steps := make([]endpoint, 0, len(hops)+1)
	for i, h := range hops {
		if h.Name == "" {
			h.Name = h.Addr
		}
		ep, err := resolve(h, Config{})
		if err != nil {
			return nil, &jumpError{target: target.label(), hop: fmt.Sprintf("%d (%s)", i+1, h.Name), err: err}
		}
		steps = append(steps, ep)
	}
	return append(steps, target), nil
}

// jumpError reports a failure at a jump host. Its message names the hop
// and the target; errors.Is and errors.As see the cause.
type jumpError struct {
	target string
	hop    string
	err    error
}

func (e *jumpError) Error() string {
	return fmt.Sprintf("sshexec: jump host %s for %s: %s", e.hop, e.target,
		strings.TrimPrefix(e.err.Error(), "sshexec: "))
}

func (e *jumpError) Unwrap() error { return e.err }

// connectChain connects every step in order, each through the previous,
// and returns their clients in the same order. On failure it closes all
// it opened and returns the error Dial reports.
func connectChain(ctx context.Context, steps []endpoint, hks []*hostKeys, keys *keySet, cfg Config) ([]*ssh.Client, error) {
	tctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	deadline, _ := tctx.Deadline()
	target := steps[len(steps)-1]
	fail := func(i int, err error) error {
		// A tunnelled handshake sees only EOF when the deadline on the
		// TCP connection under it fires.
		if ctx.Err() == nil && (tctx.Err() != nil || !time.Now().Before(deadline)) {
			err = context.DeadlineExceeded
		}
		err = dialError(ctx, steps[i], hks[i], keys, cfg.ConnectTimeout, err)
		if i == len(steps)-1 {
			return err
		}
		return &jumpError{target: target.label(), hop: steps[i].label(), err: err}
	}

	d := net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: tcpKeepAlive}
	raw, err := d.DialContext(tctx, "tcp", steps[0].hostport)
	if err != nil {
		return nil, fail(0, err)
	}
	if err := raw.SetDeadline(deadline); err != nil {
		raw.Close()
		return nil, fail(0, err)
	}
	stop := context.AfterFunc(tctx, func() { raw.Close() })
	var clients []*ssh.Client
	closeAll := func() {
		stop()
		for i := len(clients) - 1; i >= 0; i-- {
			clients[i].Close()
		}
		raw.Close()
	}

	for i, st := range steps {
		conn := raw
		if i > 0 {
			conn, err = clients[i-1].DialContext(tctx, "tcp", st.hostport)
			if err != nil {
				closeAll()
				return nil, fail(i-1, fmt.Errorf("open a connection to %s: %w", st.hostport, err))
			}
		}
		c, err := clientHandshake(conn, st, hks[i], keys, cfg)
		if err != nil {
			conn.Close()
			closeAll()
			return nil, fail(i, err)
		}
		clients = append(clients, c)
	}

	if !stop() {
		// ctx ended as the last handshake finished and closed raw.
		closeAll()
		return nil, fail(len(steps)-1, tctx.Err())
	}
	if err := raw.SetDeadline(time.Time{}); err != nil {
		closeAll()
		return nil, fail(len(steps)-1, err)
	}
	return clients, nil
}

// clientHandshake runs the SSH handshake and authentication for ep over
// conn, checking the host key under ep's own host:port.
func clientHandshake(conn net.Conn, ep endpoint, hk *hostKeys, keys *keySet, cfg Config) (*ssh.Client, error) {
	algos := hk.algorithms()
	cfg.Logger.Debug("ssh dial", "host", ep.label(), "user", ep.user,
		"hostkeyalgos", strings.Join(algos, ","), "keys", len(keys.signers))
	cc := &ssh.ClientConfig{
		User: ep.user,
		Auth: []ssh.AuthMethod{ssh.PublicKeysCallback(
			func() ([]ssh.Signer, error) { return keys.signers, nil })},
		HostKeyCallback:   hk.callback,
		HostKeyAlgorithms: algos,
	}
	sconn, chans, reqs, err := ssh.NewClientConn(conn, ep.hostport, cc)
	if err != nil {
		return nil, err
	}
	return ssh.NewClient(sconn, chans, reqs), nil
}
