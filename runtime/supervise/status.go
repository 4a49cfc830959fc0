package supervise

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/atomicfile"
)

// File names in a state directory.
const (
	// StatusFile is where the supervisor publishes its Status.
	StatusFile = "supervisor.json"
	// PIDFile holds the supervisor's pid while it runs.
	PIDFile = "supervisor.pid"
	// LockFile is held (flock) by the one supervisor of a state directory.
	LockFile = "supervisor.lock"
)

// States of a supervisor, as Status.State reports them.
const (
	// StateStarting: the supervisor is starting the serve process.
	StateStarting = "starting"
	// StateRunning: the serve process runs.
	StateRunning = "running"
	// StateBackoff: the serve process exited and is restarted at
	// Status.NextStartAt.
	StateBackoff = "backoff"
	// StateCrashLoop: like StateBackoff, after Options.CrashLoopAfter
	// short-lived runs in a row; the runtime is failing, not restarting.
	StateCrashLoop = "crash-loop"
	// StateWaiting: a file serve needs (Options.Requires, or the
	// executable) is missing; serve starts once it is back, without a
	// restart counted or a backoff spent on a start that would fail.
	StateWaiting = "waiting"
	// StateStopping: the supervisor was asked to stop and drains serve.
	StateStopping = "stopping"
	// StateStopped: the supervisor has exited.
	StateStopped = "stopped"
)

// Status is what a supervisor publishes in its state directory
// (supervisor.json) on every change, for the runtime's status endpoint and
// for the provider when the runtime itself does not answer.
type Status struct {
	// PID is the supervisor's process id.
	PID int `json:"pid"`
	// State is one of the State constants.
	State string `json:"state"`
	// StartedAt is when the supervisor started.
	StartedAt time.Time `json:"started_at"`
	// ServePID is the serve process's id while it runs.
	ServePID int `json:"serve_pid,omitempty"`
	// ServeStartedAt is when the current (or last) serve process started.
	ServeStartedAt time.Time `json:"serve_started_at,omitzero"`
	// Restarts counts serve processes started after the first.
	Restarts int `json:"restarts"`
	// ConsecutiveFailures counts serve exits in a row that came sooner than
	// Options.StableAfter after their start; a stable run resets it.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// LastExit describes how the last serve process ended; nil before any.
	LastExit *Exit `json:"last_exit,omitempty"`
	// NextStartAt is when serve is started again in StateBackoff and
	// StateCrashLoop.
	NextStartAt time.Time `json:"next_start_at,omitzero"`
	// Missing names the file the supervisor waits for in StateWaiting.
	Missing string `json:"missing,omitempty"`
	// UpdatedAt is when this status was written.
	UpdatedAt time.Time `json:"updated_at"`
}

// Exit describes how a serve process ended.
type Exit struct {
	At time.Time `json:"at"`
	// Code is the exit code; -1 when a signal ended the process or it
	// could not be started.
	Code int `json:"code"`
	// Signal names the signal that ended it ("killed"), if any.
	Signal string `json:"signal,omitempty"`
	// Error is why the process could not be started, if it was not.
	Error string `json:"error,omitempty"`
	// RanFor is how long it ran, as a Go duration ("1.5s").
	RanFor string `json:"ran_for"`
}

// String renders an exit for messages: "killed by signal killed after 3s".
func (e *Exit) String() string {
	switch {
	case e == nil:
		return "never exited"
	case e.Error != "":
		return "could not start: " + e.Error
	case e.Signal != "":
		return fmt.Sprintf("ended by signal %q after %s", e.Signal, e.RanFor)
	}
	return fmt.Sprintf("exited with code %d after %s", e.Code, e.RanFor)
}

// ReadStatus reads the status a supervisor published in stateDir. An error
// wrapping os.ErrNotExist means no supervisor ever ran there. The file
// outlives a killed supervisor: check Status.PID is alive before trusting
// State.
func ReadStatus(stateDir string) (Status, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, StatusFile))
	if err != nil {
		return Status{}, err
	}
	return DecodeStatus(b)
}

// DecodeStatus decodes the content of a StatusFile (read on any host).
func DecodeStatus(b []byte) (Status, error) {
	var s Status
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("decoding %s: %w", StatusFile, err)
	}
	return s, nil
}

func writeStatus(stateDir string, s Status) error {
	s.UpdatedAt = time.Now().UTC()
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(stateDir, StatusFile), append(b, '\n'), 0o600)
}

// Backoff is the delay before the next start after failures consecutive
// short-lived runs: min doubled per failure after the first, capped at max.
// Zero failures means no delay.
func Backoff(failures int, min, max time.Duration) time.Duration {
	if failures <= 0 {
		return 0
	}
	d := min
	for i := 1; i < failures; i++ {
		if d >= max/2 {
			return max
		}
		d *= 2
	}
	if d > max {
		return max
	}
	return d
}

// errLocked is returned when another supervisor holds the state directory.
var errLocked = errors.New("another supervisor holds the state directory")
