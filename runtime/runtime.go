// Package runtime is the mail runtime's composition root: `runtime serve`
// loads a state directory's config.json, opens the store, starts the
// listeners and the control API, and applies changes from the control API
// atomically (validate the whole document, make the change live, then
// persist it). The protocol front ends, sockets, store and API live in the
// sub-packages; this package only wires them together.
package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/atomicfile"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
	"github.com/mailstack/terraform-provider-mailstack/runtime/durable"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
)

// Options configure Serve. StateDir is the only required field.
type Options struct {
	// StateDir holds config.json, the control socket, the pid file and the
	// mail store.
	StateDir string
	// Version is reported in status.
	Version string
	// Logger receives everything the runtime logs; nil means slog.Default().
	Logger *slog.Logger
	// DrainTimeout bounds how long sessions may take to end on shutdown;
	// zero means 30 seconds.
	DrainTimeout time.Duration
}

// Serve runs the runtime until ctx is done, then drains sessions and
// returns. It fails before anything listens if the config is invalid or
// another runtime holds the state directory.
func Serve(ctx context.Context, opts Options) error {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 30 * time.Second
	}
	log := opts.Logger
	dir := opts.StateDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating state directory: %w", err)
	}
	state, err := statedir.Local(dir).Lock(ctx)
	if err != nil {
		return err
	}
	defer state.Unlock()

	doc, err := statedir.Local(dir).LoadConfig(ctx)
	if err != nil {
		return err
	}
	rt, err := newRuntime(dir, state, doc, opts)
	if err != nil {
		return err
	}
	defer rt.close()
	durable.ObserveSyncs(rt.metrics.Fsync)
	defer durable.ObserveSyncs(nil)
	rt.startListeners()
	tuneCtx, stopTuning := context.WithCancel(ctx)
	defer stopTuning()
	go tuneGC(tuneCtx)
	rt.acme.Start()
	rt.out.engine.Start()

	ln, err := control.Listen(filepath.Join(dir, statedir.SocketFile))
	if err != nil {
		return err
	}
	go executableSHA256() // ready before the provider's first status call
	srv := &http.Server{Handler: control.Handler(observedRuntime{rt}, log), ReadHeaderTimeout: 10 * time.Second}
	pidPath := filepath.Join(dir, statedir.PIDFile)
	if err := atomicfile.WriteFile(pidPath, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		ln.Close()
		return err
	}
	defer os.Remove(pidPath)
	log.Info("runtime serving", "state_dir", dir, "pid", os.Getpid(), "version", opts.Version)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		log.Error("control API stopped", "err", err)
	}
	log.Info("runtime stopping; draining sessions", "deadline", opts.DrainTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), opts.DrainTimeout)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	os.Remove(filepath.Join(dir, statedir.SocketFile))
	if err := rt.listeners.Shutdown(shutdownCtx); err != nil {
		log.Warn("sessions still open at the drain deadline were closed", "err", err)
	}
	return nil
}
