package sshexec

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func authorized(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

func TestHostKeyAlgorithms(t *testing.T) {
	ed := newEd25519(t).PublicKey()
	ec := newECDSA(t).PublicKey()
	rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("generate rsa key: %v", err)
	}
	rs, err := ssh.NewPublicKey(&rsaPriv.PublicKey)
	if err != nil {
		t.Fatalf("rsa public key: %v", err)
	}
	ca := newEd25519(t).PublicKey()

	tests := []struct {
		name     string
		hostport string
		lines    []string
		want     []string
	}{
		{"Ed25519Only", "10.0.0.1:22",
			[]string{knownhosts.Line([]string{"10.0.0.1"}, ed)},
			[]string{ssh.KeyAlgoED25519}},
		{"RSA", "10.0.0.1:22",
			[]string{knownhosts.Line([]string{"10.0.0.1"}, rs)},
			[]string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}},
		{"ECDSAAndEd25519", "db1:22",
			[]string{
				knownhosts.Line([]string{"db1"}, ec),
				knownhosts.Line([]string{"db1"}, ed),
			},
			[]string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256}},
		{"UnknownHost", "db2:22",
			[]string{knownhosts.Line([]string{"db1"}, ed)},
			nil},
		{"PortMatches", "10.0.0.1:2222",
			[]string{knownhosts.Line([]string{"10.0.0.1:2222"}, ec)},
			[]string{ssh.KeyAlgoECDSA256}},
		{"PortDiffers", "10.0.0.1:22",
			[]string{knownhosts.Line([]string{"10.0.0.1:2222"}, ec)},
			nil},
		{"Hashed", "db1:22",
			[]string{knownhosts.HashHostname("db1") + " " + authorized(ed)},
			[]string{ssh.KeyAlgoED25519}},
		{"CertAuthority", "db.example.com:22",
			[]string{"@cert-authority *.example.com " + authorized(ca)},
			certAlgos},
		{"CertAuthorityAndPlain", "db.example.com:22",
			[]string{
				"@cert-authority *.example.com " + authorized(ca),
				knownhosts.Line([]string{"db.example.com"}, ed),
			},
			append(slices.Clone(certAlgos), ssh.KeyAlgoED25519)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kh := writeKnownHosts(t, tt.lines...)
			h, err := newHostKeys(endpoint{hostport: tt.hostport},
				Config{KnownHostsFiles: []string{kh}, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatalf("newHostKeys: %v", err)
			}
			if got := h.algorithms(); !slices.Equal(got, tt.want) {
				t.Errorf("algorithms(%s) = %q, want %q", tt.hostport, got, tt.want)
			}
		})
	}
}

func TestHostKeyErrorMessage(t *testing.T) {
	key := newEd25519(t).PublicKey()
	fp := ssh.FingerprintSHA256(key)
	tests := []struct {
		kind error
		line string
		want []string
	}{
		{ErrHostKeyUnknown, "", []string{"db1 ([10.0.0.1]:2222)", fp,
			"verify the fingerprint out of band, then add it with ssh-keyscan or run with --accept-new-host-keys"}},
		{ErrHostKeyChanged, "/k:3", []string{fp, "possible man-in-the-middle",
			"remove the old line (/k:3) with ssh-keygen -f '/k' -R"}},
		{ErrHostKeyRevoked, "/k:1", []string{fp, "revoked (/k:1)"}},
	}
	for _, tt := range tests {
		e := &HostKeyError{Name: "db1", Host: "[10.0.0.1]:2222", Kind: tt.kind,
			Key: key, KnownHostsFiles: []string{"/k"}, Line: tt.line}
		if !errors.Is(e, tt.kind) {
			t.Errorf("errors.Is(HostKeyError{%v}, %v) = false, want true", tt.kind, tt.kind)
		}
		msg := e.Error()
		if !strings.HasPrefix(msg, "sshexec: ") {
			t.Errorf("HostKeyError{%v}.Error() = %q, want prefix sshexec:", tt.kind, msg)
		}
		for _, w := range tt.want {
			if !strings.Contains(msg, w) {
				t.Errorf("HostKeyError{%v}.Error() = %q, want it to contain %q", tt.kind, msg, w)
			}
		}
	}
}

// hostCert returns a signer presenting a host certificate for host's key,
// signed by ca, valid for principal.
func hostCert(t *testing.T, host, ca ssh.Signer, principal string) ssh.Signer {
	t.Helper()
	cert := &ssh.Certificate{
		Key:             host.PublicKey(),
		CertType:        ssh.HostCert,
		KeyId:           "test host",
		ValidPrincipals: []string{principal},
		ValidBefore:     ssh.CertTimeInfinity,
	}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatalf("sign host cert: %v", err)
	}
	s, err := ssh.NewCertSigner(cert, host)
	if err != nil {
		t.Fatalf("cert signer: %v", err)
	}
	return s
}

func TestDialHostCertificate(t *testing.T) {
	f := newFixture(t)
	ca, host := newEd25519(t), newEd25519(t)
	srv := newTestServer(t, []ssh.Signer{hostCert(t, host, ca, "127.0.0.1"), host},
		f.clientKey.PublicKey())

	tests := []struct {
		name     string
		line     string
		wantCert bool
	}{
		{"KnownCA", "@cert-authority " + srv.host() + " " + authorized(ca.PublicKey()), true},
		{"PlainKeyOnly", knownhosts.Line([]string{srv.host()}, host.PublicKey()), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := f.cfg
			cfg.KnownHostsFiles = []string{writeKnownHosts(t, tt.line)}
			c, err := Dial(context.Background(), srv.target(), cfg)
			if err != nil {
				t.Fatalf("Dial(%s) = %v, want nil", tt.name, err)
			}
			defer c.Close()
			_, isCert := c.HostKey().(*ssh.Certificate)
			if isCert != tt.wantCert {
				t.Errorf("Dial(%s) host key is certificate = %v, want %v", tt.name, isCert, tt.wantCert)
			}
		})
	}
}

func TestDialUnknownHostRefused(t *testing.T) {
	f := newFixture(t)
	other := newEd25519(t)
	kh := writeKnownHosts(t,
		knownhosts.Line([]string{"example.com"}, other.PublicKey()))
	before := readFile(t, kh)
	f.cfg.KnownHostsFiles = []string{kh}

	_, err := Dial(context.Background(), f.srv.target(), f.cfg)
	if !errors.Is(err, ErrHostKeyUnknown) {
		t.Fatalf("Dial(unknown host) = %v, want ErrHostKeyUnknown", err)
	}
	var he *HostKeyError
	if !errors.As(err, &he) {
		t.Fatalf("Dial(unknown host) = %T, want *HostKeyError", err)
	}
	if got, want := he.Host, f.srv.host(); got != want {
		t.Errorf("HostKeyError.Host = %q, want %q", got, want)
	}
	if fp := ssh.FingerprintSHA256(he.Key); !strings.Contains(err.Error(), fp) {
		t.Errorf("Dial(unknown host) error %q does not contain fingerprint %s", err, fp)
	}
	if got := f.srv.executed(); len(got) != 0 {
		t.Errorf("server executed %q, want nothing", got)
	}
	if got := f.srv.recorded(); len(got) != 0 {
		t.Errorf("server received %q, want nothing", got)
	}
	if after := readFile(t, kh); after != before {
		t.Errorf("known_hosts = %q after refused dial, want unchanged %q", after, before)
	}
}

func TestDialAcceptNewHostKey(t *testing.T) {
	f := newFixture(t)
	kh := filepath.Join(t.TempDir(), "ssh", "known_hosts")
	f.cfg.KnownHostsFiles = []string{kh}
	f.cfg.AcceptNewHostKeys = true

	c := mustDial(t, f.srv.target(), f.cfg)
	line := knownhosts.Line([]string{f.srv.host()}, c.HostKey()) + "\n"
	if got := readFile(t, kh); got != line {
		t.Errorf("known_hosts after accept = %q, want %q", got, line)
	}
	for path, want := range map[string]os.FileMode{kh: 0o600, filepath.Dir(kh): 0o700} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatalf("stat %s: %v", path, err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("mode of %s = %o, want %o", path, got, want)
		}
	}

	f.cfg.AcceptNewHostKeys = false
	c2 := mustDial(t, f.srv.target(), f.cfg)
	if err := c2.Exec(context.Background(), "exit 0", nil, nil, nil); err != nil {
		t.Errorf("Exec after recorded key = %v, want nil", err)
	}
	if got := readFile(t, kh); got != line {
		t.Errorf("known_hosts after second dial = %q, want %q", got, line)
	}
}

func TestDialChangedHostKeyRefused(t *testing.T) {
	f := newFixture(t)
	old := newEd25519(t)
	kh := writeKnownHosts(t,
		knownhosts.Line([]string{f.srv.host()}, old.PublicKey()))
	before := readFile(t, kh)
	f.cfg.KnownHostsFiles = []string{kh}
	f.cfg.AcceptNewHostKeys = true

	_, err := Dial(context.Background(), f.srv.target(), f.cfg)
	if !errors.Is(err, ErrHostKeyChanged) {
		t.Fatalf("Dial(changed key) = %v, want ErrHostKeyChanged", err)
	}
	var he *HostKeyError
	if !errors.As(err, &he) {
		t.Fatalf("Dial(changed key) = %T, want *HostKeyError", err)
	}
	if got, want := he.Line, kh+":1"; got != want {
		t.Errorf("HostKeyError.Line = %q, want %q", got, want)
	}
	for _, want := range []string{"man-in-the-middle", "ssh-keygen -f '" + kh + "' -R", kh + ":1",
		ssh.FingerprintSHA256(f.hostED.PublicKey())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Dial(changed key) error %q does not contain %q", err, want)
		}
	}
	if after := readFile(t, kh); after != before {
		t.Errorf("known_hosts = %q after changed key, want unchanged %q", after, before)
	}
	if got := f.srv.executed(); len(got) != 0 {
		t.Errorf("server executed %q, want nothing", got)
	}
}

func TestDialRevokedHostKeyRefused(t *testing.T) {
	f := newFixture(t)
	host := newEd25519(t)
	srv := newTestServer(t, []ssh.Signer{host}, f.clientKey.PublicKey())
	kh := writeKnownHosts(t,
		"@revoked * "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(host.PublicKey()))),
		knownhosts.Line([]string{srv.host()}, host.PublicKey()))
	f.cfg.KnownHostsFiles = []string{kh}
	f.cfg.AcceptNewHostKeys = true

	_, err := Dial(context.Background(), srv.target(), f.cfg)
	if !errors.Is(err, ErrHostKeyRevoked) {
		t.Fatalf("Dial(revoked key) = %v, want ErrHostKeyRevoked", err)
	}
	if want := kh + ":1"; !strings.Contains(err.Error(), want) {
		t.Errorf("Dial(revoked key) error %q does not contain %q", err, want)
	}
}

func TestDialNoKnownHostsFile(t *testing.T) {
	f := newFixture(t)
	missing := filepath.Join(t.TempDir(), "known_hosts")
	f.cfg.KnownHostsFiles = []string{missing, missing + "2"}

	_, err := Dial(context.Background(), f.srv.target(), f.cfg)
	if !errors.Is(err, ErrNoKnownHosts) {
		t.Fatalf("Dial(no known_hosts) = %v, want ErrNoKnownHosts", err)
	}
	if !strings.Contains(err.Error(), "create "+missing) {
		t.Errorf("Dial(no known_hosts) error %q does not name %s to create", err, missing)
	}
	if got := f.srv.connections(); got != 0 {
		t.Errorf("server connections = %d, want 0 (fail before dialing)", got)
	}
}
