//go:build unix

package provider

import (
	"os"

	"golang.org/x/sys/unix"
)

// lockKeystore takes the advisory lock internal/keystore's Update takes
// (an exclusive flock on "<keystore>.lock", created with mode 0600) and
// returns the function that releases it.
func lockKeystore(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}
