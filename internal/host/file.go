package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
)

// File is one file on a host, as internal/keystore reads and replaces it
// (File satisfies keystore.File): read whole, written atomically with
// Options, changed under an advisory lock on LockPath.
type File struct {
	Host Host
	Path string
	// Options say how the file is written. A zero Mode keeps the mode of
	// the file being replaced (0600 for a new file); a nil Owner keeps its
	// owner and group, and an Owner field of -1 keeps that one: rewriting
	// a keystore that Apache James reads as another user must not lock
	// James out.
	Options WriteOptions
	// LockPath is the lock file held while the file changes; empty means
	// Path + ".lock". LockPathFor puts it outside the file's folder.
	LockPath string
}

// LocalFile is the file at path on the local host.
func LocalFile(path string) File { return File{Host: Local{}, Path: path} }

// Name is the file's path, for messages.
func (f File) Name() string { return f.Path }

// Read returns the file's content; a missing file gives an error wrapping
// fs.ErrNotExist.
func (f File) Read(ctx context.Context) ([]byte, error) { return f.Host.ReadFile(ctx, f.Path) }

// Write replaces the file atomically, keeping what Options leaves unset
// as the file being replaced has it.
func (f File) Write(ctx context.Context, data []byte) error {
	opts := f.Options
	var owner Owner
	if opts.Owner != nil {
		owner = *opts.Owner
	} else {
		owner = Owner{UID: -1, GID: -1}
	}
	if opts.Mode == 0 || owner.UID == -1 || owner.GID == -1 {
		st, err := f.Host.Stat(ctx, f.Path)
		switch {
		case err == nil:
			if opts.Mode == 0 {
				opts.Mode = st.Mode.Perm()
			}
			if owner.UID == -1 {
				owner.UID = st.UID
			}
			if owner.GID == -1 {
				owner.GID = st.GID
			}
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("writing %s: %w", f.Path, err)
		}
	}
	if owner.UID != -1 || owner.GID != -1 {
		opts.Owner = &owner
	} else {
		opts.Owner = nil
	}
	return f.Host.WriteFile(ctx, f.Path, data, opts)
}

// Lock waits for the file's advisory lock and returns its release. A lock
// file outside the file's folder (LockPathFor) gets its folder made, mode
// 0700, when it is missing.
func (f File) Lock(ctx context.Context) (func(), error) {
	p := f.LockPath
	if p == "" {
		p = f.Path + ".lock"
	} else if err := f.Host.MkdirAll(ctx, path.Dir(p), 0o700); err != nil {
		return nil, fmt.Errorf("locking %s: %w", f.Path, err)
	}
	return f.Host.Lock(ctx, p, true)
}

// LockDir is the folder, under the provider's state directory on a host,
// that holds the lock files of the files the provider and the runtimes it
// runs there change in place (keystores), so that no lock file lands in
// someone else's folder, such as Apache James's conf/.
const LockDir = ".locks"

// LockPathFor is the lock file of the file at the absolute path file, in
// LockDir under the provider state directory stateDir. The provider and a
// runtime that writes the same file (an ACME keystore) derive the same
// name, so they exclude each other.
func LockPathFor(stateDir, file string) string {
	sum := sha256.Sum256([]byte(path.Clean(file)))
	return path.Join(stateDir, LockDir, hex.EncodeToString(sum[:16])+".lock")
}
