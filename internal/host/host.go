// Package host is the provider's one door to a target host: files (read,
// atomic write with mode and owner, stat, remove, lock), processes (start
// detached, signal, status, run a command) and dialing the runtime's
// control socket. Local is the machine the provider runs on; an SSH host
// (ssh.go) reaches another machine over one SSH connection. Resources,
// internal/keystore's file protocol and the runtime's state directory
// (runtime/statedir) all reach a host through Host, so a new kind of host
// is a new implementation, not an edit in every caller.
//
// Every implementation passes the same test table (hosttest.Run).
package host

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"syscall"
	"time"
)

// Host is a machine the provider manages. Paths are absolute paths on that
// machine (Abs makes them so). Methods are safe for concurrent use.
type Host interface {
	// String names the host in messages: "the local host", or
	// "mx1.example.com:22" for a host reached over SSH.
	String() string
	// Abs returns path as an absolute, clean path on the host. A relative
	// path is relative to the provider's working directory on the local
	// host and to the login's home directory over SSH.
	Abs(path string) (string, error)

	// ReadFile returns the content of a file; a missing file gives an
	// error wrapping fs.ErrNotExist.
	ReadFile(ctx context.Context, path string) ([]byte, error)
	// WriteFile replaces a file atomically (a temporary file in the same
	// folder, synced, renamed over path): readers and crashes see the old
	// content or the new, never a mix. The folder must exist.
	WriteFile(ctx context.Context, path string, data []byte, opts WriteOptions) error
	// Stat describes a file, following symbolic links as os.Stat does; a
	// missing file gives an error wrapping fs.ErrNotExist.
	Stat(ctx context.Context, path string) (FileInfo, error)
	// MkdirAll creates a folder and its parents with mode perm where they
	// are missing.
	MkdirAll(ctx context.Context, path string, perm fs.FileMode) error
	// Remove deletes a file or an empty folder; one that is already gone
	// is not an error.
	Remove(ctx context.Context, path string) error
	// RemoveAll deletes path and everything under it; a missing path is
	// not an error.
	RemoveAll(ctx context.Context, path string) error
	// SHA256 returns the hex SHA-256 of a file's content, computed on the
	// host (a large executable is not copied to be hashed).
	SHA256(ctx context.Context, path string) (string, error)
	// Lock takes an exclusive advisory lock (flock(2), so the runtime's
	// own locks on the host see it) on path, creating the file with mode
	// 0600 when it is missing and leaving it in place. With wait, it
	// waits for the lock until ctx is done; without, a lock another
	// process holds gives ErrLocked. unlock releases the lock.
	Lock(ctx context.Context, path string, wait bool) (unlock func(), err error)

	// Start runs a command detached from the provider (its own session,
	// standard output and error appended to cmd.LogFile), so that it
	// outlives the provider and Terraform, and returns its pid.
	Start(ctx context.Context, cmd Command) (pid int, err error)
	// Signal sends sig to pid; a process that is gone gives ErrNoProcess.
	Signal(ctx context.Context, pid int, sig syscall.Signal) error
	// Process reports whether pid is a live process (not a zombie) and,
	// where the host can say, the arguments it was started with.
	Process(ctx context.Context, pid int) (Process, error)
	// Run runs a command to its end and returns its standard output; a
	// command that fails gives an error carrying its standard error.
	Run(ctx context.Context, name string, args ...string) ([]byte, error)

	// DialUnix connects to a unix socket on the host (the runtime's
	// control socket); over SSH, through the connection itself, with no
	// TCP port opened for it.
	DialUnix(ctx context.Context, path string) (net.Conn, error)
}

// WriteOptions says what a written file looks like.
type WriteOptions struct {
	// Mode is the file's permission bits; zero means 0600.
	Mode fs.FileMode
	// Owner, when set, is the file's owner and group; nil leaves the
	// writer's own.
	Owner *Owner
}

// Owner is a numeric owner and group.
type Owner struct{ UID, GID int }

func (o WriteOptions) mode() fs.FileMode {
	if o.Mode == 0 {
		return 0o600
	}
	return o.Mode.Perm()
}

// FileInfo describes a file on a host.
type FileInfo struct {
	Size    int64
	Mode    fs.FileMode // type and permission bits, as fs.FileInfo's
	ModTime time.Time
	UID     int
	GID     int
}

// IsDir reports whether the file is a folder.
func (f FileInfo) IsDir() bool { return f.Mode.IsDir() }

// Command is a detached process to start.
type Command struct {
	// Path is the executable; Args its arguments (without argv[0]).
	Path string
	Args []string
	// Dir is the working directory; LogFile (created with mode 0600 when
	// missing) receives standard output and error. Both are required.
	Dir     string
	LogFile string
}

// Process is what a host says about a pid.
type Process struct {
	// Alive is false for a pid that is gone or a zombie.
	Alive bool
	// Args are the arguments the process was started with, argv[0]
	// first; nil where the host cannot say (no procfs).
	Args []string
}

// Errors of Host methods.
var (
	// ErrLocked: Lock without wait found the lock held.
	ErrLocked = errors.New("locked by another process")
	// ErrNoProcess: the pid names no process.
	ErrNoProcess = errors.New("no such process")
)
