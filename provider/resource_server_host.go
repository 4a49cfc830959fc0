package provider

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	mailruntime "github.com/mailstack/terraform-provider-mailstack/runtime"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
	"github.com/mailstack/terraform-provider-mailstack/runtime/supervise"
)

// serverRuntime is one server's runtime on the host: its executable, its
// supervisor (builtin or systemd) and its control API. The server
// resource decides what should happen; this file makes it happen.
type serverRuntime struct {
	name, dir string
	// src is the executable installed as the runtime (the provider's own).
	src string
}

func (r *serverResource) runtimeOf(name string) *serverRuntime {
	return &serverRuntime{name: name, dir: r.dir(name), src: r.data.runtimeExe}
}

func (s *serverRuntime) exe() string     { return filepath.Join(s.dir, runtimeBinary) }
func (s *serverRuntime) logPath() string { return filepath.Join(s.dir, runtimeLog) }
func (s *serverRuntime) unit() string    { return supervise.UnitName(s.name) }

// resolveSupervisor turns the supervisor attribute into the supervisor
// used on this host: builtin or systemd.
func resolveSupervisor(configured string) (string, error) {
	_, systemd := hostLocal.Systemd()
	switch configured {
	case supervisorSystemd:
		if !systemd {
			return "", errors.New(`supervisor = "systemd" needs systemd running as PID 1 on the target host ` +
				`(and, for a user other than root, their user manager), and this host has none; use "builtin" or "auto"`)
		}
		return supervisorSystemd, nil
	case supervisorBuiltin:
		return supervisorBuiltin, nil
	}
	if systemd {
		return supervisorSystemd, nil
	}
	return supervisorBuiltin, nil
}

// currentSupervisor is the supervisor this server was started under: its
// systemd unit if one is installed, else builtin.
func (s *serverRuntime) currentSupervisor() string {
	if sd, ok := hostLocal.Systemd(); ok && sd.Installed(s.unit()) {
		return supervisorSystemd
	}
	return supervisorBuiltin
}

// install copies the provider's executable into the state directory.
func (s *serverRuntime) install() (bool, error) {
	return hostLocal.InstallExecutable(s.src, s.exe())
}

// supervisorPID is the pid of this server's live builtin supervisor, or 0.
// The pid must run `supervise` for this state directory: a stale pid file
// may name a process that reused the number.
func (s *serverRuntime) supervisorPID() int {
	pid, err := hostLocal.ReadPID(filepath.Join(s.dir, supervise.PIDFile))
	if err != nil || pid == 0 || !hostLocal.Runs(pid, "supervise", "--state-dir", s.dir) {
		return 0
	}
	return pid
}

// servePID is the pid of this server's live serve process, or 0.
func (s *serverRuntime) servePID() int {
	pid, err := hostLocal.ReadPID(filepath.Join(s.dir, mailruntime.PIDFile))
	if err != nil || pid == 0 || !hostLocal.Runs(pid, "serve", "--state-dir", s.dir) {
		return 0
	}
	return pid
}

// start makes sure the runtime runs under mode and returns its status once
// the control API answers (listeners are bound before it does).
func (s *serverRuntime) start(ctx context.Context, mode string) (control.Status, error) {
	if _, err := s.install(); err != nil {
		return control.Status{}, err
	}
	if mode == supervisorSystemd {
		return s.startSystemd(ctx)
	}
	client := control.NewClient(s.dir)
	if pid := s.supervisorPID(); pid != 0 {
		if st, err := client.Status(ctx); err == nil && st.Supervisor != nil && st.Supervisor.PID == pid {
			return st, nil // running and supervised
		}
		// A supervisor whose runtime does not answer is backing off after
		// failures: restart it so a repaired config is used now, not
		// after the backoff.
		if err := hostLocal.Stop(pid, stopTimeout); err != nil {
			return control.Status{}, err
		}
	}
	pid, err := hostLocal.StartDetached(s.exe(), []string{"runtime", "supervise", "--state-dir", s.dir}, s.logPath())
	if err != nil {
		return control.Status{}, err
	}
	deadline := time.Now().Add(startTimeout)
	for {
		st, err := client.Status(ctx)
		if err == nil && st.Supervisor != nil && st.Supervisor.PID == pid {
			return st, nil
		}
		if !hostLocal.Alive(pid) {
			return control.Status{}, fmt.Errorf("the supervisor exited during start-up; the end of %s says:\n%s", s.logPath(), tail(s.logPath(), 10))
		}
		if sup, err := supervise.ReadStatus(s.dir); err == nil && sup.PID == pid && sup.LastExit != nil {
			// The runtime exited before it answered: a start-up failure
			// (config, store, lock) that restarting will not fix.
			_ = hostLocal.Stop(pid, 5*time.Second)
			return control.Status{}, fmt.Errorf("the runtime %s during start-up; the end of %s says:\n%s",
				sup.LastExit, s.logPath(), tail(s.logPath(), 10))
		}
		if time.Now().After(deadline) {
			_ = hostLocal.Stop(pid, stopTimeout)
			return control.Status{}, fmt.Errorf("the runtime did not answer on its control socket within %s; see %s", startTimeout, s.logPath())
		}
		select {
		case <-ctx.Done():
			return control.Status{}, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func (s *serverRuntime) startSystemd(ctx context.Context) (control.Status, error) {
	sd, _ := hostLocal.Systemd()
	// A builtin supervisor or a runtime it left would hold the directory.
	if err := s.stop(ctx, supervisorBuiltin); err != nil {
		return control.Status{}, err
	}
	unit := supervise.SystemdUnit(supervise.Unit{
		Name: s.name, Executable: s.exe(), StateDir: s.dir, LogFile: s.logPath(), User: sd.User,
	})
	if err := sd.Install(ctx, s.unit(), []byte(unit)); err != nil {
		return control.Status{}, err
	}
	client := control.NewClient(s.dir)
	deadline := time.Now().Add(startTimeout)
	for {
		if st, err := client.Status(ctx); err == nil {
			return st, nil
		}
		if time.Now().After(deadline) {
			return control.Status{}, fmt.Errorf("the runtime (systemd unit %s) did not answer on its control socket within %s; "+
				"see `systemctl status %s` and the end of %s:\n%s", s.unit(), startTimeout, s.unit(), s.logPath(), tail(s.logPath(), 10))
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
		sd, _ := hostLocal.Systemd()
		if err := sd.Remove(ctx, s.unit()); err != nil {
			return err
		}
	} else if pid := s.supervisorPID(); pid != 0 {
		if err := hostLocal.Stop(pid, stopTimeout); err != nil {
			return err
		}
	}
	if pid := s.servePID(); pid != 0 {
		return hostLocal.Stop(pid, stopTimeout)
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
// file. An error wrapping os.ErrNotExist means there is no server.
func (s *serverRuntime) observe(ctx context.Context) (observation, error) {
	client := control.NewClient(s.dir)
	if st, err := client.Status(ctx); err == nil {
		if settings, err := client.Server(ctx); err == nil {
			obs := observation{settings: settings, status: &st}
			switch s.currentSupervisor() {
			case supervisorSystemd:
				sd, _ := hostLocal.Systemd()
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
	doc, err := mailruntime.LoadConfig(s.dir)
	if err != nil {
		return observation{}, err
	}
	obs := observation{settings: doc.Server}
	if sup, err := supervise.ReadStatus(s.dir); err == nil && s.supervisorPID() == sup.PID &&
		(sup.State == supervise.StateCrashLoop || sup.State == supervise.StateBackoff) {
		obs.warning = fmt.Sprintf("The runtime in %s keeps exiting: its supervisor (pid %d) is in state %q after %d "+
			"restarts; the last run %s. The end of %s says:\n%s", s.dir, sup.PID, sup.State, sup.Restarts,
			sup.LastExit, s.logPath(), tail(s.logPath(), 10))
	}
	return obs, nil
}
