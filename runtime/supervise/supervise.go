// Package supervise keeps `runtime serve` alive: `runtime supervise` starts
// the serve process, restarts it with exponential backoff (capped) when it
// exits, publishes its state (running, backoff, crash-loop, restarts, how
// the last run ended) in supervisor.json for the runtime's status endpoint
// and the provider, holds one lock per state directory so there is only ever
// one supervisor, and on SIGTERM drains: it forwards SIGTERM to serve,
// waits for it to finish its sessions, and exits. It also writes the
// systemd unit used instead of it where systemd is PID 1 (SystemdUnit).
//
// The package knows nothing of the mail runtime beyond the command line
// that starts it and the lock and pid files it holds.
package supervise

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mailstack/terraform-provider-mailstack/internal/atomicfile"
	"github.com/mailstack/terraform-provider-mailstack/internal/host"
)

// Options configure Run. StateDir and Command are required.
type Options struct {
	// StateDir is the server's state directory: the supervisor's lock, pid
	// and status files live there, and the serve process runs in it.
	StateDir string
	// Command is the serve process's executable and arguments.
	Command []string
	// Logger receives the supervisor's events; nil means slog.Default().
	// The serve process writes to the supervisor's stdout and stderr.
	Logger *slog.Logger

	// MinBackoff is the delay before restarting after the first failure;
	// zero means 250ms.
	MinBackoff time.Duration
	// MaxBackoff caps the delay, which doubles with each failure in a row;
	// zero means 30s.
	MaxBackoff time.Duration
	// StableAfter is how long a run must last to count as healthy and
	// reset the backoff; zero means 10s.
	StableAfter time.Duration
	// CrashLoopAfter is how many failures in a row make the state
	// StateCrashLoop; zero means 3.
	CrashLoopAfter int
	// StopTimeout bounds how long serve may drain after SIGTERM before it
	// is killed; zero means 45s (serve's own drain deadline is 30s).
	StopTimeout time.Duration
	// LockWait is how long to wait for the lock of a supervisor that is
	// still exiting; zero means 5s.
	LockWait time.Duration

	// Requires names files in StateDir that serve cannot start without
	// (its config). While one of them, or the executable Command[0], is
	// missing, the supervisor waits in StateWaiting instead of starting
	// serve into a crash loop, and starts it once the file is back.
	Requires []string
	// PollInterval is how often a waiting supervisor looks for the missing
	// file; zero means 1s.
	PollInterval time.Duration

	// ServeLockFile and ServePIDFile name, inside StateDir, the lock the
	// serve process holds and its pid file. When both are set and a serve
	// process not started by this supervisor holds the lock (its supervisor
	// was killed), it is stopped (drained) before a new one starts.
	ServeLockFile, ServePIDFile string
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = 250 * time.Millisecond
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.StableAfter == 0 {
		o.StableAfter = 10 * time.Second
	}
	if o.CrashLoopAfter == 0 {
		o.CrashLoopAfter = 3
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = 45 * time.Second
	}
	if o.LockWait == 0 {
		o.LockWait = 5 * time.Second
	}
	if o.PollInterval == 0 {
		o.PollInterval = time.Second
	}
	return o
}

type supervisor struct {
	opts Options
	log  *slog.Logger
	st   Status
}

// Run supervises the serve process until ctx is done, then drains it and
// returns nil. It fails at once if another supervisor holds StateDir.
func Run(ctx context.Context, opts Options) error {
	if len(opts.Command) == 0 || opts.StateDir == "" {
		return errors.New("supervise: StateDir and Command are required")
	}
	opts = opts.withDefaults()
	dir := opts.StateDir
	unlock, err := lock(filepath.Join(dir, LockFile), opts.LockWait)
	if err != nil {
		if errors.Is(err, errLocked) {
			return fmt.Errorf("state directory %s: %w", dir, err)
		}
		return err
	}
	defer unlock()

	s := &supervisor{opts: opts, log: opts.Logger, st: Status{PID: os.Getpid(), StartedAt: time.Now().UTC()}}
	pidPath := filepath.Join(dir, PIDFile)
	if err := atomicfile.WriteFile(pidPath, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		return err
	}
	defer os.Remove(pidPath)
	s.log.Info("supervisor started", "state_dir", dir, "pid", os.Getpid(), "command", opts.Command)

	s.takeOver()
	s.loop(ctx)
	s.st.State, s.st.ServePID, s.st.NextStartAt = StateStopped, 0, time.Time{}
	s.publish()
	s.log.Info("supervisor stopped")
	return nil
}

func (s *supervisor) publish() {
	if err := writeStatus(s.opts.StateDir, s.st); err != nil {
		s.log.Error("writing supervisor status", "err", err)
	}
}

// loop starts serve, waits for it to exit and restarts it after a backoff,
// until ctx is done.
func (s *supervisor) loop(ctx context.Context) {
	for first := true; ; first = false {
		if !first {
			s.st.Restarts++
		}
		if !s.awaitRequired(ctx) {
			return
		}
		s.st.State, s.st.NextStartAt = StateStarting, time.Time{}
		s.publish()
		exit := s.runOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		ranFor, _ := time.ParseDuration(exit.RanFor)
		if ranFor >= s.opts.StableAfter {
			s.st.ConsecutiveFailures = 0
		}
		s.st.ConsecutiveFailures++
		s.st.LastExit, s.st.ServePID = exit, 0
		delay := Backoff(s.st.ConsecutiveFailures, s.opts.MinBackoff, s.opts.MaxBackoff)
		s.st.State = StateBackoff
		if s.st.ConsecutiveFailures >= s.opts.CrashLoopAfter {
			s.st.State = StateCrashLoop
		}
		s.st.NextStartAt = time.Now().Add(delay).UTC()
		s.publish()
		log := s.log.Warn
		if s.st.State == StateCrashLoop {
			log = s.log.Error
		}
		log("runtime exited; restarting", "exit", exit.String(), "state", s.st.State,
			"failures_in_a_row", s.st.ConsecutiveFailures, "restart_in", delay.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// missing returns the first file serve needs that is not there, or "".
func (s *supervisor) missing() string {
	files := []string{s.opts.Command[0]}
	for _, f := range s.opts.Requires {
		files = append(files, filepath.Join(s.opts.StateDir, f))
	}
	for _, f := range files {
		if _, err := os.Stat(f); errors.Is(err, fs.ErrNotExist) {
			return f
		}
	}
	return ""
}

// awaitRequired waits in StateWaiting while a file serve needs is
// missing; false if ctx ended first.
func (s *supervisor) awaitRequired(ctx context.Context) bool {
	missing := s.missing()
	if missing == "" {
		return true
	}
	s.st.State, s.st.Missing, s.st.NextStartAt = StateWaiting, missing, time.Time{}
	s.publish()
	s.log.Error("not starting the runtime: a file it needs is missing; waiting for it", "missing", missing)
	t := time.NewTicker(s.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		if now := s.missing(); now == "" {
			s.st.Missing = ""
			s.log.Info("the missing file is back; starting the runtime", "file", missing)
			return true
		} else if now != missing {
			missing, s.st.Missing = now, now
			s.publish()
		}
	}
}

// runOnce runs serve until it exits or ctx is done (then it drains serve).
func (s *supervisor) runOnce(ctx context.Context) *Exit {
	cmd := exec.Command(s.opts.Command[0], s.opts.Command[1:]...)
	cmd.Dir = s.opts.StateDir
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return &Exit{At: time.Now().UTC(), Code: -1, Error: err.Error(), RanFor: "0s"}
	}
	s.st.State, s.st.ServePID, s.st.ServeStartedAt = StateRunning, cmd.Process.Pid, started.UTC()
	s.publish()
	s.log.Info("runtime started", "serve_pid", cmd.Process.Pid, "restarts", s.st.Restarts)

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return exitOf(cmd, err, started)
	case <-ctx.Done():
	}
	s.st.State = StateStopping
	s.publish()
	s.log.Info("draining runtime", "serve_pid", cmd.Process.Pid, "deadline", s.opts.StopTimeout.String())
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		return exitOf(cmd, err, started)
	case <-time.After(s.opts.StopTimeout):
	}
	s.log.Error("runtime did not drain in time; killing it", "serve_pid", cmd.Process.Pid)
	_ = cmd.Process.Kill()
	return exitOf(cmd, <-done, started)
}

func exitOf(cmd *exec.Cmd, err error, started time.Time) *Exit {
	e := &Exit{At: time.Now().UTC(), Code: -1, RanFor: time.Since(started).Round(time.Millisecond).String()}
	ps := cmd.ProcessState
	if ps == nil {
		if err != nil {
			e.Error = err.Error()
		}
		return e
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		e.Signal = ws.Signal().String()
		return e
	}
	e.Code = ps.ExitCode()
	return e
}

// takeOver stops a serve process that holds the state directory without
// a supervisor (its supervisor was killed), draining it, so that the one
// this supervisor starts can take the directory.
func (s *supervisor) takeOver() {
	if s.opts.ServeLockFile == "" || s.opts.ServePIDFile == "" {
		return
	}
	lockPath := filepath.Join(s.opts.StateDir, s.opts.ServeLockFile)
	if !held(lockPath) {
		return
	}
	var h host.Local
	pid, err := h.ReadPID(filepath.Join(s.opts.StateDir, s.opts.ServePIDFile))
	if err != nil || pid <= 0 {
		s.log.Warn("the state directory is locked by a runtime whose pid is unknown; starting anyway", "err", err)
		return
	}
	// Only a process that is a runtime of this state directory: a stale
	// pid file may name a stranger that reused the number.
	if !h.Runs(pid, "--state-dir", s.opts.StateDir) {
		s.log.Warn("the state directory is locked, but its pid file names another process; starting anyway", "pid", pid)
		return
	}
	s.log.Warn("a runtime without a supervisor serves this state directory; draining it to take over", "pid", pid)
	if err := h.Stop(pid, s.opts.StopTimeout); err != nil {
		s.log.Error("stopping the unsupervised runtime", "pid", pid, "err", err)
	}
}

// lock takes an exclusive flock on path, retrying until wait has passed.
// The lock lives as long as the returned function is not called.
func lock(path string, wait time.Duration) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, errLocked
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// held reports whether some process holds an flock on path.
func held(path string) bool {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		return errors.Is(err, unix.EWOULDBLOCK)
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}
