// Command ec2sim serves the EC2 emulator of package ec2sim on a loopback
// address, for rehearsals and the demo. It prints
// "ec2sim: listening on http://ADDR" to stderr once it accepts
// connections and shuts down cleanly on SIGINT or SIGTERM.
//
//	ec2sim --listen 127.0.0.1:0 --state fixture.json \
//	    [--snapshot-dir DIR] [--complete-after 2s] [--log-level info]
//
// Point the SDK at it with AWS_ENDPOINT_URL_EC2=http://ADDR and the
// fixture's keys. The JSON control API is under /_ec2sim/ (see the
// package documentation of internal/ec2sim).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/orchestrate-dev/orchestrate/internal/ec2sim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(),
		os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr))
}

// config is the parsed command line.
type config struct {
	listen        string
	state         string
	snapshotDir   string
	completeAfter time.Duration
	logLevel      slog.Level
	allowRemote   bool
}

// parseArgs parses the command line; usage and errors go to stderr.
func parseArgs(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("ec2sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:0",
		"address to listen on; port 0 picks a free port")
	fs.StringVar(&c.state, "state", "", "fixture JSON file (required)")
	fs.StringVar(&c.snapshotDir, "snapshot-dir", "",
		"directory for snapshot images of volumes with a backing file")
	fs.DurationVar(&c.completeAfter, "complete-after", 0,
		"how long a new snapshot stays pending (0: completed when next read)")
	fs.TextVar(&c.logLevel, "log-level", slog.LevelInfo,
		"debug, info, warn or error; debug logs every call")
	fs.BoolVar(&c.allowRemote, "allow-nonloopback", false,
		"allow listening on a non-loopback address (the emulator has no real auth)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.state == "" {
		return c, errors.New("--state is required")
	}
	if !c.allowRemote && !isLoopback(c.listen) {
		return c, fmt.Errorf("refusing to listen on non-loopback address %q (use --allow-nonloopback)", c.listen)
	}
	return c, nil
}

// isLoopback reports whether addr (host:port) names a loopback host: a
// loopback IP or "localhost". An empty host means every interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// run serves until ctx ends and returns the exit code: 0 after a clean
// shutdown, 1 on failure, 2 for a bad command line.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	c, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "ec2sim: error: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr,
		&slog.HandlerOptions{Level: c.logLevel}))

	fx, err := ec2sim.LoadFixture(c.state)
	if err != nil {
		fmt.Fprintf(stderr, "ec2sim: error: %v\n", err)
		return 2
	}
	sim, err := ec2sim.New(fx, ec2sim.Options{
		CompleteAfter: c.completeAfter,
		SnapshotDir:   c.snapshotDir,
		Logger:        log,
	})
	if err != nil {
		fmt.Fprintf(stderr, "ec2sim: error: %v\n", err)
		return 2
	}

	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		fmt.Fprintf(stderr, "ec2sim: error: %v\n", err)
		return 1
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stderr, "ec2sim: listening on http://%s\n", ln.Addr())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "ec2sim: error: serve: %v\n", err)
		return 1
	case <-ctx.Done():
	}

	// In-flight calls get a few seconds to finish.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		fmt.Fprintf(stderr, "ec2sim: error: shutdown: %v\n", err)
		return 1
	}
	log.Info("stopped")
	return 0
}
