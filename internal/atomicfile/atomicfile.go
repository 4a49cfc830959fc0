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
func WriteFileOwned(path string, data []byte, perm os.FileMode, uid, gid int) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if uid != -1 || gid != -1 {
		if err = chown(f, uid, gid); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return SyncDir(dir)
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
