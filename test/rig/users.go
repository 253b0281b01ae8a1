package rig

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"time"

	"golang.org/x/crypto/ssh"
)

// userMarker is the GECOS comment on every user a rig creates. A user that
// exists with it is a leftover of a crashed run and may be reused.
const userMarker = "orchestrate test rig"

// ErrForeignUser is returned by AddUser for a user that exists but was not
// made by a rig; the rig refuses to change it.
var ErrForeignUser = errors.New("rig: user exists and was not made by the rig")

// SudoMode says what a rig user may do with sudo.
type SudoMode int

const (
	// SudoNone gives the user no sudoers entry.
	SudoNone SudoMode = iota
	// SudoNoPassword lets the user run anything as anyone, with no password.
	SudoNoPassword
	// SudoPassword lets the user run anything but only with a password,
	// which the rig never sets, so `sudo -n` always fails.
	SudoPassword
)

// String names the mode.
func (m SudoMode) String() string {
	switch m {
	case SudoNone:
		return "none"
	case SudoNoPassword:
		return "nopasswd"
	case SudoPassword:
		return "password"
	}
	return fmt.Sprintf("SudoMode(%d)", int(m))
}

// User is an account the rig can log in as over SSH.
type User struct {
	Name string
	Home string
	// KeyPath is the unencrypted ed25519 private key, in OpenSSH PEM
	// format, mode 0600 in the rig's Dir.
	KeyPath string
	// PublicKey is the key sshd accepts for this user.
	PublicKey ssh.PublicKey
	// Signer signs with the private key, for in-process SSH clients.
	Signer ssh.Signer
}

// validName accepts user names that are safe in a sudoers line, a file
// name and a command argument.
var validName = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,30}$`)

// AddUser makes a user that can log in with a fresh ed25519 key: useradd
// -m with /bin/sh as its shell, the password field set to "*" so that sshd
// without PAM accepts key logins, a sudoers file
// /etc/sudoers.d/orch-rig-NAME for the sudo mode, checked with visudo, and
// the public key in Dir/authorized_keys/NAME for sshd. Close deletes the
// user with its home and the sudoers file.
//
// A user left by a crashed rig (it carries the rig's marker comment) is
// reused and deleted on Close; any other existing user fails with
// ErrForeignUser and is not changed. "root" is never created or deleted:
// AddUser("root", mode) only makes and authorizes a key, whatever mode.
// Adding the same name twice to one rig is an error.
func (r *Rig) AddUser(name string, sudo SudoMode) (*User, error) {
	if _, err := r.begin(); err != nil {
		return nil, err
	}
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("rig: add user %q: invalid name", name)
	}
	if sudo < SudoNone || sudo > SudoPassword {
		return nil, fmt.Errorf("rig: add user %s: unknown %v", name, sudo)
	}
	r.mu.Lock()
	_, dup := r.users[name]
	if !dup {
		r.users[name] = nil
	}
	r.mu.Unlock()
	if dup {
		return nil, fmt.Errorf("rig: add user %s: added already", name)
	}

	u, err := r.addUser(name, sudo)
	r.mu.Lock()
	if err != nil {
		delete(r.users, name)
	} else {
		r.users[name] = u
	}
	r.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("rig: add user %s: %w", name, err)
	}
	return u, nil
}

// addUser does the work of AddUser.
func (r *Rig) addUser(name string, sudo SudoMode) (*User, error) {
	home := "/root"
	if name != "root" {
		h, err := r.ensureAccount(name)
		if err != nil {
			return nil, err
		}
		home = h
		if err := r.writeSudoers(name, sudo); err != nil {
			return nil, err
		}
	}

	u, err := r.makeKey(name)
	if err != nil {
		return nil, err
	}
	u.Home = home
	r.logf("user %s ready (sudo %v, key %s)", name, sudo, u.KeyPath)
	return u, nil
}

// ensureAccount creates the account, or adopts a leftover one, registers
// its deletion and returns its home directory.
func (r *Rig) ensureAccount(name string) (string, error) {
	old, err := user.Lookup(name)
	switch {
	case err == nil && old.Name != userMarker:
		return "", fmt.Errorf("check existing user: %w", ErrForeignUser)
	case err == nil:
		r.logf("reusing leftover user %s", name)
	default:
		var unknown user.UnknownUserError
		if !errors.As(err, &unknown) {
			return "", fmt.Errorf("look up user: %w", err)
		}
		_, err := run("useradd", "-m", "-s", "/bin/sh", "-c", userMarker,
			name)
		if err != nil {
			return "", fmt.Errorf("create user: %w", err)
		}
	}
	r.push("delete user "+name, func() error { return deleteUser(name) })

	// A locked password ("!") makes sshd refuse key logins without PAM.
	if _, err := run("usermod", "-s", "/bin/sh", "-p", "*", name); err != nil {
		return "", fmt.Errorf("unlock user: %w", err)
	}
	u, err := user.Lookup(name)
	if err != nil {
		return "", fmt.Errorf("look up created user: %w", err)
	}
	return u.HomeDir, nil
}

// deleteUser removes the account and its home. userdel refuses while the
// user still runs processes (exit 8), which a session that is just ending
// can cause, so it is retried for a few seconds.
func deleteUser(name string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := run("userdel", "-r", name)
		if err == nil || exitCode(err) == 6 { // 6: no such user
			return nil
		}
		if exitCode(err) != 8 || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// writeSudoers installs the sudoers file for the mode, or removes a stale
// one for SudoNone, and registers its removal.
func (r *Rig) writeSudoers(name string, sudo SudoMode) error {
	path := filepath.Join("/etc/sudoers.d", "orch-rig-"+name)
	r.push("remove "+path, func() error {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	})
	var rule string
	switch sudo {
	case SudoNone:
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove stale sudoers file: %w", err)
		}
		return nil
	case SudoNoPassword:
		rule = name + " ALL=(ALL:ALL) NOPASSWD: ALL\n"
	case SudoPassword:
		rule = name + " ALL=(ALL:ALL) ALL\n"
	}

	// sudo skips files whose name holds a dot, so the draft is inert until
	// it is checked and renamed into place.
	draft := filepath.Join("/etc/sudoers.d", ".orch-rig-"+name+".new")
	if err := os.WriteFile(draft, []byte(rule), 0o440); err != nil {
		return fmt.Errorf("write sudoers file: %w", err)
	}
	defer os.Remove(draft)
	if err := os.Chmod(draft, 0o440); err != nil {
		return fmt.Errorf("write sudoers file: %w", err)
	}
	if _, err := lookTool("visudo"); err == nil {
		if _, err := run("visudo", "-cf", draft); err != nil {
			return fmt.Errorf("check sudoers file: %w", err)
		}
	}
	if err := os.Rename(draft, path); err != nil {
		return fmt.Errorf("install sudoers file: %w", err)
	}
	return nil
}

// makeKey generates the user's key pair, writes the private key to
// Dir/keys/NAME and the public key to Dir/authorized_keys/NAME.
func (r *Rig) makeKey(name string) (*User, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, name+"@orch-rig")
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("make signer: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}

	keyPath := filepath.Join(r.Dir, "keys", name)
	if err := writeFile(keyPath, pem.EncodeToMemory(block), 0o700,
		0o600); err != nil {
		return nil, fmt.Errorf("write private key: %w", err)
	}
	authPath := filepath.Join(r.Dir, "authorized_keys", name)
	if err := writeFile(authPath, ssh.MarshalAuthorizedKey(sshPub), 0o755,
		0o644); err != nil {
		return nil, fmt.Errorf("write authorized key: %w", err)
	}
	return &User{Name: name, KeyPath: keyPath, PublicKey: sshPub,
		Signer: signer}, nil
}

// writeFile writes data to path with mode perm, making its directory with
// mode dirPerm, both set exactly whatever the umask.
func writeFile(path string, data []byte, dirPerm, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return err
	}
	if err := os.Chmod(dir, dirPerm); err != nil {
		return err
	}
	if err := os.WriteFile(path, data, perm); err != nil {
		return err
	}
	return os.Chmod(path, perm)
}
