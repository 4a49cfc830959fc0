// Command terraform-provider-mailstack is one binary with two roles. Run with
// no arguments (as Terraform does) it serves the mailstack Terraform
// provider; `terraform-provider-mailstack runtime serve --state-dir DIR`
// runs the bundled mail runtime in the foreground, and
// `terraform-provider-mailstack runtime supervise --state-dir DIR` keeps
// such a serve process alive (restarts with backoff, drains on SIGTERM),
// `terraform-provider-mailstack runtime store copy --state-dir DIR --to-dsn DSN`
// copies a stopped server's embedded mail store into PostgreSQL, and
// `terraform-provider-mailstack james import CONF_DIR -out DIR` writes the
// Terraform configuration that takes an Apache James server over.
// The provider copies this same executable onto the target host and starts
// the supervisor, so nothing else needs installing.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/mailstack/terraform-provider-mailstack/internal/james"
	"github.com/mailstack/terraform-provider-mailstack/provider"
	"github.com/mailstack/terraform-provider-mailstack/runtime"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
	"github.com/mailstack/terraform-provider-mailstack/runtime/supervise"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "terraform-provider-mailstack:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "runtime" {
		return runRuntime(args[1:], stderr)
	}
	if len(args) > 0 && args[0] == "james" {
		return james.Main(args[1:], os.Stdout, stderr)
	}
	fs := flag.NewFlagSet("terraform-provider-mailstack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	debug := fs.Bool("debug", false, "run the provider with support for debuggers like delve")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return providerserver.Serve(context.Background(), provider.New(version), providerserver.ServeOpts{
		Address: provider.Address,
		Debug:   *debug,
	})
}

func runRuntime(args []string, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "store" {
		return runStore(args[1:], stderr)
	}
	usage := errors.New("usage: terraform-provider-mailstack runtime serve|supervise --state-dir DIR")
	if len(args) == 0 || (args[0] != "serve" && args[0] != "supervise") {
		return usage
	}
	fs := flag.NewFlagSet("runtime "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	stateDir := fs.String("state-dir", "", "the server's state directory (config.json, control socket, mail)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *stateDir == "" || fs.NArg() > 0 {
		return usage
	}
	dir, err := filepath.Abs(*stateDir)
	if err != nil {
		return err
	}
	// Lines are written in batches (runtime.LogWriter): one write per
	// connection's log line cost a busy listener a few per cent of its CPU.
	lw := runtime.NewLogWriter(stderr)
	defer lw.Close()
	logger := slog.New(lw.Handler(slog.NewJSONHandler(lw, nil)))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if args[0] == "supervise" {
		return runSupervisor(ctx, dir, logger)
	}
	return runtime.Serve(ctx, runtime.Options{StateDir: dir, Version: version, Logger: logger})
}

// runStore runs `runtime store copy`.
func runStore(args []string, stderr io.Writer) error {
	usage := errors.New("usage: terraform-provider-mailstack runtime store copy --state-dir DIR --to-dsn DSN\n" +
		"  copies the embedded store of a stopped server into a PostgreSQL database; put the database\n" +
		"  password in PGPASSWORD or ~/.pgpass rather than in the DSN, which other users can see in ps")
	if len(args) == 0 || args[0] != "copy" {
		return usage
	}
	fs := flag.NewFlagSet("runtime store copy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	stateDir := fs.String("state-dir", "", "the server's state directory, whose runtime is stopped")
	dsn := fs.String("to-dsn", "", "the PostgreSQL connection string, as postgres_dsn takes it")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *stateDir == "" || *dsn == "" || fs.NArg() > 0 {
		return usage
	}
	dir, err := filepath.Abs(*stateDir)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	stats, err := runtime.CopyStore(ctx, dir, *dsn, logger)
	if err != nil {
		return err
	}
	logger.Info("store copied", "users", stats.Users, "messages", stats.Messages, "bytes", stats.Bytes)
	return nil
}

// runSupervisor supervises `runtime serve` run from this same executable.
func runSupervisor(ctx context.Context, dir string, logger *slog.Logger) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locating the runtime executable: %w", err)
	}
	return supervise.Run(ctx, supervise.Options{
		StateDir:      dir,
		Command:       []string{exe, "runtime", "serve", "--state-dir", dir},
		Logger:        logger.With("component", "supervisor"),
		Requires:      []string{statedir.ConfigFile},
		ServeLockFile: statedir.LockFile,
		ServePIDFile:  statedir.PIDFile,
	})
}
