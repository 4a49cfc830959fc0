package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mailstack/terraform-provider-mailstack/internal/atomicfile"
)

// Local is the machine the provider runs on.
type Local struct{}

var _ Host = Local{}

func (Local) String() string { return "the local host" }

func (Local) Abs(path string) (string, error) { return filepath.Abs(path) }

func (Local) ReadFile(_ context.Context, path string) ([]byte, error) { return os.ReadFile(path) }

// WriteFile writes through internal/atomicfile, which keeps this process
// from forking while an executable's write descriptor is open: a runtime
// started by one goroutine while another installs its executable never
// meets "text file busy".
func (Local) WriteFile(_ context.Context, path string, data []byte, opts WriteOptions) error {
	uid, gid := -1, -1
	if opts.Owner != nil {
		uid, gid = opts.Owner.UID, opts.Owner.GID
	}
	return atomicfile.WriteFileOwned(path, data, opts.mode(), uid, gid)
}

func (Local) Stat(_ context.Context, path string) (FileInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return FileInfo{}, err
	}
	fi := FileInfo{Size: st.Size(), Mode: st.Mode(), ModTime: st.ModTime(), UID: -1, GID: -1}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		fi.UID, fi.GID = int(sys.Uid), int(sys.Gid)
	}
	return fi, nil
}

func (Local) MkdirAll(_ context.Context, path string, perm fs.FileMode) error {
	return os.MkdirAll(path, perm)
}

func (Local) Remove(_ context.Context, path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (Local) RemoveAll(_ context.Context, path string) error { return os.RemoveAll(path) }

func (Local) SHA256(_ context.Context, path string) (string, error) { return FileSHA256(path) }

// FileSHA256 hashes a local file once per content version (path, size,
// mtime): plan hashes the provider's executable for every server.
func FileSHA256(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	key := fmt.Sprintf("%s\x00%d\x00%d", path, st.Size(), st.ModTime().UnixNano())
	if v, ok := sha256Cache.Load(key); ok {
		return v.(string), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	sha256Cache.Store(key, sum)
	return sum, nil
}

var sha256Cache sync.Map

// lockPoll is how often a waiting Lock tries again.
const lockPoll = 10 * time.Millisecond

func (Local) Lock(ctx context.Context, path string, wait bool) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() {
				_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if !wait {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, ErrLocked)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}

func (Local) Start(_ context.Context, c Command) (int, error) {
	logf, err := os.OpenFile(c.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, fmt.Errorf("opening log %s: %w", c.LogFile, err)
	}
	defer logf.Close()
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = c.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting %s: %w", c.Path, err)
	}
	// Reap the child if it exits while this process still runs, so a dead
	// process never lingers as a zombie that looks alive.
	go func() { _ = cmd.Wait() }()
	return cmd.Process.Pid, nil
}

func (h Local) Signal(ctx context.Context, pid int, sig syscall.Signal) error {
	// A zombie (exited, its parent not done reaping it) takes signals
	// without error; it is gone all the same, as Process says.
	if p, err := h.Process(ctx, pid); pid <= 0 || (err == nil && !p.Alive) {
		return fmt.Errorf("signal to pid %d: %w", pid, ErrNoProcess)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("signal to pid %d: %w", pid, ErrNoProcess)
		}
		return fmt.Errorf("signal to pid %d: %w", pid, err)
	}
	return nil
}

func (Local) Process(_ context.Context, pid int) (Process, error) {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return Process{}, nil
	}
	proc := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(proc + "/stat")
	if err != nil {
		// No procfs: trust kill(0), arguments unknown.
		return Process{Alive: true}, nil
	}
	p := Process{Alive: parseProcStat(stat)}
	if cmdline, err := os.ReadFile(proc + "/cmdline"); err == nil {
		p.Args = parseCmdline(cmdline)
	} else if !p.Alive {
		return Process{}, nil
	}
	return p, nil
}

func (Local) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), commandError(name, args, err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// commandError describes a failed command with what it wrote to stderr.
func commandError(name string, args []string, err error, stderr string) error {
	msg := strings.TrimSpace(stderr)
	if msg == "" {
		return fmt.Errorf("%s: %w", strings.Join(append([]string{name}, args...), " "), err)
	}
	return fmt.Errorf("%s: %w: %s", strings.Join(append([]string{name}, args...), " "), err, msg)
}

func (Local) DialUnix(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", path)
}

// isNotExist reports whether err says a file does not exist.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// Conveniences for the runtime's own use of the local host (the
// supervisor): the helpers of process.go without a context.

// Alive reports whether pid is a running (not zombie) local process.
func (h Local) Alive(pid int) bool { return Alive(context.Background(), h, pid) }

// Runs is Runs on the local host.
func (h Local) Runs(pid int, args ...string) bool { return Runs(context.Background(), h, pid, args...) }

// Stop is Stop on the local host.
func (h Local) Stop(pid int, grace time.Duration) error {
	return Stop(context.Background(), h, pid, grace)
}

// ReadPID is ReadPID on the local host.
func (h Local) ReadPID(path string) (int, error) { return ReadPID(context.Background(), h, path) }
