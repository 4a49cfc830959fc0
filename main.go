// Command terraform-provider-mailstack is one binary with two roles. Run with
// no arguments (as Terraform does) it serves the mailstack Terraform
// provider; `terraform-provider-mailstack runtime serve --state-dir DIR`
// runs the bundled mail runtime in the foreground. The provider copies this
// same executable onto the target host, so nothing else needs installing.
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
	"syscall"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/mailstack/terraform-provider-mailstack/provider"
	"github.com/mailstack/terraform-provider-mailstack/runtime"
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
	usage := errors.New("usage: terraform-provider-mailstack runtime serve --state-dir DIR")
	if len(args) == 0 || args[0] != "serve" {
		return usage
	}
	fs := flag.NewFlagSet("runtime serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	stateDir := fs.String("state-dir", "", "the server's state directory (config.json, control socket, mail)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *stateDir == "" || fs.NArg() > 0 {
		return usage
	}
	logger := slog.New(slog.NewJSONHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return runtime.Serve(ctx, runtime.Options{StateDir: *stateDir, Version: version, Logger: logger})
}
