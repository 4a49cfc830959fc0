package host

import "context"

// File is one file on a host, as internal/keystore reads and replaces it
// (File satisfies keystore.File): read whole, written atomically with
// Options, changed under an advisory lock on LockPath.
type File struct {
	Host Host
	Path string
	// Options say how the file is written.
	Options WriteOptions
	// LockPath is the lock file held while the file changes; empty means
	// Path + ".lock".
	LockPath string
}

// LocalFile is the file at path on the local host.
func LocalFile(path string) File { return File{Host: Local{}, Path: path} }

// Name is the file's path, for messages.
func (f File) Name() string { return f.Path }

// Read returns the file's content; a missing file gives an error wrapping
// fs.ErrNotExist.
func (f File) Read(ctx context.Context) ([]byte, error) { return f.Host.ReadFile(ctx, f.Path) }

// Write replaces the file atomically.
func (f File) Write(ctx context.Context, data []byte) error {
	return f.Host.WriteFile(ctx, f.Path, data, f.Options)
}

// Lock waits for the file's advisory lock and returns its release.
func (f File) Lock(ctx context.Context) (func(), error) {
	p := f.LockPath
	if p == "" {
		p = f.Path + ".lock"
	}
	return f.Host.Lock(ctx, p, true)
}
