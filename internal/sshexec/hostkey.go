package sshexec

// This file decides which host keys are trusted: strict known_hosts
// checks, the host key algorithms offered to the server, and recording of
// new keys when the operator allows it.

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// recordMu serialises appends to known_hosts files within the process,
// since hosts are dialled in parallel.
var recordMu sync.Mutex

// hostKeys checks the host keys of one endpoint. It is used by one
// handshake only.
type hostKeys struct {
	ep       endpoint
	host     string   // known_hosts form, e.g. "[10.0.0.1]:2222"
	files    []string // configured; new keys go to files[0]
	existing []string // the configured files that exist
	accept   bool
	check    ssh.HostKeyCallback
	hasCA    bool // an @cert-authority line matches the host
	log      *slog.Logger

	verified ssh.PublicKey // the key that passed
	err      error         // why the key was refused
}

// newHostKeys loads the known_hosts files for ep.
func newHostKeys(ep endpoint, cfg Config) (*hostKeys, error) {
	h := &hostKeys{
		ep:     ep,
		host:   knownhosts.Normalize(ep.hostport),
		files:  cfg.KnownHostsFiles,
		accept: cfg.AcceptNewHostKeys,
		log:    cfg.Logger,
	}
	if len(h.files) == 0 {
		return nil, fmt.Errorf("sshexec: check host key of %s: %w: no file configured; pass --known-hosts", ep.label(), ErrNoKnownHosts)
	}
	for _, f := range h.files {
		_, err := os.Stat(f)
		switch {
		case err == nil:
			h.existing = append(h.existing, f)
		case errors.Is(err, os.ErrNotExist):
			h.log.Debug("known_hosts file missing", "file", f)
		default:
			return nil, fmt.Errorf("sshexec: read known_hosts %s: %w", f, err)
		}
	}
	if len(h.existing) == 0 && !h.accept {
		return nil, fmt.Errorf("sshexec: check host key of %s: %w: none of %s exists; create %s with ssh-keyscan after verifying the fingerprint, or run with --accept-new-host-keys", ep.label(), ErrNoKnownHosts, strings.Join(h.files, ", "), h.files[0])
	}
	cb, err := knownhosts.New(h.existing...)
	if err != nil {
		return nil, fmt.Errorf("sshexec: read known_hosts: %w", err)
	}
	h.check = cb
	return h, nil
}

// probeKey returns a key that no known_hosts file holds, so a check with
// it lists every key recorded for a host in KeyError.Want.
var probeKey = sync.OnceValues(func() (ssh.PublicKey, error) {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	return ssh.NewPublicKey(pub)
})

// probeAddr stands in for the remote address during the probe; the
// lookup uses the host name, but the callback still parses this.
var probeAddr = &net.TCPAddr{IP: net.IPv4zero, Port: 22}

// certAlgos are the host certificate algorithms offered when an
// @cert-authority line matches the host.
var certAlgos = []string{
	ssh.CertAlgoED25519v01,
	ssh.CertAlgoECDSA256v01,
	ssh.CertAlgoECDSA384v01,
	ssh.CertAlgoECDSA521v01,
	ssh.CertAlgoRSASHA512v01,
	ssh.CertAlgoRSASHA256v01,
	ssh.CertAlgoRSAv01,
}

// algoOrder is the preference among plain key algorithms; types not
// listed keep their known_hosts order after these.
var algoOrder = []string{
	ssh.KeyAlgoED25519,
	ssh.KeyAlgoECDSA256,
	ssh.KeyAlgoECDSA384,
	ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoRSASHA512,
	ssh.KeyAlgoRSASHA256,
	ssh.KeyAlgoRSA,
}

// algorithms returns the host key algorithms to offer: exactly the types
// known_hosts holds for the host, or nil (the library default) when the
// host is unknown. Offering only known types avoids negotiating a key the
// files do not hold, e.g. ecdsa when only ed25519 is recorded.
func (h *hostKeys) algorithms() []string {
	probe, err := probeKey()
	if err != nil {
		return nil
	}
	var ke *knownhosts.KeyError
	err = h.check(h.ep.hostport, probeAddr, probe)
	if !errors.As(err, &ke) || len(ke.Want) == 0 {
		return nil
	}

	seen := map[string]bool{}
	var extra []string
	lines := map[string][]string{}
	for _, w := range ke.Want {
		if isCALine(lines, w.Filename, w.Line) {
			h.hasCA = true
			continue
		}
		types := []string{w.Key.Type()}
		if w.Key.Type() == ssh.KeyAlgoRSA {
			types = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		}
		for _, t := range types {
			if !seen[t] && !contains(algoOrder, t) {
				extra = append(extra, t)
			}
			seen[t] = true
		}
	}

	var algos []string
	if h.hasCA {
		algos = append(algos, certAlgos...)
	}
	for _, a := range algoOrder {
		if seen[a] {
			algos = append(algos, a)
		}
	}
	return append(algos, extra...)
}

// isCALine reports whether line n (1-based) of file is an
// @cert-authority line. cache holds the files already read.
func isCALine(cache map[string][]string, file string, n int) bool {
	ls, ok := cache[file]
	if !ok {
		data, err := os.ReadFile(file)
		if err == nil {
			sc := bufio.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
				ls = append(ls, sc.Text())
			}
		}
		cache[file] = ls
	}
	if n < 1 || n > len(ls) {
		return false
	}
	return strings.HasPrefix(strings.TrimSpace(ls[n-1]), "@cert-authority")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// callback is the ssh.HostKeyCallback for the handshake.
func (h *hostKeys) callback(hostname string, remote net.Addr, key ssh.PublicKey) error {
	// A certificate from a host with no known CA is judged by its plain
	// key, so it can be recognised or recorded like any other key.
	checked := key
	if cert, ok := key.(*ssh.Certificate); ok && !h.hasCA {
		checked = cert.Key
	}

	err := h.check(hostname, remote, checked)
	if err == nil {
		h.verified = key
		return nil
	}
	herr := h.classify(err, checked)
	if herr == nil {
		h.err = fmt.Errorf("sshexec: check host key of %s: %w", h.ep.label(), err)
		return h.err
	}

	if herr.Kind == ErrHostKeyUnknown && h.accept {
		if err := h.record(checked); err != nil {
			h.err = err
			return err
		}
		h.verified = key
		return nil
	}
	h.err = herr
	return herr
}

// classify turns a knownhosts error into a *HostKeyError, or nil when err
// is of another kind.
func (h *hostKeys) classify(err error, key ssh.PublicKey) *HostKeyError {
	he := &HostKeyError{
		Name:            h.ep.name,
		Host:            h.host,
		Key:             key,
		KnownHostsFiles: h.files,
	}
	var re *knownhosts.RevokedError
	var ke *knownhosts.KeyError
	switch {
	case errors.As(err, &re):
		he.Kind = ErrHostKeyRevoked
		he.Line = re.Revoked.Filename + ":" + strconv.Itoa(re.Revoked.Line)
	case errors.As(err, &ke) && len(ke.Want) == 0:
		he.Kind = ErrHostKeyUnknown
	case errors.As(err, &ke):
		he.Kind = ErrHostKeyChanged
		w := ke.Want[0]
		he.Line = w.Filename + ":" + strconv.Itoa(w.Line)
	default:
		return nil
	}
	return he
}

// record appends key for the host to the first known_hosts file,
// creating the file 0600 and its directory 0700.
func (h *hostKeys) record(key ssh.PublicKey) error {
	file := h.files[0]
	fail := func(err error) error {
		return fmt.Errorf("sshexec: record host key of %s in %s: %w", h.ep.label(), file, err)
	}
	recordMu.Lock()
	defer recordMu.Unlock()

	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fail(err)
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fail(err)
	}
	defer f.Close()

	// Start on a fresh line if the file does not end with one.
	line := knownhosts.Line([]string{h.ep.hostport}, key) + "\n"
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			line = "\n" + line
		}
	}
	if _, err := f.WriteString(line); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	h.log.Info("recorded new host key", "host", h.ep.label(), "file", file,
		"key", key.Type(), "fingerprint", ssh.FingerprintSHA256(key))
	return nil
}
