package durable

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"time"
)

// WriteFile writes data to a new file at path (mode 0600, which must not
// exist) in one write and fsyncs it. On failure the file is removed.
func WriteFile(path string, data []byte) error {
	_, err := CopyFile(path, bytes.NewReader(data))
	return err
}

// CopyFile streams r into a new file at path (mode 0600, which must not
// exist), fsyncs it and returns the number of bytes written. On failure the
// file is removed.
func CopyFile(path string, r io.Reader) (int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("creating file: %w", err)
	}
	n, err := io.Copy(f, r)
	if err == nil {
		start := time.Now()
		err = f.Sync()
		observe("file", start)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return 0, fmt.Errorf("writing file %s: %w", path, err)
	}
	return n, nil
}
