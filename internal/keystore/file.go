package keystore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
)

// File is where a keystore lives: internal/host's File reaches one on the
// local host or over SSH. This package does no file I/O of its own.
type File interface {
	// Name names the file in errors (its path).
	Name() string
	// Read returns the whole file; a missing file gives an error wrapping
	// fs.ErrNotExist.
	Read(ctx context.Context) ([]byte, error)
	// Write replaces the file atomically: readers and crashes see the old
	// content or the new, never a mix.
	Write(ctx context.Context, data []byte) error
	// Lock takes the advisory lock that writers of the file hold while
	// they change it, and returns its release.
	Lock(ctx context.Context) (unlock func(), err error)
}

// Open reads and decodes the keystore in f. Errors name the file; a
// missing file gives an error that wraps fs.ErrNotExist.
func Open(ctx context.Context, f File, storePassword []byte) (*Keystore, error) {
	data, err := f.Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading keystore %q: %w", f.Name(), err)
	}
	k, err := Decode(data, storePassword)
	if err != nil {
		return nil, withPath(err, f.Name())
	}
	k.path = f.Name()
	return k, nil
}

// Update changes the keystore in f under f's advisory lock: it loads the
// file, or starts New(t) if there is none, calls fn, and when fn returns
// nil and changed something writes the result with f.Write (atomic).
// Entries fn does not touch are kept as they were, private keys still
// encrypted with their own passwords. If fn or anything else fails, the
// file is left byte-for-byte unchanged.
//
// t == "" accepts whatever type the file has and makes new files JKS; any
// other t must match an existing file's type (ErrTypeMismatch).
func Update(ctx context.Context, f File, storePassword []byte, t Type, fn func(*Keystore) error) error {
	path := f.Name()
	if len(storePassword) == 0 {
		return withPath(newErr(ErrInvalidInput, "", nil, "empty store password"), path)
	}
	unlock, err := f.Lock(ctx)
	if err != nil {
		return fmt.Errorf("locking keystore %q: %w", path, err)
	}
	defer unlock()

	var k *Keystore
	var old []byte
	data, err := f.Read(ctx)
	switch {
	case err == nil:
		old = data
		if k, err = Decode(data, storePassword); err != nil {
			return withPath(err, path)
		}
		if t != "" && k.typ != t {
			return &Error{Path: path, Err: ErrTypeMismatch, Detail: fmt.Sprintf("file is %s, want %s", k.typ, t)}
		}
	case errors.Is(err, fs.ErrNotExist):
		k = New(t)
	default:
		return fmt.Errorf("reading keystore %q: %w", path, err)
	}
	k.path = path
	if err := fn(k); err != nil {
		return withPath(err, path)
	}
	if !k.dirty && old != nil {
		return nil
	}
	out, err := k.Encode(storePassword)
	if err != nil {
		return withPath(err, path)
	}
	if bytes.Equal(out, old) {
		return nil
	}
	if err := f.Write(ctx, out); err != nil {
		return fmt.Errorf("writing keystore %q: %w", path, err)
	}
	k.dirty = false
	return nil
}
