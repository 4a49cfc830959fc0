// Package host owns the provider's access to the target host: starting and
// stopping the detached runtime, installing its executable, and checking
// processes. Only the local host exists today; the provider reaches the host
// through this package alone so that an SSH host can be added later
// without touching resources.
package host

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/atomicfile"
)

// Local is the machine the provider runs on.
type Local struct{}

// StartDetached starts exe with args in its own session, so it outlives
// the provider and Terraform, with stdout and stderr appended to logPath.
// It returns the child's pid.
func (Local) StartDetached(exe string, args []string, logPath string) (int, error) {
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, fmt.Errorf("opening runtime log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = filepath.Dir(logPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting %s: %w", exe, err)
	}
	// Reap the child if it exits while this process still runs, so a dead
	// runtime never lingers as a zombie that looks alive.
	go func() { _ = cmd.Wait() }()
	return cmd.Process.Pid, nil
}

// Alive reports whether pid is a running (not zombie) process.
func (Local) Alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // no procfs: trust kill(0)
	}
	// The state follows the parenthesised command name.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

// Stop sends SIGTERM to pid and waits up to grace for it to exit, then
// sends SIGKILL. A pid that is already gone is not an error.
func (h Local) Stop(pid int, grace time.Duration) error {
	if !h.Alive(pid) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stopping pid %d: %w", pid, err)
	}
	if h.waitGone(pid, grace) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing pid %d: %w", pid, err)
	}
	if !h.waitGone(pid, 5*time.Second) {
		return fmt.Errorf("pid %d did not exit after SIGKILL", pid)
	}
	return nil
}

func (h Local) waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for h.Alive(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// ReadPID reads a pid file; 0 when it does not exist.
func (Local) ReadPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
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

// InstallExecutable copies src to dst (mode 0755) unless dst already has
// the same content, atomically so a running copy is never overwritten in
// place. It reports whether it changed dst.
func (Local) InstallExecutable(src, dst string) (bool, error) {
	want, err := os.ReadFile(src)
	if err != nil {
		return false, fmt.Errorf("reading executable: %w", err)
	}
	if have, err := os.ReadFile(dst); err == nil && bytes.Equal(have, want) {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return false, err
	}
	if err := atomicfile.WriteFile(dst, want, 0o755); err != nil {
		return false, err
	}
	return true, nil
}

// CommandLine returns the arguments pid was started with, from procfs.
// It fails where there is no procfs or the process is gone; callers use it
// to check that a pid read from a file still belongs to the process that
// wrote it, not to a stranger that reused the number.
func (Local) CommandLine(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), nil
}

// Runs reports whether pid is alive and was started with every one of
// args, in order, among its arguments (for example "runtime", "supervise",
// "--state-dir", dir). Without procfs it trusts Alive.
func (h Local) Runs(pid int, args ...string) bool {
	if !h.Alive(pid) {
		return false
	}
	cmdline, err := h.CommandLine(pid)
	if err != nil {
		return errors.Is(err, os.ErrNotExist) && h.Alive(pid) && !procfs()
	}
	return containsInOrder(cmdline, args)
}

func procfs() bool {
	_, err := os.Stat("/proc/self/cmdline")
	return err == nil
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
