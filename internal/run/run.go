// Package run is the only place that knows the order of the steps: for the
// whole fleet it checks EC2 first (credentials, instances, volumes, a dry
// run of every CreateSnapshots), and only then, per host in parallel,
// connects, starts the freeze agent, freezes, snapshots, thaws and waits.
//
// Its safety stance: a host is frozen only after every check that can fail
// slowly has passed; the CreateSnapshots call made while frozen has a
// deadline inside the freeze timeout; the thaw runs with its own timeout on
// the connection that froze, whatever happened before it, including the
// run being cancelled; and no host waits on another to thaw.
package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/orchestrate-dev/orchestrate/internal/freeze"
	"github.com/orchestrate-dev/orchestrate/internal/hosts"
	"github.com/orchestrate-dev/orchestrate/internal/identify"
	"github.com/orchestrate-dev/orchestrate/internal/snapshot"
	"github.com/orchestrate-dev/orchestrate/internal/sshexec"
)

// EC2 is what a run needs of EC2; *snapshot.Client implements it.
type EC2 interface {
	Credentials(ctx context.Context) error
	DefaultRegion() string
	Describe(ctx context.Context, region string, ids []string) (map[string]snapshot.Instance, error)
	DryRun(ctx context.Context, r *snapshot.Request) error
	Create(ctx context.Context, r *snapshot.Request) ([]snapshot.Snapshot, error)
	Wait(ctx context.Context, region string, ids []string, opts snapshot.WaitOptions,
		progress func([]snapshot.Snapshot)) ([]snapshot.Snapshot, error)
	Tag(ctx context.Context, region string, ids []string, tags map[string]string) error
	FindByTag(ctx context.Context, region, key, value string) ([]snapshot.Snapshot, error)
	Find(ctx context.Context, region string, filters map[string][]string) ([]snapshot.Instance, error)
}

// Conn is one host's connection, kept for its whole pipeline.
// *sshexec.Client implements it.
type Conn interface {
	Exec(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error
	User() string
	Close() error
}

// Dialer opens a host's connection.
type Dialer func(ctx context.Context, t sshexec.Target) (Conn, error)

// Config is one run.
type Config struct {
	RunID string
	Hosts []hosts.Host
	EC2   EC2
	// Dial opens connections; nil dials with sshexec and SSH, after
	// SSHConfig (when not nil) with Explicit marking the flags given.
	Dial      Dialer
	SSH       sshexec.Config
	SSHConfig *sshexec.SSHConfig
	Explicit  sshexec.Explicit

	// VerifyIdentity is "auto" (check the host's own instance ID when it
	// can be read, warn when it cannot), "require" (fail the host when it
	// cannot be read) or "off". Identity says where the host reads it.
	VerifyIdentity string
	Identity       identify.Options

	Sudo            freeze.SudoMode
	PrepareTimeout  time.Duration // starting the agent, through its sync
	FreezeTimeout   time.Duration // the agent's hard deadline
	ThawTimeout     time.Duration // how long to wait for a thaw to be confirmed
	AllowRootFreeze bool
	// Closure is what discovery does with a filesystem that shares a
	// volume with a chosen one: "freeze" it too (default) or "fail".
	Closure string
	// Address is how a host whose destination is an instance ID is
	// reached: its "private" IP (default), "public" IP or "dns" name.
	Address string
	// PlanOnly stops each host after planning: nothing is frozen and
	// nothing is created (orchestrate plan).
	PlanOnly    bool
	Parallel    int
	Tags        map[string]string // --tag, added to every snapshot
	Wait        bool
	WaitTimeout time.Duration
	WaitOptions snapshot.WaitOptions
	Logger      *slog.Logger
}

// ConfigError means the run could not start: nothing was done on any host.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

func (c *Config) withDefaults() error {
	if c.RunID == "" || len(c.Hosts) == 0 || c.EC2 == nil {
		return errors.New("run: a run needs an id, hosts and an EC2 client")
	}
	if c.FreezeTimeout <= 0 {
		c.FreezeTimeout = 30 * time.Second
	}
	if c.FreezeTimeout < 3*time.Second {
		return fmt.Errorf("run: freeze timeout %v is too short (at least 3s)", c.FreezeTimeout)
	}
	switch c.VerifyIdentity {
	case "":
		c.VerifyIdentity = "auto"
	case "auto", "require", "off":
	default:
		return fmt.Errorf("run: identity check %q: want auto, require or off", c.VerifyIdentity)
	}
	if c.PrepareTimeout <= 0 {
		c.PrepareTimeout = 2 * time.Minute
	}
	if c.ThawTimeout <= 0 {
		c.ThawTimeout = 15 * time.Second
	}
	if c.Parallel <= 0 {
		c.Parallel = 16
	}
	if c.WaitTimeout <= 0 {
		c.WaitTimeout = time.Hour
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Dial == nil {
		c.Dial = sshDialer(c.SSH, c.SSHConfig, c.Explicit)
	}
	return nil
}

// sshDialer dials with sshexec, applying ssh_config to each target first.
// A host named by its instance ID is matched in ssh_config by that ID
// (Host i-*), and dialled at the address EC2 gave unless ssh_config sets
// a HostName.
func sshDialer(cfg sshexec.Config, sc *sshexec.SSHConfig, explicit sshexec.Explicit) Dialer {
	return func(ctx context.Context, t sshexec.Target) (Conn, error) {
		resolved := ""
		if id := destinationHost(t.Name); instanceIDPattern.MatchString(id) && t.Addr != id {
			resolved, t.Addr = t.Addr, id
		}
		t, c, err := sc.Apply(t, cfg, explicit)
		if err != nil {
			return nil, err
		}
		if resolved != "" && instanceIDPattern.MatchString(t.Addr) {
			t.Addr = resolved
		}
		return sshexec.Dial(ctx, t, c)
	}
}

// destinationHost is the host part of a destination as written:
// [user@]host[:port].
func destinationHost(dest string) string {
	if i := strings.LastIndexByte(dest, '@'); i >= 0 {
		dest = dest[i+1:]
	}
	if h, _, err := net.SplitHostPort(dest); err == nil {
		return h
	}
	return dest
}

// Run runs cfg and returns its report. The error is a *ConfigError when the
// run could not start at all (bad configuration, no AWS credentials, no
// region), in which case no host was contacted. Cancelling ctx stops hosts
// that have not frozen yet and cuts short the snapshot call of those that
// have; every frozen host is still thawed before Run returns.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, &ConfigError{err}
	}
	rep := &Report{Schema: Schema, RunID: cfg.RunID, StartedAt: time.Now()}
	fleet := make([]*hostRun, len(cfg.Hosts))
	for i, h := range cfg.Hosts {
		fleet[i] = newHostRun(&cfg, h)
		rep.Hosts = append(rep.Hosts, fleet[i].rep)
	}

	if err := preflight(ctx, &cfg, fleet); err != nil {
		return nil, &ConfigError{err}
	}

	sem := make(chan struct{}, cfg.Parallel)
	done := make(chan struct{})
	for _, hr := range fleet {
		go func() {
			defer func() { done <- struct{}{} }()
			if hr.rep.Status == StatusFailed {
				return
			}
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
				hr.pipeline(ctx)
			case <-ctx.Done():
				hr.rep.fail(StepConnect, fmt.Errorf("not started: %w", ctx.Err()))
			}
		}()
	}
	for range fleet {
		<-done
	}

	rep.finish(time.Now(), ctx.Err() != nil)
	return rep, nil
}

// address renders a target for the report, with brackets for IPv6; a
// target without a port shows the default one.
func address(t sshexec.Target, defaultPort int) string {
	port := t.Port
	if port == 0 {
		port = defaultPort
	}
	if port == 0 {
		port = 22
	}
	if strings.Contains(t.Addr, ":") {
		return fmt.Sprintf("[%s]:%d", t.Addr, port)
	}
	return fmt.Sprintf("%s:%d", t.Addr, port)
}
