package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

// The test binary doubles as the supervised process: with childEnv set it
// plays a runtime instead of running tests.
const childEnv = "SUPERVISE_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode))
	}
	os.Exit(m.Run())
}

// child plays a runtime. "serve" holds serve.lock, writes serve.pid and
// runs until SIGTERM, then drains for 100ms and writes "drained"; "crash"
// exits with code 3 at once.
func child(mode string) int {
	dir := os.Getenv("SUPERVISE_TEST_DIR")
	switch mode {
	case "crash":
		return 3
	case "serve":
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		f, err := os.OpenFile(filepath.Join(dir, "serve.lock"), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return 10
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			fmt.Fprintln(os.Stderr, "serve.lock is held")
			return 11
		}
		os.WriteFile(filepath.Join(dir, "serve.pid"), []byte(strconv.Itoa(os.Getpid())), 0o600)
		<-term
		time.Sleep(100 * time.Millisecond)
		os.WriteFile(filepath.Join(dir, "drained"), []byte(strconv.Itoa(os.Getpid())), 0o600)
		return 0
	}
	return 2
}

type run struct {
	cancel context.CancelFunc
	done   chan error
}

// start runs a supervisor of the test binary in mode on dir.
func start(t *testing.T, dir, mode string, tune func(*Options)) *run {
	t.Helper()
	t.Setenv(childEnv, mode)
	t.Setenv("SUPERVISE_TEST_DIR", dir)
	opts := Options{
		StateDir:      dir,
		Command:       []string{os.Args[0], "--state-dir", dir},
		Logger:        slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		MinBackoff:    20 * time.Millisecond,
		MaxBackoff:    200 * time.Millisecond,
		StableAfter:   time.Second,
		StopTimeout:   5 * time.Second,
		LockWait:      100 * time.Millisecond,
		ServeLockFile: "serve.lock",
		ServePIDFile:  "serve.pid",
	}
	if tune != nil {
		tune(&opts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- Run(ctx, opts) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *run) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(testutil.HangGuard):
		t.Fatalf("supervisor did not stop within %v", testutil.HangGuard)
		return nil
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// waitStatus polls supervisor.json until ok accepts it.
func waitStatus(t *testing.T, dir string, what string, ok func(Status) bool) Status {
	t.Helper()
	deadline := time.Now().Add(testutil.HangGuard)
	var last Status
	for time.Now().Before(deadline) {
		if s, err := ReadStatus(dir); err == nil {
			last = s
			if ok(s) {
				return s
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("supervisor status never showed %s; last: %+v", what, last)
	return last
}

func waitFile(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(testutil.HangGuard)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(path); string(b) == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never held %q", path, want)
}

func TestRunRestartsKilledServeAndDrainsOnStop(t *testing.T) {
	dir := t.TempDir()
	r := start(t, dir, "serve", nil)
	first := waitStatus(t, dir, "running", func(s Status) bool { return s.State == StateRunning && s.ServePID > 0 })
	if first.PID != os.Getpid() {
		t.Errorf("status pid = %d, want the supervisor's %d", first.PID, os.Getpid())
	}
	if b, err := os.ReadFile(filepath.Join(dir, PIDFile)); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("pid file = %q (err %v), want %d", b, err, os.Getpid())
	}

	if err := syscall.Kill(first.ServePID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	second := waitStatus(t, dir, "a restarted serve", func(s Status) bool {
		return s.State == StateRunning && s.ServePID > 0 && s.ServePID != first.ServePID
	})
	if second.Restarts != 1 || second.LastExit == nil || second.LastExit.Signal != "killed" {
		t.Errorf("after kill -9: restarts %d, last exit %v; want 1 and ended by signal killed", second.Restarts, second.LastExit)
	}

	// The child handles SIGTERM once it has written its pid file.
	waitFile(t, filepath.Join(dir, "serve.pid"), strconv.Itoa(second.ServePID))
	if err := r.stop(t); err != nil {
		t.Fatalf("Run returned %v after stop", err)
	}
	drained, err := os.ReadFile(filepath.Join(dir, "drained"))
	if err != nil || string(drained) != strconv.Itoa(second.ServePID) {
		t.Errorf("serve %d was not drained with SIGTERM (drained file %q, err %v)", second.ServePID, drained, err)
	}
	final, err := ReadStatus(dir)
	if err != nil || final.State != StateStopped || final.ServePID != 0 {
		t.Errorf("final status %+v (err %v), want stopped with no serve pid", final, err)
	}
	if _, err := os.Stat(filepath.Join(dir, PIDFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left after stop (err %v)", err)
	}
	if (host.Local{}).Alive(second.ServePID) {
		t.Errorf("serve %d still runs after the supervisor stopped", second.ServePID)
	}
}

func TestRunReportsCrashLoop(t *testing.T) {
	dir := t.TempDir()
	// Each crash must count as one in a row however slowly a loaded
	// machine starts the child: a run as long as StableAfter would reset
	// the count.
	start(t, dir, "crash", func(o *Options) { o.StableAfter = testutil.HangGuard })
	s := waitStatus(t, dir, "crash-loop", func(s Status) bool { return s.State == StateCrashLoop })
	if s.ConsecutiveFailures < 3 || s.LastExit == nil || s.LastExit.Code != 3 {
		t.Errorf("crash-loop status %+v: want >= 3 failures in a row and last exit code 3", s)
	}
	if s.NextStartAt.IsZero() {
		t.Error("crash-loop status has no next start time")
	}
	// Backoff keeps doubling up to the cap.
	later := waitStatus(t, dir, "more restarts", func(x Status) bool { return x.Restarts >= 6 })
	if later.State != StateCrashLoop && later.State != StateStarting && later.State != StateRunning {
		t.Errorf("state after 6 restarts = %q", later.State)
	}
}

// A missing executable or config does not start serve into a crash loop:
// the supervisor waits, restarts nothing, and starts serve once both are
// back.
func TestRunWaitsForMissingFiles(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "bin", "runtime")
	start(t, dir, "serve", func(o *Options) {
		o.Command = []string{exe, "--state-dir", dir}
		o.Requires = []string{"config.json"}
		o.PollInterval = 20 * time.Millisecond
	})
	s := waitStatus(t, dir, "waiting for the executable", func(s Status) bool { return s.State == StateWaiting && s.Missing == exe })
	if s.Restarts != 0 || s.LastExit != nil {
		t.Errorf("status %+v: a missing executable must not count as a failed start", s)
	}
	if err := os.MkdirAll(filepath.Dir(exe), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(os.Args[0], exe); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "config.json")
	waitStatus(t, dir, "waiting for the config", func(s Status) bool { return s.State == StateWaiting && s.Missing == config })
	time.Sleep(100 * time.Millisecond)
	if s, _ := ReadStatus(dir); s.State != StateWaiting || s.Restarts != 0 {
		t.Errorf("status %+v while config.json is missing: want waiting, no restarts", s)
	}
	if err := os.WriteFile(config, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = waitStatus(t, dir, "running", func(s Status) bool { return s.State == StateRunning && s.ServePID != 0 })
	if s.Missing != "" || s.Restarts != 0 {
		t.Errorf("running status %+v: want nothing missing and no restarts", s)
	}
}

func TestRunOneSupervisorPerStateDir(t *testing.T) {
	dir := t.TempDir()
	start(t, dir, "serve", nil)
	waitStatus(t, dir, "running", func(s Status) bool { return s.State == StateRunning })
	err := Run(context.Background(), Options{StateDir: dir, Command: []string{"true"}, LockWait: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "another supervisor holds the state directory") {
		t.Fatalf("second supervisor: err = %v, want the directory reported as held", err)
	}
}

func TestRunTakesOverUnsupervisedServe(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(childEnv, "serve")
	t.Setenv("SUPERVISE_TEST_DIR", dir)
	var h host.Local
	orphan, err := h.Start(context.Background(), host.Command{Path: os.Args[0], Args: []string{"--state-dir", dir}, Dir: dir, LogFile: filepath.Join(dir, "orphan.log")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Stop(orphan, time.Second) })
	deadline := time.Now().Add(testutil.HangGuard)
	for !held(filepath.Join(dir, "serve.lock")) {
		if time.Now().After(deadline) {
			t.Fatal("the unsupervised serve never took its lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitFile(t, filepath.Join(dir, "serve.pid"), strconv.Itoa(orphan))

	start(t, dir, "serve", nil)
	s := waitStatus(t, dir, "running", func(s Status) bool { return s.State == StateRunning && s.ServePID > 0 })
	if s.ServePID == orphan {
		t.Fatal("supervisor reports the unsupervised serve as its own")
	}
	drained, _ := os.ReadFile(filepath.Join(dir, "drained"))
	if string(drained) != strconv.Itoa(orphan) {
		t.Errorf("the unsupervised serve %d was not drained before the takeover (drained %q)", orphan, drained)
	}
	if s.Restarts != 0 || s.LastExit != nil {
		t.Errorf("takeover counted as a failure: %+v", s)
	}
}

func TestBackoff(t *testing.T) {
	min, max := 250*time.Millisecond, 30*time.Second
	cases := []struct {
		name     string
		failures int
		want     time.Duration
	}{
		{"no failure", 0, 0},
		{"first failure", 1, 250 * time.Millisecond},
		{"second doubles", 2, 500 * time.Millisecond},
		{"fifth", 5, 4 * time.Second},
		{"eighth", 8, 30 * time.Second},
		{"capped", 9, 30 * time.Second},
		{"no overflow", 200, 30 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Backoff(tc.failures, min, max); got != tc.want {
				t.Errorf("Backoff(%d) = %s, want %s", tc.failures, got, tc.want)
			}
		})
	}
}

func TestExitString(t *testing.T) {
	cases := []struct {
		name string
		exit *Exit
		want string
	}{
		{"none", nil, "never exited"},
		{"code", &Exit{Code: 1, RanFor: "20ms"}, "exited with code 1 after 20ms"},
		{"signal", &Exit{Code: -1, Signal: "killed", RanFor: "3s"}, `ended by signal "killed" after 3s`},
		{"start error", &Exit{Code: -1, Error: "fork/exec /x: no such file"}, "could not start: fork/exec /x: no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.exit.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}
