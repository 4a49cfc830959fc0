package host

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Helpers over any Host for the processes the provider and the supervisor
// manage: pid files, "is this pid still ours", and a stop with a grace
// period.

// ReadPID reads a pid file; 0 when it does not exist.
func ReadPID(ctx context.Context, h Host, path string) (int, error) {
	b, err := h.ReadFile(ctx, path)
	if isNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("pid file %s: %w", path, err)
	}
	return pid, nil
}

// Alive reports whether pid is a running (not zombie) process on h.
func Alive(ctx context.Context, h Host, pid int) bool {
	if pid <= 0 {
		return false
	}
	p, err := h.Process(ctx, pid)
	return err == nil && p.Alive
}

// Runs reports whether pid is alive on h and was started with every one of
// args, in order, among its arguments (for example "runtime", "supervise",
// "--state-dir", dir). Where the host cannot tell a process's arguments it
// trusts Alive.
func Runs(ctx context.Context, h Host, pid int, args ...string) bool {
	if pid <= 0 {
		return false
	}
	p, err := h.Process(ctx, pid)
	if err != nil || !p.Alive {
		return false
	}
	return p.Args == nil || containsInOrder(p.Args, args)
}

// Stop sends SIGTERM to pid and waits up to grace for it to exit, then
// sends SIGKILL. A pid that is already gone is not an error.
func Stop(ctx context.Context, h Host, pid int, grace time.Duration) error {
	if !Alive(ctx, h, pid) {
		return nil
	}
	if err := h.Signal(ctx, pid, syscall.SIGTERM); err != nil && !errors.Is(err, ErrNoProcess) {
		return fmt.Errorf("stopping pid %d on %s: %w", pid, h, err)
	}
	if waitGone(ctx, h, pid, grace) {
		return nil
	}
	if err := h.Signal(ctx, pid, syscall.SIGKILL); err != nil && !errors.Is(err, ErrNoProcess) {
		return fmt.Errorf("killing pid %d on %s: %w", pid, h, err)
	}
	if !waitGone(ctx, h, pid, 5*time.Second) {
		return fmt.Errorf("pid %d on %s did not exit after SIGKILL", pid, h)
	}
	return nil
}

// waitGone polls until pid is gone, d has passed or ctx is done; it
// reports whether pid is gone.
func waitGone(ctx context.Context, h Host, pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for Alive(ctx, h, pid) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	return true
}

// containsInOrder reports whether want appears in have as a contiguous run.
func containsInOrder(have, want []string) bool {
	if len(want) == 0 {
		return true
	}
	for i := 0; i+len(want) <= len(have); i++ {
		match := true
		for j, w := range want {
			if have[i+j] != w {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// parseProcStat reports whether a /proc/<pid>/stat line describes a live
// process: the state follows the parenthesised command name, and Z is a
// zombie.
func parseProcStat(stat []byte) bool {
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// parseCmdline splits /proc/<pid>/cmdline.
func parseCmdline(b []byte) []string {
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}
