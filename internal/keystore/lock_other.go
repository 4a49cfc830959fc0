//go:build !unix

package keystore

import "os"

// lockFile creates the lock file but cannot take an advisory lock on this
// platform; Update still writes atomically.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	return func() { f.Close() }, nil
}

// syncDir is a no-op where folders cannot be opened for fsync.
func syncDir(string) error { return nil }
