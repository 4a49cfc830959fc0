package provider

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-log/tflog"
	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
	"github.com/mailstack/terraform-provider-mailstack/runtime/supervise"
)

// serverRuntime is one server's runtime on the host: its executable, its
// supervisor (builtin or systemd) and its control API. The server
// resource decides what should happen; this file makes it happen, on the
// provider's host and through its state directory (runtime/statedir).
type serverRuntime struct {
	name string
	dir  statedir.Dir
	h    host.Host
	// src is the local executable installed as the runtime.
	src string
	// systemd is the host's service manager (providerData.systemd).
	systemd func(context.Context) (host.Systemd, bool)
	// owner is the user and group the state directory belongs to.
	owner func(context.Context) (host.Owner, error)
}

// runtimeOf is server name's runtime; exe is the executable to install
// (runtimeFor), "" where nothing is installed.
func (r *serverResource) runtimeOf(name, exe string) *serverRuntime {
	return &serverRuntime{name: name, dir: r.data.server(name), h: r.data.host, src: exe, systemd: r.data.systemd, owner: r.data.hostOwner}
}

func (s *serverRuntime) exe() string     { return s.dir.Join(statedir.Executable) }
func (s *serverRuntime) logPath() string { return s.dir.Join(statedir.LogFile) }
func (s *serverRuntime) unit() string    { return supervise.UnitName(s.name) }

// resolveSupervisor turns the supervisor attribute into the supervisor
// used on the provider's host: builtin or systemd.
func resolveSupervisor(ctx context.Context, d *providerData, configured string) (string, error) {
	if configured == supervisorBuiltin {
		return supervisorBuiltin, nil
	}
	_, systemd := d.systemd(ctx)
	switch configured {
	case supervisorSystemd:
		if !systemd {
			return "", fmt.Errorf(`supervisor = "systemd" needs systemd running as PID 1 on the target host `+
				`(and, for a user other than root, their user manager), and %s has none; use "builtin" or "auto"`, d.host)
		}
		return supervisorSystemd, nil
	}
	if systemd {
		return supervisorSystemd, nil
	}
	return supervisorBuiltin, nil
}

// currentSupervisor is the supervisor this server was started under: its
// systemd unit if one is installed, else builtin.
func (s *serverRuntime) currentSupervisor(ctx context.Context) string {
	if sd, ok := s.systemd(ctx); ok && sd.Installed(ctx, s.unit()) {
		return supervisorSystemd
	}
	return supervisorBuiltin
}

// install copies the runtime executable into the state directory unless
// it is there already.
func (s *serverRuntime) install(ctx context.Context) (bool, error) {
	copied, err := host.InstallExecutable(ctx, s.h, s.src, s.exe())
	tflog.Debug(ctx, "runtime executable in the state directory", map[string]any{"id": s.name, "path": s.exe(), "copied": copied})
	return copied, err
}

// supervisorPID is the pid of this server's live builtin supervisor, or 0.
// The pid must run `supervise` for this state directory: a stale pid file
// may name a process that reused the number.
func (s *serverRuntime) supervisorPID(ctx context.Context) int {
	pid, err := host.ReadPID(ctx, s.h, s.dir.Join(supervise.PIDFile))
	if err != nil || pid == 0 || !host.Runs(ctx, s.h, pid, "supervise", "--state-dir", s.dir.Path) {
		return 0
	}
	return pid
}

// servePID is the pid of this server's live serve process, or 0.
func (s *serverRuntime) servePID(ctx context.Context) int {
	pid, err := host.ReadPID(ctx, s.h, s.dir.Join(statedir.PIDFile))
	if err != nil || pid == 0 || !host.Runs(ctx, s.h, pid, "serve", "--state-dir", s.dir.Path) {
		return 0
	}
	return pid
}

// start makes sure the runtime runs under mode and returns its status once
// the control API answers (listeners are bound before it does).
func (s *serverRuntime) start(ctx context.Context, mode string) (control.Status, error) {
	if err := s.repairDir(ctx); err != nil {
		return control.Status{}, err
	}
	if _, err := s.install(ctx); err != nil {
		return control.Status{}, err
	}
	if mode == supervisorSystemd {
		return s.startSystemd(ctx)
	}
	client := s.dir.Client()
	if pid := s.supervisorPID(ctx); pid != 0 {
		if st, err := client.Status(ctx); err == nil && st.Supervisor != nil && st.Supervisor.PID == pid {
			return st, nil // running and supervised
		}
		// A supervisor whose runtime does not answer is backing off after
		// failures: restart it so a repaired config is used now, not
		// after the backoff.
		tflog.Debug(ctx, "restarting a supervisor whose runtime does not answer", map[string]any{"id": s.name, "pid": pid})
		if err := host.Stop(ctx, s.h, pid, stopTimeout); err != nil {
			return control.Status{}, err
		}
	}
	pid, err := s.h.Start(ctx, host.Command{
		Path: s.exe(), Args: []string{"runtime", "supervise", "--state-dir", s.dir.Path},
		Dir: s.dir.Path, LogFile: s.logPath(),
	})
	if err != nil {
		return control.Status{}, err
	}
	deadline := time.Now().Add(startTimeout)
	for {
		st, err := client.Status(ctx)
		if err == nil && st.Supervisor != nil && st.Supervisor.PID == pid {
			return st, nil
		}
		if !host.Alive(ctx, s.h, pid) {
			return control.Status{}, fmt.Errorf("the supervisor exited during start-up; the end of %s says:\n%s", s.where(s.logPath()), s.tail(ctx))
		}
		if sup, err := s.dir.SupervisorStatus(ctx); err == nil && sup.PID == pid && sup.LastExit != nil {
			// The runtime exited before it answered: a start-up failure
			// (config, store, lock) that restarting will not fix.
			_ = host.Stop(ctx, s.h, pid, 5*time.Second)
			return control.Status{}, fmt.Errorf("the runtime %s during start-up; the end of %s says:\n%s",
				sup.LastExit, s.where(s.logPath()), s.tail(ctx))
		}
		if time.Now().After(deadline) {
			_ = host.Stop(ctx, s.h, pid, stopTimeout)
			return control.Status{}, fmt.Errorf("the runtime did not answer on its control socket within %s; see %s", startTimeout, s.where(s.logPath()))
		}
		select {
		case <-ctx.Done():
			return control.Status{}, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func (s *serverRuntime) startSystemd(ctx context.Context) (control.Status, error) {
	sd, _ := s.systemd(ctx)
	// A builtin supervisor or a runtime it left would hold the directory.
	if err := s.stop(ctx, supervisorBuiltin); err != nil {
		return control.Status{}, err
	}
	unit := supervise.SystemdUnit(supervise.Unit{
		Name: s.name, Executable: s.exe(), StateDir: s.dir.Path, LogFile: s.logPath(), User: sd.User,
	})
	tflog.Debug(ctx, "installing and starting the systemd unit", map[string]any{"id": s.name, "unit": s.unit()})
	if err := sd.Install(ctx, s.unit(), []byte(unit)); err != nil {
		return control.Status{}, err
	}
	client := s.dir.Client()
	deadline := time.Now().Add(startTimeout)
	for {
		if st, err := client.Status(ctx); err == nil {
			return st, nil
		}
		if time.Now().After(deadline) {
			return control.Status{}, fmt.Errorf("the runtime (systemd unit %s) did not answer on its control socket within %s; "+
				"see `systemctl status %s` and the end of %s:\n%s", s.unit(), startTimeout, s.unit(), s.where(s.logPath()), s.tail(ctx))
		}
		select {
		case <-ctx.Done():
			return control.Status{}, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// stop drains and stops the runtime started under mode, and a runtime
// left without its supervisor, if any.
func (s *serverRuntime) stop(ctx context.Context, mode string) error {
	if mode == supervisorSystemd {
		tflog.Debug(ctx, "removing the systemd unit, which stops the runtime", map[string]any{"id": s.name, "unit": s.unit()})
		sd, _ := s.systemd(ctx)
		if err := sd.Remove(ctx, s.unit()); err != nil {
			return err
		}
	} else if pid := s.supervisorPID(ctx); pid != 0 {
		tflog.Debug(ctx, "stopping the supervisor (SIGTERM; the runtime drains)", map[string]any{"id": s.name, "pid": pid})
		if err := host.Stop(ctx, s.h, pid, stopTimeout); err != nil {
			return err
		}
	}
	if pid := s.servePID(ctx); pid != 0 {
		tflog.Debug(ctx, "stopping a runtime left without its supervisor", map[string]any{"id": s.name, "pid": pid})
		return host.Stop(ctx, s.h, pid, stopTimeout)
	}
	return nil
}

// observation is what Read learns about a server on the host.
type observation struct {
	settings config.Server
	// configMissing: config.json is gone from a state directory that still
	// holds the server (its executable, its supervisor's status); settings
	// are then unknown.
	configMissing bool
	// running: the control API answers, the runtime is supervised, and its
	// state directory is as a start needs it (dirProblem is "").
	running bool
	// status is the runtime's status when it answers.
	status *control.Status
	// executableSHA256 is the SHA-256 of the executable a (re)start would
	// run: the running runtime's while the file in the state directory is
	// that one, else the file's ("" when it is missing).
	executableSHA256 string
	// warnings explain why it is not running as it should.
	warnings []string
}

// observe reads the server settings in force and whether the runtime runs
// as it should: from the runtime when it answers, else from its config
// file. An error wrapping fs.ErrNotExist means there is no server.
func (s *serverRuntime) observe(ctx context.Context) (observation, error) {
	obs, err := s.observeRuntime(ctx)
	if err != nil {
		return obs, err
	}
	if problem := s.dirProblem(ctx); problem != "" {
		obs.running = false
		obs.warnings = append(obs.warnings, problem+"; apply puts it back.")
	}
	disk := ""
	_, err = s.h.Stat(ctx, s.exe())
	if err == nil {
		disk, err = s.h.SHA256(ctx, s.exe())
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		obs.executableSHA256 = ""
		obs.warnings = append(obs.warnings, fmt.Sprintf("The runtime executable %s is missing, so the runtime "+
			"cannot be restarted; apply installs it again.", s.where(s.exe())))
	case err != nil:
		return obs, fmt.Errorf("reading the runtime executable %s: %w", s.where(s.exe()), err)
	case obs.status == nil || disk != obs.status.ExecutableSHA256:
		if obs.status != nil {
			obs.warnings = append(obs.warnings, fmt.Sprintf("The runtime executable %s is not the one the runtime "+
				"runs (SHA-256 %s, not %s): a restart would run another program; apply installs the right one.",
				s.where(s.exe()), disk, obs.status.ExecutableSHA256))
		}
		obs.executableSHA256 = disk
	default:
		obs.executableSHA256 = disk
	}
	return obs, nil
}

// observeRuntime asks the runtime, and falls back on its files.
func (s *serverRuntime) observeRuntime(ctx context.Context) (observation, error) {
	client := s.dir.Client()
	if st, err := client.Status(ctx); err == nil {
		if settings, err := client.Server(ctx); err == nil {
			obs := observation{settings: settings, status: &st}
			switch s.currentSupervisor(ctx) {
			case supervisorSystemd:
				sd, _ := s.systemd(ctx)
				obs.running = sd.Active(ctx, s.unit())
			default:
				obs.running = st.Supervisor != nil
			}
			if !obs.running {
				obs.warnings = append(obs.warnings, fmt.Sprintf("The runtime in %s (pid %d) serves, but no supervisor "+
					"runs it, so nothing would restart it; apply puts it back under its supervisor.", s.dir, st.PID))
			}
			if _, err := s.h.Stat(ctx, s.dir.Join(statedir.ConfigFile)); errors.Is(err, fs.ErrNotExist) {
				obs.running = false
				obs.warnings = append(obs.warnings, fmt.Sprintf("The runtime serves, but its config %s is missing: "+
					"a restart would find no config; apply has the runtime write it again.", s.where(s.dir.Join(statedir.ConfigFile))))
			}
			return obs, nil
		}
	}
	var obs observation
	doc, err := s.dir.LoadConfig(ctx)
	switch {
	case errors.Is(err, fs.ErrNotExist) && s.holdsServer(ctx):
		obs.configMissing = true
		obs.warnings = append(obs.warnings, fmt.Sprintf("The runtime's config %s is missing and the runtime does not "+
			"run; apply writes it again from this configuration, restarts the runtime and puts its listeners back.",
			s.where(s.dir.Join(statedir.ConfigFile))))
	case err != nil:
		return observation{}, err
	default:
		obs.settings = doc.Server
	}
	if sup, err := s.dir.SupervisorStatus(ctx); err == nil && s.supervisorPID(ctx) == sup.PID &&
		(sup.State == supervise.StateCrashLoop || sup.State == supervise.StateBackoff) {
		obs.warnings = append(obs.warnings, fmt.Sprintf("The runtime in %s keeps exiting: its supervisor (pid %d) is in "+
			"state %q after %d restarts; the last run %s. The end of %s says:\n%s", s.dir, sup.PID, sup.State,
			sup.Restarts, sup.LastExit, s.where(s.logPath()), s.tail(ctx)))
	}
	return obs, nil
}

// holdsServer reports whether the state directory still holds a server
// whose config.json is gone: its executable or its supervisor's status is
// there (destroy removes both; it may keep the mail).
func (s *serverRuntime) holdsServer(ctx context.Context) bool {
	for _, f := range []string{statedir.Executable, supervise.StatusFile} {
		if _, err := s.h.Stat(ctx, s.dir.Join(f)); err == nil {
			return true
		}
	}
	return false
}

// stateDirMode is the mode of a server's state directory: it holds
// passwords (config.json), keys and mail.
const stateDirMode = 0o700

// dirProblem says what is wrong with the state directory's owner or mode,
// "" if nothing is (or it cannot be told).
func (s *serverRuntime) dirProblem(ctx context.Context) string {
	st, err := s.h.Stat(ctx, s.dir.Path)
	if err != nil {
		return ""
	}
	var problems []string
	if owner, err := s.owner(ctx); err == nil && st.UID >= 0 && (st.UID != owner.UID || st.GID != owner.GID) {
		problems = append(problems, fmt.Sprintf("is owned by %d:%d, not by the provider's user %d:%d", st.UID, st.GID, owner.UID, owner.GID))
	}
	if perm := st.Mode.Perm(); perm != stateDirMode {
		problems = append(problems, fmt.Sprintf("has mode %04o, not %04o", perm, stateDirMode))
	}
	if len(problems) == 0 {
		return ""
	}
	return fmt.Sprintf("The state directory %s %s", s.dir, strings.Join(problems, " and "))
}

// repairDir gives the state directory back to the provider's user (with
// everything in it) and its mode back to 0700, where they changed.
func (s *serverRuntime) repairDir(ctx context.Context) error {
	st, err := s.h.Stat(ctx, s.dir.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // created by whoever needs it
	}
	if err != nil {
		return fmt.Errorf("checking the state directory %s: %w", s.dir, err)
	}
	owner, err := s.owner(ctx)
	if err != nil {
		return err
	}
	if st.UID >= 0 && (st.UID != owner.UID || st.GID != owner.GID) {
		ids := fmt.Sprintf("%d:%d", owner.UID, owner.GID)
		tflog.Debug(ctx, "giving the state directory back to the provider's user", map[string]any{"id": s.name, "owner": ids})
		if _, err := s.h.Run(ctx, "chown", "-R", ids, s.dir.Path); err != nil {
			return fmt.Errorf("the state directory %s is owned by %d:%d and the provider's user %s cannot take it "+
				"back (as root: chown -R %s %s): %w", s.dir, st.UID, st.GID, ids, ids, s.dir.Path, err)
		}
	}
	if st.Mode.Perm() != stateDirMode {
		tflog.Debug(ctx, "setting the state directory's mode back to 0700", map[string]any{"id": s.name, "mode": fmt.Sprintf("%04o", st.Mode.Perm())})
		if _, err := s.h.Run(ctx, "chmod", "0700", s.dir.Path); err != nil {
			return fmt.Errorf("setting the mode of the state directory %s back to 0700: %w", s.dir, err)
		}
	}
	return nil
}

// where names a path on the server's host.
func (s *serverRuntime) where(p string) string { return statedir.Dir{Host: s.h, Path: p}.String() }

// tail returns the last lines of the runtime's log, for error messages.
func (s *serverRuntime) tail(ctx context.Context) string {
	b, err := s.h.ReadFile(ctx, s.logPath())
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if n := 10; len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
