package provider

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
)

// providerData is what resources and data sources receive from Configure:
// the one door to the provider's host. Nothing in provider/ reaches a
// target path other than through host, and a running runtime other than
// through its control API (statedir.Dir.Client).
type providerData struct {
	version string
	host    host.Host
	// stateDir is the state_dir attribute, absolute on the local host;
	// on an SSH host it may be relative to the login's home (see
	// stateDirPath).
	stateDir string
	// runtimeExe is the provider's own executable (or the one
	// MAILSTACK_RUNTIME_EXECUTABLE names), installed as the runtime on
	// hosts of its platform.
	runtimeExe string

	// clock tells renewal and expiry logic the time; tests move it
	// instead of sleeping (nil: time.Now).
	clock func() time.Time
	// getenv reads environment variables, such as the passwords terraform
	// import takes from MAILSTACK_KEYSTORE_PASSWORD; nil means os.Getenv.
	getenv func(string) string

	mu          sync.Mutex
	absStateDir string      // stateDir made absolute on the host, once known
	owner       *host.Owner // the user the provider acts as on the host, once known

	// planned: the listeners planned in this run (resource_listener_clash.go).
	planned plannedListeners

	// factsMu serializes probing the host, so that concurrent callers
	// wait for one probe; facts holds its answer once there is one.
	factsMu sync.Mutex
	facts   *host.Facts
}

// now is the provider's time.
func (d *providerData) now() time.Time {
	if d == nil || d.clock == nil {
		return time.Now()
	}
	return d.clock()
}

// env reads the environment variable k.
func (d *providerData) env(k string) string {
	if d == nil || d.getenv == nil {
		return os.Getenv(k)
	}
	return d.getenv(k)
}

// configuredData extracts the provider's data in a resource's or data
// source's Configure; nil (with no error) before the provider is configured.
func configuredData(raw any, diags *diag.Diagnostics) *providerData {
	if raw == nil {
		return nil
	}
	data, ok := raw.(*providerData)
	if !ok {
		diags.AddError("Unexpected Provider Data",
			fmt.Sprintf("Expected *providerData, got %T. This is always a bug in the provider.", raw))
		return nil
	}
	return data
}

// server is the state directory of server serverID (a mailstack_server
// id: its folder under the provider's state_dir) on the provider's host.
func (d *providerData) server(serverID string) statedir.Dir {
	return statedir.Dir{Host: d.host, Path: path.Join(d.stateDirPath(), serverID)}
}

// stateDirPath is state_dir as an absolute path on the host. Resolving a
// relative one on an SSH host needs the connection; when that fails the
// relative path is returned, and the next operation on the host reports
// the failure.
func (d *providerData) stateDirPath() string {
	if path.IsAbs(d.stateDir) {
		return d.stateDir
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.absStateDir == "" {
		if abs, err := d.host.Abs(d.stateDir); err == nil {
			d.absStateDir = abs
		} else {
			return d.stateDir
		}
	}
	return d.absStateDir
}

// hostFacts is host.Detect once per provider run: every server's plan,
// read, apply and delete asks for the platform or the service manager,
// and over SSH each probe is a remote command. A probe that could not run
// (the host did not answer) is not remembered, so that a lost connection
// does not decide for the rest of the run.
func (d *providerData) hostFacts(ctx context.Context) (host.Facts, error) {
	d.factsMu.Lock()
	defer d.factsMu.Unlock()
	if d.facts == nil {
		f, err := host.Detect(ctx, d.host)
		if err != nil {
			return f, err
		}
		d.facts = &f
	}
	return *d.facts, nil
}

// hostPlatform is the host's platform, detected once per provider run.
func (d *providerData) hostPlatform(ctx context.Context) (host.Platform, error) {
	f, err := d.hostFacts(ctx)
	if err != nil {
		return host.Platform{}, err
	}
	return f.Platform, f.PlatformErr
}

// systemd is the host's service manager, detected once per provider run;
// a probe that could not run reports none, as host.DetectSystemd does.
func (d *providerData) systemd(ctx context.Context) (host.Systemd, bool) {
	f, _ := d.hostFacts(ctx)
	return f.Systemd, f.HasSystemd
}

// hostOwner is the user and group the provider acts as on the host (`id
// -u`, `id -g` there), which own every server's state directory; looked up
// once per provider run.
func (d *providerData) hostOwner(ctx context.Context) (host.Owner, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.owner == nil {
		var ids [2]int
		for i, flag := range []string{"-u", "-g"} {
			out, err := d.host.Run(ctx, "id", flag)
			if err != nil {
				return host.Owner{}, fmt.Errorf("finding the provider's user on %s: %w", d.host, err)
			}
			if ids[i], err = strconv.Atoi(strings.TrimSpace(string(out))); err != nil {
				return host.Owner{}, fmt.Errorf("finding the provider's user on %s: `id %s` printed %q", d.host, flag, out)
			}
		}
		d.owner = &host.Owner{UID: ids[0], GID: ids[1]}
	}
	return *d.owner, nil
}

// runtimeFor picks the executable to install as the runtime on the host:
// configured (a server's runtime_executable) if it is built for the
// host's platform, else the provider's own if that is. None fitting is an
// error that names the platforms, found before anything changes on the
// host.
func (d *providerData) runtimeFor(ctx context.Context, configured string) (string, error) {
	want, err := d.hostPlatform(ctx)
	if err != nil {
		return "", err
	}
	var found []string
	for _, exe := range []string{configured, d.runtimeExe} {
		if exe == "" {
			continue
		}
		got, err := host.ExecutablePlatform(exe)
		if err != nil {
			return "", err
		}
		if got == want {
			return exe, nil
		}
		found = append(found, fmt.Sprintf("%s is built for %s", exe, got))
	}
	return "", fmt.Errorf("%s runs %s, and no runtime executable for it is at hand: %s. Set runtime_executable to "+
		"this provider built for %s (GOOS=%s GOARCH=%s go build).", d.host, want, strings.Join(found, "; "), want, want.OS, want.Arch)
}

// client returns the control API client of the runtime of server
// serverID.
func (d *providerData) client(serverID string) *control.Client {
	return d.server(serverID).Client()
}

// file is a keystore file on the provider's host, as internal/keystore
// reads and writes it: a rewrite keeps its mode, owner and group, and its
// lock file lives under the state directory (host.LockDir), where the
// runtime takes the same lock, never in the keystore's folder.
func (d *providerData) file(p string) host.File {
	return host.File{Host: d.host, Path: p, LockPath: host.LockPathFor(d.stateDirPath(), d.absPath(p))}
}

// absPath is p made absolute on the host, or p when that fails.
func (d *providerData) absPath(p string) string {
	if a, err := d.host.Abs(p); err == nil {
		return a
	}
	return p
}

// abs makes a path absolute on the provider's host, for the runtime,
// which runs in its own folder.
func (d *providerData) abs(p string) (string, error) { return d.host.Abs(p) }

// onHost names a path with the provider's host when it is not the local
// one, for messages.
func (d *providerData) onHost(p string) string {
	if _, local := d.host.(host.Local); local {
		return p
	}
	return p + " on " + d.host.String()
}

// missing reports whether nothing at all is at p on the host (a file
// that cannot be looked at is not missing).
func (d *providerData) missing(ctx context.Context, p string) bool {
	_, err := d.host.Stat(ctx, p)
	return errors.Is(err, fs.ErrNotExist)
}

// exists reports whether a regular file exists at p on the host.
func (d *providerData) exists(ctx context.Context, p string) bool {
	st, err := d.host.Stat(ctx, p)
	return err == nil && st.Mode.IsRegular()
}

// mkdirFor creates the folder of file p on the host (mode 0700) where it
// is missing.
func (d *providerData) mkdirFor(ctx context.Context, p string) error {
	return d.host.MkdirAll(ctx, path.Dir(p), 0o700)
}

// goneWithServer reports whether a deletion that failed with err needs no
// retry: the object is not there (404), or the runtime does not answer
// because its server is gone, and took its objects with it.
func (d *providerData) goneWithServer(ctx context.Context, serverID string, err error) bool {
	if err == nil || control.IsNotFound(err) {
		return true
	}
	var apiErr *control.Error
	if errors.As(err, &apiErr) {
		return false
	}
	exists, statErr := d.server(serverID).Exists(ctx)
	return statErr == nil && !exists
}

// importID takes the host off an import id. An id may name the host it is
// on, as "ssh://[user@]host[:port]/" followed by the object's usual id
// (a keystore's absolute path keeps its leading slash:
// "ssh://mx1.example.com//etc/mail/james.keystore"); the host must then
// be this provider configuration's, so that an import never adopts an
// object of another host. An id without a host names this one's.
func (d *providerData) importID(id string, diags *diag.Diagnostics) (string, bool) {
	rest, named := strings.CutPrefix(id, "ssh://")
	if !named {
		return id, true
	}
	authority, local, _ := strings.Cut(rest, "/")
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		authority = authority[i+1:]
	}
	addr, err := host.SSHAddress(authority)
	if err != nil {
		diags.AddError("Invalid Import ID", fmt.Sprintf("%q: %s", id, err))
		return "", false
	}
	if sh, ok := d.host.(*host.SSH); !ok || sh.Address() != addr {
		diags.AddError("Import ID Names Another Host", fmt.Sprintf("The import id %q names host %s, but this provider "+
			"configuration manages %s. Import it with the provider configuration of that host (provider = mailstack.<alias> "+
			"in the resource block).", id, addr, d.host))
		return "", false
	}
	return local, true
}
