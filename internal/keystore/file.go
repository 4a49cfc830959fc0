package keystore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
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
	return Edit(ctx, f, EditOptions{Passwords: [][]byte{storePassword}, Type: t}, fn)
}

// EditOptions say how Edit opens and writes a keystore file.
type EditOptions struct {
	// Passwords open the file, tried in turn until one verifies it: the
	// current store password first, then others it may have (one already
	// changed with keytool -storepasswd, say). At least one is required.
	Passwords [][]byte
	// Password protects what Edit writes; empty means the password that
	// opened the file (Passwords[0] for a new file). Changing it re-encodes
	// the file even when fn changes nothing, as keytool -storepasswd does:
	// JKS private keys fn does not set again keep their own key passwords.
	Password []byte
	// Type is Update's t.
	Type Type
	// Repair starts a new keystore of Type in place of a file that is not
	// a keystore at all (ErrNotKeystore: truncated, emptied or overwritten
	// with garbage), instead of failing. Nothing in such a file can be
	// kept.
	Repair bool
}

// Edit is Update with more say over passwords and damaged files (see
// EditOptions). It writes when fn changed something or the password
// changes, and leaves the file byte-for-byte as it was otherwise or when
// anything fails.
func Edit(ctx context.Context, f File, o EditOptions, fn func(*Keystore) error) error {
	path := f.Name()
	if len(o.Passwords) == 0 || slices.ContainsFunc(o.Passwords, func(p []byte) bool { return len(p) == 0 }) {
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
		if k, err = decodeAny(data, o.Passwords); errors.Is(err, ErrNotKeystore) && o.Repair {
			k, err = New(o.Type), nil
			k.storePW = bytes.Clone(o.Passwords[0])
		}
		if err != nil {
			return withPath(err, path)
		}
		if o.Type != "" && k.typ != o.Type {
			return &Error{Path: path, Err: ErrTypeMismatch, Detail: fmt.Sprintf("file is %s, want %s", k.typ, o.Type)}
		}
	case errors.Is(err, fs.ErrNotExist):
		k = New(o.Type)
		k.storePW = bytes.Clone(o.Passwords[0])
	default:
		return fmt.Errorf("reading keystore %q: %w", path, err)
	}
	k.path = path
	opened := k.storePW
	if err := fn(k); err != nil {
		return withPath(err, path)
	}
	pw := o.Password
	if len(pw) == 0 {
		pw = opened
	}
	if !k.dirty && old != nil && bytes.Equal(pw, opened) {
		return nil
	}
	out, err := k.Encode(pw)
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

// decodeAny decodes data with the first of passwords that verifies it;
// the error of the first password when none does.
func decodeAny(data []byte, passwords [][]byte) (*Keystore, error) {
	var first error
	for _, pw := range passwords {
		k, err := Decode(data, pw)
		if err == nil {
			return k, nil
		}
		if first == nil {
			first = err
		}
		if !errors.Is(err, ErrWrongStorePassword) {
			break
		}
	}
	return nil, first
}
