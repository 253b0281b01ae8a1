package run

import (
	"context"
	"errors"
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
	sem := make(chan struct{}, cfg.Parallel)
	var wg sync.WaitGroup
	for _, h := range cfg.Hosts {
		t := sshexec.Target{Name: h.Destination, Addr: h.Addr, Port: h.Port, User: h.User}
		hr := &ThawHostReport{Destination: h.Destination, Address: address(t, cfg.SSH.Port),
			Thawed: []freeze.Record{}, NotFrozen: []freeze.Record{},
			StillFrozen: []freeze.Record{}, Live: []freeze.Live{}}
		rep.Hosts = append(rep.Hosts, hr)
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
