package host

import (
	"context"
	"fmt"
	"os"
	"path"
)

// InstallExecutable copies the local executable src to dst on h (mode
// 0755) unless dst already has the same content (compared by SHA-256 on
// each side, so an unchanged executable is not sent again). The copy is
// atomic, so a running copy is never overwritten in place. It reports
// whether it changed dst.
func InstallExecutable(ctx context.Context, h Host, src, dst string) (bool, error) {
	want, err := FileSHA256(src)
	if err != nil {
		return false, fmt.Errorf("reading executable: %w", err)
	}
	if have, err := h.SHA256(ctx, dst); err == nil && have == want {
		return false, nil
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return false, fmt.Errorf("reading executable: %w", err)
	}
	if err := h.MkdirAll(ctx, path.Dir(dst), 0o700); err != nil {
		return false, err
	}
	if err := h.WriteFile(ctx, dst, data, WriteOptions{Mode: 0o755}); err != nil {
		return false, err
	}
	return true, nil
}
