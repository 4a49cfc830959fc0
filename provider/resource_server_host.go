package provider

import (
	"context"
	"fmt"
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
}

// runtimeOf is server name's runtime; exe is the executable to install
// (runtimeFor), "" where nothing is installed.
func (r *serverResource) runtimeOf(name, exe string) *serverRuntime {
	return &serverRuntime{name: name, dir: r.data.server(name), h: r.data.host, src: exe, systemd: r.data.systemd}
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
	// running: the control API answers and the runtime is supervised.
	running bool
	// status is the runtime's status when it answers.
	status *control.Status
	// warning explains why it is not running, when there is more to say.
	warning string
}

// observe reads the server settings in force and whether the runtime runs
// as it should: from the runtime when it answers, else from its config
// file. An error wrapping fs.ErrNotExist means there is no server.
func (s *serverRuntime) observe(ctx context.Context) (observation, error) {
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
				obs.warning = fmt.Sprintf("The runtime in %s (pid %d) serves, but no supervisor runs it, so nothing "+
					"would restart it; apply puts it back under its supervisor.", s.dir, st.PID)
			}
			return obs, nil
		}
	}
	doc, err := s.dir.LoadConfig(ctx)
	if err != nil {
		return observation{}, err
	}
	obs := observation{settings: doc.Server}
	if sup, err := s.dir.SupervisorStatus(ctx); err == nil && s.supervisorPID(ctx) == sup.PID &&
		(sup.State == supervise.StateCrashLoop || sup.State == supervise.StateBackoff) {
		obs.warning = fmt.Sprintf("The runtime in %s keeps exiting: its supervisor (pid %d) is in state %q after %d "+
			"restarts; the last run %s. The end of %s says:\n%s", s.dir, sup.PID, sup.State, sup.Restarts,
			sup.LastExit, s.where(s.logPath()), s.tail(ctx))
	}
	return obs, nil
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
