//go:build !unix

package provider

import "os"

// lockKeystore creates the lock file but, as internal/keystore on this
// platform, cannot take an advisory lock; writes are still atomic.
func lockKeystore(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	return func() { f.Close() }, nil
}
