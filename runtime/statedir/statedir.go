// Package statedir owns a server's state directory on its host: the names
// of everything in it, and config.json, which the runtime and the provider
// load and save only here, always under the runtime's lock (runtime.lock,
// which `runtime serve` holds for its whole life). So the provider can
// change the config of a stopped runtime, and never behind a running one's
// back: a running runtime is changed through its control API (Client).
//
// The layout of <state_dir>/<server name>/:
//
//	config.json          the runtime's config document (ConfigFile)
//	runtime.lock         held by the one `runtime serve` (LockFile)
//	runtime.pid          its pid while it runs (PIDFile)
//	control.sock         the control API, mode 0600 (SocketFile)
//	runtime.log          the runtime's and its supervisor's output (LogFile)
//	bin/                 the runtime executable the provider installed (Executable)
//	supervisor.*         the builtin supervisor's pid, lock and status (runtime/supervise)
//	acme/<id>/           ACME accounts and orders (runtime/acme)
//	dkim/<name>.key      DKIM signing keys, private (DKIMDir, runtime/dkim)
//	tlsrpt/<day>/<domain>.json  outbound TLS reports, RFC 8460 (TLSReportsDir)
//	mail/ users/ ...     the mail store (runtime/store)
//
// A Dir reaches the folder through an internal/host Host: the local host
// for the runtime itself, the target host (local or SSH) for the provider.
package statedir

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"path"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/runtime/acme"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
	"github.com/mailstack/terraform-provider-mailstack/runtime/dkim"
	"github.com/mailstack/terraform-provider-mailstack/runtime/supervise"
)

// Names in a state directory.
const (
	ConfigFile = "config.json"
	LockFile   = "runtime.lock"
	PIDFile    = "runtime.pid"
	SocketFile = "control.sock"
	LogFile    = "runtime.log"
	// Executable is the runtime executable the provider installs.
	Executable = "bin/terraform-provider-mailstack"
	// TLSReportsDir holds the runtime's SMTP TLS reports of outbound
	// delivery (runtime/tlsrpt): <YYYY-MM-DD>/<policy-domain>.json, one
	// RFC 8460 report per UTC day and recipient domain.
	TLSReportsDir = "tlsrpt"
	// DKIMDir holds the runtime's DKIM private keys, one file per key
	// (dkim.KeyFile). A key's file outlives config.json: a runtime that
	// lost its config signs with the same key once the key is declared
	// again.
	DKIMDir = "dkim"
)

// ErrRunning: a runtime holds the state directory, so its config may only
// change through the runtime's control API.
var ErrRunning = errors.New("a runtime holds the state directory")

// Dir is one server's state directory on a host.
type Dir struct {
	Host host.Host
	// Path is the folder's absolute path on Host.
	Path string
}

// Local is the state directory at path on the local host.
func Local(path string) Dir { return Dir{Host: host.Local{}, Path: path} }

// Join returns the path of name inside the directory.
func (d Dir) Join(name ...string) string { return path.Join(append([]string{d.Path}, name...)...) }

// String names the directory in messages, with its host when it is not
// the local one.
func (d Dir) String() string {
	if _, local := d.Host.(host.Local); local {
		return d.Path
	}
	return d.Path + " on " + d.Host.String()
}

// Client returns the control API client of the runtime serving this
// directory; it dials the control socket through the Host.
func (d Dir) Client() *control.Client {
	socket := d.Join(SocketFile)
	name := socket
	if _, local := d.Host.(host.Local); !local {
		name += " on " + d.Host.String()
	}
	return control.NewClient(name, func(ctx context.Context) (net.Conn, error) { return d.Host.DialUnix(ctx, socket) })
}

// Exists reports whether the directory holds a config (a server was
// created there and not deleted).
func (d Dir) Exists(ctx context.Context) (bool, error) {
	_, err := d.Host.Stat(ctx, d.Join(ConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// LoadConfig reads and validates config.json. A missing file gives an
// error wrapping fs.ErrNotExist. Writers replace the file atomically, so
// reading needs no lock.
func (d Dir) LoadConfig(ctx context.Context) (*config.Document, error) {
	p := d.Join(ConfigFile)
	data, err := d.Host.ReadFile(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("loading runtime config: %w", err)
	}
	doc, err := config.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("loading runtime config %s: %w", d.describe(p), err)
	}
	return doc, nil
}

// Create makes the directory (mode 0700) and writes doc as its config,
// under the runtime's lock: ErrRunning if a runtime holds it.
func (d Dir) Create(ctx context.Context, doc *config.Document) error {
	if err := d.Host.MkdirAll(ctx, d.Path, 0o700); err != nil {
		return fmt.Errorf("creating state directory %s: %w", d, err)
	}
	return d.withLock(ctx, func(l *Locked) error { return l.SaveConfig(ctx, doc) })
}

// EditConfig changes the config of a runtime that does not run: under the
// runtime's lock (ErrRunning if a runtime holds it) it loads config.json,
// lets fn change it and saves it validated. Nothing is written if fn or
// the validation fails.
func (d Dir) EditConfig(ctx context.Context, fn func(*config.Document) error) error {
	return d.withLock(ctx, func(l *Locked) error {
		doc, err := d.LoadConfig(ctx)
		if err != nil {
			return err
		}
		if err := fn(doc); err != nil {
			return err
		}
		return l.SaveConfig(ctx, doc)
	})
}

func (d Dir) withLock(ctx context.Context, fn func(*Locked) error) error {
	l, err := d.Lock(ctx)
	if err != nil {
		return err
	}
	defer l.Unlock()
	return fn(l)
}

// Locked is a state directory whose runtime lock this process holds.
type Locked struct {
	d      Dir
	unlock func()
}

// Lock takes the runtime's lock without waiting: a runtime that serves
// the directory holds it, and then Lock fails with ErrRunning. `runtime
// serve` holds it for its whole life.
func (d Dir) Lock(ctx context.Context) (*Locked, error) {
	unlock, err := d.Host.Lock(ctx, d.Join(LockFile), false)
	if errors.Is(err, host.ErrLocked) {
		return nil, fmt.Errorf("state directory %s: %w", d, ErrRunning)
	}
	if err != nil {
		return nil, fmt.Errorf("locking state directory %s: %w", d, err)
	}
	return &Locked{d: d, unlock: unlock}, nil
}

// Unlock releases the lock.
func (l *Locked) Unlock() { l.unlock() }

// SaveConfig validates doc and replaces config.json with it atomically
// (mode 0600).
func (l *Locked) SaveConfig(ctx context.Context, doc *config.Document) error {
	if err := doc.Validate(); err != nil {
		return err
	}
	data, err := doc.Encode()
	if err != nil {
		return err
	}
	return l.d.Host.WriteFile(ctx, l.d.Join(ConfigFile), data, host.WriteOptions{Mode: 0o600})
}

// SupervisorStatus reads what the builtin supervisor last published. An
// error wrapping fs.ErrNotExist means none ever ran here.
func (d Dir) SupervisorStatus(ctx context.Context) (supervise.Status, error) {
	data, err := d.Host.ReadFile(ctx, d.Join(supervise.StatusFile))
	if err != nil {
		return supervise.Status{}, err
	}
	return supervise.DecodeStatus(data)
}

// RemoveACME deletes the runtime's saved state of ACME keystore id, so a
// runtime started later does not resume it.
func (d Dir) RemoveACME(ctx context.Context, id string) error {
	return d.Host.RemoveAll(ctx, d.Join(acme.Dir, id))
}

// HasDKIMKey reports whether the private key of DKIM key name (its DNS
// name) is on the host, without reading it: the key never leaves the
// host.
func (d Dir) HasDKIMKey(ctx context.Context, name string) (bool, error) {
	p := d.Join(DKIMDir, dkim.KeyFile(name))
	_, err := d.Host.Stat(ctx, p)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("looking for DKIM key %s: %w", d.describe(p), err)
}

// RemoveDKIMKey deletes DKIM key name of a runtime that does not run
// (ErrRunning if one holds the directory): its entry in config.json, if
// there is a config, and its key file, so that a runtime started later
// neither signs with the key nor finds it again.
func (d Dir) RemoveDKIMKey(ctx context.Context, name string) error {
	err := d.EditConfig(ctx, func(doc *config.Document) error {
		delete(doc.DKIM, name)
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	p := d.Join(DKIMDir, dkim.KeyFile(name))
	if err := d.Host.Remove(ctx, p); err != nil {
		return fmt.Errorf("removing DKIM key %s: %w", d.describe(p), err)
	}
	return nil
}

// Remove deletes the server's state: everything with deleteMail, else
// the config, executable, locks and supervisor status, keeping the mail
// store (and the log) for a server created there again.
func (d Dir) Remove(ctx context.Context, deleteMail bool) error {
	if deleteMail {
		return d.Host.RemoveAll(ctx, d.Path)
	}
	for _, f := range []string{ConfigFile, Executable, LockFile, supervise.StatusFile, supervise.LockFile} {
		if err := d.Host.Remove(ctx, d.Join(f)); err != nil {
			return fmt.Errorf("removing %s: %w", d.describe(d.Join(f)), err)
		}
	}
	return nil
}

// describe names a path of the directory with its host.
func (d Dir) describe(p string) string { return Dir{Host: d.Host, Path: p}.String() }
