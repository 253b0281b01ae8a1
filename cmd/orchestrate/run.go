package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/orchestrate-dev/orchestrate/internal/freeze"
	"github.com/orchestrate-dev/orchestrate/internal/hosts"
	"github.com/orchestrate-dev/orchestrate/internal/identify"
	"github.com/orchestrate-dev/orchestrate/internal/run"
	"github.com/orchestrate-dev/orchestrate/internal/snapshot"
	"github.com/orchestrate-dev/orchestrate/internal/sshexec"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "freeze, snapshot and thaw every host in a hosts file",
		UsageText: "orchestrate run --hosts FILE [options]",
		Description: "For the whole fleet, first checks AWS credentials, describes every\n" +
			"instance and dry-runs every CreateSnapshots. Then, per host in parallel:\n" +
			"connect, start the freeze agent (sync), freeze, CreateSnapshots, thaw,\n" +
			"and with --wait wait for the snapshots to complete.\n\n" +
			"EXAMPLES:\n" +
			"   orchestrate run --hosts hosts.txt\n" +
			"   orchestrate run --hosts hosts.txt --region eu-west-1 --tag team=db --wait\n" +
			"   orchestrate run --hosts hosts.txt --output json > report.json\n\n" +
			exitCodesHelp,
		Flags:        runFlags(),
		Action:       runAction,
		OnUsageError: onUsageError,
	}
}

func runFlags() []cli.Flag {
	flags := append([]cli.Flag{hostsFlag()}, targetFlags()...)
	flags = append(flags, sshFlags()...)
	flags = append(flags,
		&cli.StringFlag{Name: "verify-identity", Usage: "check each host is the instance the hosts file names, from its own metadata: auto (skip with a warning when unreadable), require, off", Value: "auto", EnvVars: []string{"ORCHESTRATE_VERIFY_IDENTITY"}},
		&cli.StringFlag{Name: "metadata-endpoint", Usage: "instance metadata `URL` the HOSTS read their identity from", Value: identify.DefaultEndpoint, EnvVars: []string{"ORCHESTRATE_METADATA_ENDPOINT", identify.EndpointEnv}},
		&cli.DurationFlag{Name: "prepare-timeout", Usage: "limit on starting the agent on a host, its sync included (nothing is frozen yet)", Value: 2 * time.Minute, EnvVars: []string{"ORCHESTRATE_PREPARE_TIMEOUT"}},
		&cli.DurationFlag{Name: "freeze-timeout", Usage: "hard limit on how long a filesystem stays frozen; the host thaws on its own after it", Value: 30 * time.Second, EnvVars: []string{"ORCHESTRATE_FREEZE_TIMEOUT"}},
		&cli.StringFlag{Name: "closure", Usage: "when discovery finds a filesystem that shares a volume with a chosen one: freeze it too, or fail the host", Value: "freeze", EnvVars: []string{"ORCHESTRATE_CLOSURE"}},
		&cli.BoolFlag{Name: "allow-root-freeze", Usage: "allow freezing / (risky: a frozen / blocks logins and logging)", EnvVars: []string{"ORCHESTRATE_ALLOW_ROOT_FREEZE"}},
	)
	flags = append(flags, awsFlags()...)
	flags = append(flags,
		&cli.StringSliceFlag{Name: "tag", Usage: "extra snapshot tag `KEY=VALUE` (repeatable)", EnvVars: []string{"ORCHESTRATE_TAG"}},
		&cli.BoolFlag{Name: "wait", Usage: "after thawing, wait for the snapshots to complete", EnvVars: []string{"ORCHESTRATE_WAIT"}},
		&cli.DurationFlag{Name: "wait-timeout", Usage: "give up waiting for completion after this long", Value: time.Hour, EnvVars: []string{"ORCHESTRATE_WAIT_TIMEOUT"}},
	)
	return append(flags, outputFlags()...)
}

// awsFlags choose the operator's AWS identity, Region and endpoint.
func awsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "profile", Usage: "AWS shared config `PROFILE` (default: the SDK chain, AWS_PROFILE)", EnvVars: []string{"ORCHESTRATE_PROFILE"}},
		&cli.StringFlag{Name: "region", Usage: "AWS `REGION` for hosts without region= (default: the SDK's, AWS_REGION)", EnvVars: []string{"ORCHESTRATE_REGION"}},
		&cli.StringFlag{Name: "endpoint-url", Usage: "EC2 endpoint `URL`, e.g. an emulator (AWS_ENDPOINT_URL_EC2 also works)", EnvVars: []string{"ORCHESTRATE_ENDPOINT_URL"}},
	}
}

func hostsFlag() cli.Flag {
	return &cli.StringFlag{Name: "hosts", Aliases: []string{"H"}, Usage: "hosts `FILE` (or --filter)", EnvVars: []string{"ORCHESTRATE_HOSTS"}}
}

// targetFlags choose hosts from EC2 instead of a file, and how a host
// named by its instance ID is reached.
func targetFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "filter", Usage: "take the hosts from EC2: running instances matching `NAME=VALUE` (e.g. tag:backup=daily; repeatable, all must match) instead of --hosts", EnvVars: []string{"ORCHESTRATE_FILTER"}},
		&cli.StringFlag{Name: "address", Usage: "how to reach a host named by its instance ID: private, public or dns", Value: "private", EnvVars: []string{"ORCHESTRATE_ADDRESS"}},
	}
}

// sshFlags are how every command that reaches hosts connects to them.
func sshFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "ssh-config", Usage: "ssh_config `FILE` for HostName, User, Port, IdentityFile, ProxyJump, UserKnownHostsFile, StrictHostKeyChecking, ConnectTimeout, ServerAlive* (flags win over it)", Value: "~/.ssh/config", EnvVars: []string{"ORCHESTRATE_SSH_CONFIG"}},
		&cli.StringSliceFlag{Name: "identity-file", Aliases: []string{"i"}, Usage: "SSH private key `FILE` (repeatable); default: ~/.ssh/id_ed25519, id_ecdsa, id_rsa when no ssh-agent", EnvVars: []string{"ORCHESTRATE_IDENTITY_FILE"}},
		&cli.StringFlag{Name: "known-hosts", Usage: "known_hosts `FILE` that host keys are checked against", Value: "~/.ssh/known_hosts", EnvVars: []string{"ORCHESTRATE_KNOWN_HOSTS"}},
		&cli.BoolFlag{Name: "accept-new-host-keys", Usage: "record the key of a host not in known_hosts (a changed key is always refused)", EnvVars: []string{"ORCHESTRATE_ACCEPT_NEW_HOST_KEYS"}},
		&cli.StringFlag{Name: "user", Aliases: []string{"l"}, Usage: "SSH `USER` for hosts that name none (default: your local user)", EnvVars: []string{"ORCHESTRATE_USER"}},
		&cli.IntFlag{Name: "port", Aliases: []string{"p"}, Usage: "SSH `PORT` for hosts that name none", Value: 22, EnvVars: []string{"ORCHESTRATE_PORT"}},
		&cli.DurationFlag{Name: "connect-timeout", Usage: "TCP connect, SSH handshake and login, per host", Value: 10 * time.Second, EnvVars: []string{"ORCHESTRATE_CONNECT_TIMEOUT"}},
		&cli.DurationFlag{Name: "keepalive", Usage: "SSH keepalive interval; 3 missed replies close the connection", Value: 5 * time.Second, EnvVars: []string{"ORCHESTRATE_KEEPALIVE"}},
		&cli.StringFlag{Name: "sudo", Usage: "run the agent through sudo -n: auto (unless the user is root), always, never", Value: "auto", EnvVars: []string{"ORCHESTRATE_SUDO"}},
		&cli.IntFlag{Name: "parallel", Usage: "hosts processed at once", Value: 16, EnvVars: []string{"ORCHESTRATE_PARALLEL"}},
	}
}

func outputFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "result format on stdout: table or json", Value: "table", EnvVars: []string{"ORCHESTRATE_OUTPUT"}},
		&cli.StringFlag{Name: "log-level", Usage: "stderr log level: debug, info, warn, error", Value: "warn", EnvVars: []string{"ORCHESTRATE_LOG_LEVEL"}},
		&cli.StringFlag{Name: "log-format", Usage: "stderr log format: text or json", Value: "text", EnvVars: []string{"ORCHESTRATE_LOG_FORMAT"}},
	}
}

func runAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("run takes no arguments, got %q (did you mean --hosts %s?)",
			c.Args().First(), c.Args().First())
	}
	logger, err := newLogger(c)
	if err != nil {
		return err
	}
	cfg, err := runConfig(c, logger)
	if err != nil {
		return err
	}
	if cfg.Logger == nil {
		cfg.Logger = logger
	}
	if err := connectEC2(c, &cfg, logger); err != nil {
		return err
	}

	stop := notifyInterrupt(c, logger)
	defer stop()
	rep, err := run.Run(c.Context, cfg)
	if err != nil {
		return usageError("%v", err)
	}
	if err := printReport(c.App.Writer, c.String("output"), rep); err != nil {
		return &exitError{code: exitHostFailed, err: err}
	}
	hintAfterRun(c.App.ErrWriter, rep, c.String("hosts"))
	if code := rep.ExitCode(); code != 0 {
		return &exitError{code: code, err: errors.New("")}
	}
	return nil
}

// runConfig checks every flag and the hosts file; nothing is contacted.
func runConfig(c *cli.Context, logger *slog.Logger) (run.Config, error) {
	var cfg run.Config
	sudo, err := checkCommonFlags(c)
	if err != nil {
		return cfg, err
	}
	if d := c.Duration("freeze-timeout"); d < 3*time.Second || d > 10*time.Minute {
		return cfg, usageError("--freeze-timeout %v: want between 3s and 10m", d)
	}
	for _, name := range []string{"prepare-timeout", "wait-timeout"} {
		if d := c.Duration(name); d <= 0 {
			return cfg, usageError("--%s %v: want a duration above zero", name, d)
		}
	}
	switch v := c.String("closure"); v {
	case "freeze", "fail":
	default:
		return cfg, usageError("--closure %q: want freeze or fail", v)
	}
	switch v := c.String("verify-identity"); v {
	case "auto", "require", "off":
	default:
		return cfg, usageError("--verify-identity %q: want auto, require or off", v)
	}
	if u, err := url.Parse(c.String("metadata-endpoint")); err != nil ||
		(u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return cfg, usageError("--metadata-endpoint %q: want http(s)://HOST[:PORT]", c.String("metadata-endpoint"))
	}
	if r := c.String("region"); r != "" && !hosts.ValidRegion(r) {
		return cfg, usageError("--region %q: want a Region name such as eu-west-1", r)
	}
	if u := c.String("endpoint-url"); u != "" {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return cfg, usageError("--endpoint-url %q: want http(s)://HOST[:PORT]", u)
		}
	}
	tags, err := parseTags(c.StringSlice("tag"))
	if err != nil {
		return cfg, err
	}

	switch v := c.String("address"); v {
	case "private", "public", "dns":
	default:
		return cfg, usageError("--address %q: want private, public or dns", v)
	}
	var hostList []hosts.Host
	if len(c.StringSlice("filter")) > 0 {
		if c.String("hosts") != "" {
			return cfg, usageError("--hosts and --filter: choose one way to list the hosts")
		}
		if _, err := parseFilters(c.StringSlice("filter")); err != nil {
			return cfg, err
		}
	} else {
		file, err := loadHosts(c.String("hosts"), hosts.Requirements{})
		if err != nil {
			return cfg, err
		}
		hostList = file.Hosts
	}
	sshcfg, err := loadSSHConfig(c)
	if err != nil {
		return cfg, err
	}
	if err := checkSSHFiles(c, sshcfg != nil); err != nil {
		return cfg, err
	}

	cfg = run.Config{
		RunID:           newRunID(),
		Hosts:           hostList,
		Address:         c.String("address"),
		SSH:             sshConfig(c, logger),
		SSHConfig:       sshcfg,
		Explicit:        explicitFlags(c),
		Sudo:            sudo,
		VerifyIdentity:  c.String("verify-identity"),
		Identity:        identify.Options{Endpoint: c.String("metadata-endpoint")},
		PrepareTimeout:  c.Duration("prepare-timeout"),
		FreezeTimeout:   c.Duration("freeze-timeout"),
		AllowRootFreeze: c.Bool("allow-root-freeze"),
		Closure:         c.String("closure"),
		Parallel:        c.Int("parallel"),
		Tags:            tags,
		Wait:            c.Bool("wait"),
		WaitTimeout:     c.Duration("wait-timeout"),
		Logger:          logger,
	}
	return cfg, nil
}

// checkCommonFlags checks the SSH and output flags every host command
// shares, and returns the sudo mode.
func checkCommonFlags(c *cli.Context) (freeze.SudoMode, error) {
	switch c.String("output") {
	case "table", "json":
	default:
		return 0, usageError("--output %q: want table or json", c.String("output"))
	}
	sudo, err := freeze.ParseSudoMode(c.String("sudo"))
	if err != nil {
		return 0, usageError("--sudo: %v", err)
	}
	if n := c.Int("parallel"); n < 1 || n > 1024 {
		return 0, usageError("--parallel %d: want 1 to 1024", n)
	}
	if p := c.Int("port"); p < 1 || p > 65535 {
		return 0, usageError("--port %d: want 1 to 65535", p)
	}
	for _, name := range []string{"connect-timeout", "keepalive"} {
		if d := c.Duration(name); d <= 0 {
			return 0, usageError("--%s %v: want a duration above zero", name, d)
		}
	}
	return sudo, nil
}

// loadSSHConfig reads --ssh-config. The default file may be missing, and
// then there is none (nil).
func loadSSHConfig(c *cli.Context) (*sshexec.SSHConfig, error) {
	path := expandHome(c.String("ssh-config"))
	if _, err := os.Stat(path); err != nil {
		if c.IsSet("ssh-config") {
			return nil, usageError("--ssh-config: %v", err)
		}
		return nil, nil
	}
	sc, err := sshexec.LoadConfig(path)
	if err != nil {
		return nil, usageError("--ssh-config: %v", err)
	}
	return sc, nil
}

// explicitFlags tells ssh_config which settings the operator gave as
// flags (or their environment variables), which win over the file.
func explicitFlags(c *cli.Context) sshexec.Explicit {
	return sshexec.Explicit{
		User:              c.IsSet("user"),
		Port:              c.IsSet("port"),
		IdentityFiles:     c.IsSet("identity-file"),
		KnownHostsFiles:   c.IsSet("known-hosts"),
		AcceptNewHostKeys: c.IsSet("accept-new-host-keys"),
		ConnectTimeout:    c.IsSet("connect-timeout"),
		KeepaliveInterval: c.IsSet("keepalive"),
	}
}

// checkSSHFiles checks, before any host is contacted, that the SSH keys
// and known_hosts file the flags name can be used. With an ssh_config in
// play, keys and known_hosts files may come from it instead, so only the
// files named by flags are checked.
func checkSSHFiles(c *cli.Context, haveSSHConfig bool) error {
	for _, f := range c.StringSlice("identity-file") {
		if _, err := os.ReadFile(expandHome(f)); err != nil {
			return usageError("--identity-file: %v", err)
		}
	}
	if len(c.StringSlice("identity-file")) == 0 && os.Getenv("SSH_AUTH_SOCK") == "" &&
		len(sshexec.DefaultIdentityFiles()) == 0 && !haveSSHConfig {
		return usageError("no SSH key: pass --identity-file FILE, or start ssh-agent " +
			"(SSH_AUTH_SOCK), or create ~/.ssh/id_ed25519")
	}
	kh := expandHome(c.String("known-hosts"))
	if _, err := os.Stat(kh); err != nil && !c.Bool("accept-new-host-keys") &&
		(c.IsSet("known-hosts") || !haveSSHConfig) {
		return usageError("--known-hosts %s: %v (add the hosts' keys to it, "+
			"e.g. with ssh-keyscan after checking them, or pass --accept-new-host-keys)",
			kh, errors.Unwrap(err))
	}
	return nil
}

func loadHosts(path string, req hosts.Requirements) (*hosts.File, error) {
	if path == "" {
		return nil, usageError("--hosts FILE is required (or, for run, plan and check, --filter NAME=VALUE)")
	}
	file, err := hosts.LoadRequiring(path, req)
	if err != nil {
		return nil, usageError("bad hosts file, nothing was done:\n%v", err)
	}
	return file, nil
}

func parseTags(specs []string) (map[string]string, error) {
	tags := map[string]string{}
	for _, s := range specs {
		k, v, err := snapshot.ParseTag(s)
		if err != nil {
			return nil, usageError("--tag %q: %v", s, err)
		}
		tags[k] = v
	}
	return tags, nil
}

func sshConfig(c *cli.Context, logger *slog.Logger) sshexec.Config {
	ids := c.StringSlice("identity-file")
	for i, f := range ids {
		ids[i] = expandHome(f)
	}
	useAgent := os.Getenv("SSH_AUTH_SOCK") != ""
	if len(ids) == 0 && !useAgent {
		ids = sshexec.DefaultIdentityFiles()
	}
	return sshexec.Config{
		User:              c.String("user"),
		Port:              c.Int("port"),
		IdentityFiles:     ids,
		UseAgent:          useAgent,
		KnownHostsFiles:   []string{expandHome(c.String("known-hosts"))},
		AcceptNewHostKeys: c.Bool("accept-new-host-keys"),
		ConnectTimeout:    c.Duration("connect-timeout"),
		KeepaliveInterval: c.Duration("keepalive"),
		Logger:            logger,
	}
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}

// newRunID is sortable by time and unique enough to find a run's snapshots
// by tag: UTC time to the second plus 48 random bits.
func newRunID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

func newLogger(c *cli.Context) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, usageError("--log-level %q: want debug, info, warn or error", c.String("log-level"))
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.String("log-format") {
	case "text":
		return slog.New(slog.NewTextHandler(c.App.ErrWriter, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(c.App.ErrWriter, opts)), nil
	}
	return nil, usageError("--log-format %q: want text or json", c.String("log-format"))
}

// notifyInterrupt tells the operator, once, what an interrupt does now.
func notifyInterrupt(c *cli.Context, logger *slog.Logger) func() {
	done := make(chan struct{})
	go func() {
		select {
		case <-c.Context.Done():
			fmt.Fprintln(c.App.ErrWriter, "orchestrate: interrupted: thawing every frozen host before exit")
		case <-done:
		}
	}()
	return func() { close(done) }
}

// parseFilters reads --filter NAME=VALUE flags into EC2 filters; a name
// given twice accepts either value.
func parseFilters(specs []string) (map[string][]string, error) {
	f := map[string][]string{}
	for _, s := range specs {
		name, value, ok := strings.Cut(s, "=")
		if !ok || name == "" || value == "" {
			return nil, usageError("--filter %q: want NAME=VALUE, e.g. tag:backup=daily", s)
		}
		f[name] = append(f[name], value)
	}
	if _, ok := f["instance-state-name"]; !ok {
		f["instance-state-name"] = []string{"running"}
	}
	return f, nil
}

// hostsFromFilter lists the hosts from EC2 when --filter is given: each
// matching instance becomes a host named by its instance ID.
func hostsFromFilter(c *cli.Context, cfg *run.Config, ec2 *snapshot.Client) error {
	hs, err := filterHosts(c, ec2)
	cfg.Hosts = append(cfg.Hosts, hs...)
	return err
}

// filterHosts lists, for --filter, the matching instances as hosts named
// by their instance IDs; nothing without --filter.
func filterHosts(c *cli.Context, ec2 *snapshot.Client) ([]hosts.Host, error) {
	if len(c.StringSlice("filter")) == 0 {
		return nil, nil
	}
	filters, err := parseFilters(c.StringSlice("filter"))
	if err != nil {
		return nil, err
	}
	insts, err := ec2.Find(c.Context, c.String("region"), filters)
	if err != nil {
		return nil, usageError("--filter: %v", err)
	}
	if len(insts) == 0 {
		return nil, usageError("--filter %s: no running instance matches", strings.Join(c.StringSlice("filter"), " "))
	}
	var hs []hosts.Host
	for _, in := range insts {
		hs = append(hs, hosts.Host{Destination: in.ID, Addr: in.ID,
			InstanceID: in.ID, Region: in.Region})
	}
	return hs, nil
}

// connectEC2 makes the EC2 client from the AWS flags (nothing is contacted
// yet) and, with --filter, lists the hosts from EC2.
func connectEC2(c *cli.Context, cfg *run.Config, logger *slog.Logger) error {
	ec2, err := snapshot.New(c.Context, snapshot.Config{
		Profile:     c.String("profile"),
		Region:      c.String("region"),
		EndpointURL: c.String("endpoint-url"),
		Logger:      logger,
		AppVersion:  buildVersion(),
	})
	if err != nil {
		return usageError("%v", err)
	}
	cfg.EC2 = ec2
	return hostsFromFilter(c, cfg, ec2)
}
