// Package atomicfile replaces files so that readers and crashes see either
// the old content or the new, never a mix: write a temporary file in the
// same folder, fsync it, rename it over the target, fsync the folder.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// WriteFile atomically replaces path with data, with mode perm.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return WriteFileOwned(path, data, perm, -1, -1)
}

// WriteFileOwned is WriteFile that also gives the file owner uid and group
// gid before it takes path's name; -1 keeps the writer's own.
func WriteFileOwned(path string, data []byte, perm os.FileMode, uid, gid int) error {
	tmp, err := writeTemp(path, data, perm, uid, gid)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}

// writeTemp writes data to a new, synced and closed temporary file beside
// path and returns its name.
//
// A file with an execute bit in perm is written with no fork in flight in
// this process (syscall.ForkLock held for reading while its descriptor is
// open): a child forked meanwhile would inherit the write descriptor until
// its own exec, and an exec of the new file in that window would fail with
// "text file busy" (ETXTBSY, golang/go#22315).
func writeTemp(path string, data []byte, perm os.FileMode, uid, gid int) (tmp string, err error) {
	if perm&0o111 != 0 {
		syscall.ForkLock.RLock()
		defer syscall.ForkLock.RUnlock()
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return "", err
	}
	if uid != -1 || gid != -1 {
		if err = chown(f, uid, gid); err != nil {
			return "", err
		}
	}
	if _, err = f.Write(data); err != nil {
		return "", err
	}
	if err = f.Sync(); err != nil {
		return "", err
	}
	if err = f.Close(); err != nil {
		return "", err
	}
	return f.Name(), nil
}

// SyncDir fsyncs a folder, making renames and new names in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing folder %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing folder %s: %w", dir, err)
	}
	return nil
}

// chown gives f the owner uid and group gid (-1: unchanged), and calls
// chown(2) only when they differ from what f has, so that a writer who is
// not root can keep a file's own owner and group.
func chown(f *os.File, uid, gid int) error {
	if st, err := f.Stat(); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			if uid == int(sys.Uid) {
				uid = -1
			}
			if gid == int(sys.Gid) {
				gid = -1
			}
		}
	}
	if uid == -1 && gid == -1 {
		return nil
	}
	return f.Chown(uid, gid)
}
