// Package runtime is the mail runtime's composition root: `runtime serve`
// loads a state directory's config.json, opens the store, starts the
// listeners and the control API, and applies changes from the control API
// atomically (validate the whole document, make the change live, then
// persist it). The protocol front ends, sockets, store and API live in the
// sub-packages; this package only wires them together.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mailstack/terraform-provider-mailstack/internal/atomicfile"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
)

// File names in a state directory.
const (
	ConfigFile = "config.json"
	PIDFile    = "runtime.pid"
	LockFile   = "runtime.lock"
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
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()

	doc, err := LoadConfig(dir)
	if err != nil {
		return err
	}
	rt, err := newRuntime(dir, doc, opts)
	if err != nil {
		return err
	}
	defer rt.close()
	rt.startListeners()
	tuneCtx, stopTuning := context.WithCancel(ctx)
	defer stopTuning()
	go tuneGC(tuneCtx)
	rt.acme.Start()

	ln, err := control.Listen(dir)
	if err != nil {
		return err
	}
	go executableSHA256() // ready before the provider's first status call
	srv := &http.Server{Handler: control.Handler(observedRuntime{rt}, log), ReadHeaderTimeout: 10 * time.Second}
	pidPath := filepath.Join(dir, PIDFile)
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
	os.Remove(filepath.Join(dir, control.SocketName))
	if err := rt.listeners.Shutdown(shutdownCtx); err != nil {
		log.Warn("sessions still open at the drain deadline were closed", "err", err)
	}
	return nil
}

// LoadConfig reads and validates dir's config.json.
func LoadConfig(dir string) (*config.Document, error) {
	path := filepath.Join(dir, ConfigFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loading runtime config: %w", err)
	}
	defer f.Close()
	doc, err := config.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("loading runtime config %s: %w", path, err)
	}
	return doc, nil
}

// SaveConfig validates doc and writes it atomically as dir's config.json.
func SaveConfig(dir string, doc *config.Document) error {
	if err := doc.Validate(); err != nil {
		return err
	}
	data, err := doc.Encode()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, ConfigFile), data, 0o600)
}

// lockDir holds an exclusive advisory lock on dir for the process's life:
// one runtime per state directory.
func lockDir(dir string) (func(), error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking state directory: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("state directory %s is in use by another runtime", dir)
		}
		return nil, fmt.Errorf("locking state directory %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}
