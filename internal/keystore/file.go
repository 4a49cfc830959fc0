package keystore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Open reads and decodes the keystore file at path. Errors name the path; a
// missing file gives an error that wraps fs.ErrNotExist.
func Open(path string, storePassword []byte) (*Keystore, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading keystore %q: %w", path, err)
	}
	k, err := Decode(data, storePassword)
	if err != nil {
		return nil, withPath(err, path)
	}
	k.path = path
	return k, nil
}

// Lock takes the advisory lock Update holds while it changes the keystore
// file at path (an exclusive flock on "<path>.lock", created with mode
// 0600 and left in place), for writers that read and write the file
// themselves. It returns the function that releases the lock.
func Lock(path string) (unlock func(), err error) {
	unlock, err = lockFile(path + ".lock")
	if err != nil {
		return nil, fmt.Errorf("locking keystore %q: %w", path, err)
	}
	return unlock, nil
}

// Update changes the keystore file at path under an advisory lock (flock on
// "<path>.lock", which it leaves in place): it loads the file, or starts
// New(t) if there is none, calls fn, and when fn returns nil and changed
// something writes the result atomically (a temporary file in the same
// folder, fsync, rename, fsync of the folder) with mode 0600. Entries fn does
// not touch are kept as they were, private keys still encrypted with their
// own passwords. If fn or anything else fails, the file is left byte-for-byte
// unchanged.
//
// t == "" accepts whatever type the file has and makes new files JKS; any
// other t must match an existing file's type (ErrTypeMismatch).
func Update(path string, storePassword []byte, t Type, fn func(*Keystore) error) error {
	if len(storePassword) == 0 {
		return withPath(newErr(ErrInvalidInput, "", nil, "empty store password"), path)
	}
	unlock, err := Lock(path)
	if err != nil {
		return err
	}
	defer unlock()

	var k *Keystore
	var old []byte
	var mode fs.FileMode = 0o600
	data, err := os.ReadFile(path)
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
	if err := writeAtomic(path, out, mode); err != nil {
		return fmt.Errorf("writing keystore %q: %w", path, err)
	}
	k.dirty = false
	return nil
}

// writeAtomic replaces path with data: temporary file in the same folder,
// fsync, rename over path, fsync of the folder.
func writeAtomic(path string, data []byte, mode fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}
