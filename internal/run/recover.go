package run

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/orchestrate-dev/orchestrate/internal/freeze"
	"github.com/orchestrate-dev/orchestrate/internal/hosts"
	"github.com/orchestrate-dev/orchestrate/internal/sshexec"
)

// ThawSchema names the version of the thaw report.
const ThawSchema = "orchestrate.thaw/v1"

// Thaw host statuses.
const (
	ThawThawed  = "thawed"       // something was thawed
	ThawNothing = "nothing"      // nothing recorded was frozen
	ThawFailed  = "failed"       // the host could not be reached or refused
	ThawStuck   = "still_frozen" // something recorded could not be thawed
)

// ThawConfig is one `orchestrate thaw`.
type ThawConfig struct {
	Hosts     []hosts.Host
	Dial      Dialer // nil dials with sshexec and SSH, as Config.Dial
	SSH       sshexec.Config
	SSHConfig *sshexec.SSHConfig
	Explicit  sshexec.Explicit
	Sudo      freeze.SudoMode
	Parallel  int
	Logger    *slog.Logger
	// EC2, when not nil, resolves destinations that are instance IDs to
	// the address Address picks, as run does; without it they are dialled
	// as written.
	EC2     EC2
	Address string
	Region  string // for hosts without region=
}

// ThawReport is the result of `orchestrate thaw`.
type ThawReport struct {
	Schema     string            `json:"schema"`
	StartedAt  time.Time         `json:"started_at"`
	DurationMS float64           `json:"duration_ms"`
	Hosts      []*ThawHostReport `json:"hosts"`
}

// ThawHostReport is what was found and done on one host.
type ThawHostReport struct {
	Destination string          `json:"destination"`
	Address     string          `json:"address"`
	Status      string          `json:"status"`
	Thawed      []freeze.Record `json:"thawed"`
	NotFrozen   []freeze.Record `json:"not_frozen"`
	StillFrozen []freeze.Record `json:"still_frozen"`
	Live        []freeze.Live   `json:"live"`
	Error       string          `json:"error,omitempty"`
}

// ExitCode is 3 when something recorded is still frozen, 1 when a host
// could not be reached or refused, 0 otherwise.
func (r *ThawReport) ExitCode() int {
	code := 0
	for _, h := range r.Hosts {
		switch h.Status {
		case ThawStuck:
			return 3
		case ThawFailed:
			code = 1
		}
	}
	return code
}

// Thaw connects to every host and thaws what earlier runs recorded as
// frozen there and left behind, and nothing else (see freeze.Recover).
// It needs no AWS access.
func Thaw(ctx context.Context, cfg ThawConfig) *ThawReport {
	if cfg.Parallel <= 0 {
		cfg.Parallel = 16
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Dial == nil {
		cfg.Dial = sshDialer(cfg.SSH, cfg.SSHConfig, cfg.Explicit)
	}
	rep := &ThawReport{Schema: ThawSchema, StartedAt: time.Now()}
	addrs, errs := resolveThawTargets(ctx, &cfg)
	sem := make(chan struct{}, cfg.Parallel)
	var wg sync.WaitGroup
	for i, h := range cfg.Hosts {
		t := sshexec.Target{Name: h.Destination, Addr: h.Addr, Port: h.Port, User: h.User}
		if addrs[i] != "" {
			t.Addr = addrs[i]
		}
		hr := &ThawHostReport{Destination: h.Destination, Address: address(t, cfg.SSH.Port),
			Thawed: []freeze.Record{}, NotFrozen: []freeze.Record{},
			StillFrozen: []freeze.Record{}, Live: []freeze.Live{}}
		rep.Hosts = append(rep.Hosts, hr)
		if errs[i] != nil {
			hr.Status, hr.Error = ThawFailed, errs[i].Error()
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			thawHost(ctx, &cfg, t, hr)
		})
	}
	wg.Wait()
	rep.DurationMS = ms(time.Since(rep.StartedAt))
	return rep
}

func thawHost(ctx context.Context, cfg *ThawConfig, t sshexec.Target, hr *ThawHostReport) {
	log := cfg.Logger.With("host", t.Name)
	conn, err := cfg.Dial(ctx, t)
	if err != nil {
		hr.Status, hr.Error = ThawFailed, err.Error()
		return
	}
	defer conn.Close()

	rec, err := freeze.Recover(ctx, conn, conn.User(), cfg.Sudo)
	if rec != nil {
		hr.Thawed = append(hr.Thawed, rec.Thawed...)
		hr.NotFrozen = append(hr.NotFrozen, rec.NotFrozen...)
		hr.StillFrozen = append(hr.StillFrozen, rec.Failed...)
		hr.Live = append(hr.Live, rec.Live...)
	}
	switch {
	case errors.Is(err, freeze.ErrThawUnconfirmed):
		hr.Status, hr.Error = ThawStuck, err.Error()
	case err != nil:
		hr.Status, hr.Error = ThawFailed, err.Error()
	case len(hr.Thawed) > 0:
		hr.Status = ThawThawed
	default:
		hr.Status = ThawNothing
	}
	log.Info("thaw", "status", hr.Status, "thawed", len(hr.Thawed), "live", len(hr.Live))
}

// resolveThawTargets finds, with one DescribeInstances per region, the
// address of every host whose destination is an instance ID. Hosts named
// otherwise keep their destination: thaw dials what it is told.
func resolveThawTargets(ctx context.Context, cfg *ThawConfig) (addrs []string, errs []error) {
	addrs, errs = make([]string, len(cfg.Hosts)), make([]error, len(cfg.Hosts))
	byRegion := map[string][]int{}
	for i, h := range cfg.Hosts {
		if !instanceIDPattern.MatchString(h.Addr) {
			continue
		}
		if cfg.EC2 == nil {
			errs[i] = fmt.Errorf("%s is an instance ID: its address needs EC2 (pass --region and credentials)", h.Addr)
			continue
		}
		region := h.Region
		if region == "" {
			region = cfg.Region
		}
		if region == "" {
			region = cfg.EC2.DefaultRegion()
		}
		byRegion[region] = append(byRegion[region], i)
	}
	for region, idx := range byRegion {
		ids := make([]string, len(idx))
		for k, i := range idx {
			ids[k] = cfg.Hosts[i].Addr
		}
		found, err := cfg.EC2.Describe(ctx, region, ids)
		for _, i := range idx {
			inst, ok := found[cfg.Hosts[i].Addr]
			switch {
			case err != nil:
				errs[i] = fmt.Errorf("describe %s in %s: %w", cfg.Hosts[i].Addr, region, err)
			case !ok:
				errs[i] = fmt.Errorf("instance %s not found in %s", cfg.Hosts[i].Addr, region)
			default:
				hr := &hostRun{cfg: &Config{Address: cfg.Address, SSH: cfg.SSH}, rep: &HostReport{}}
				if errs[i] = hr.dialAddress(inst); errs[i] == nil {
					addrs[i] = hr.target.Addr
				}
			}
		}
	}
	return addrs, errs
}
