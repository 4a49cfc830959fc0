package host

import (
	"context"
	"fmt"
	"strings"
)

// Platform is an operating system and architecture in Go's words
// (GOOS/GOARCH), such as linux/amd64.
type Platform struct{ OS, Arch string }

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// DetectPlatform asks the host for its platform with `uname -sm` (see
// Detect).
func DetectPlatform(ctx context.Context, h Host) (Platform, error) {
	f, err := Detect(ctx, h)
	if err != nil {
		return Platform{}, err
	}
	return f.Platform, f.PlatformErr
}

// ParseUname maps `uname -sm` output ("Linux x86_64") to a Platform.
func ParseUname(out string) (Platform, error) {
	f := strings.Fields(out)
	if len(f) != 2 {
		return Platform{}, fmt.Errorf("unexpected uname output %q", strings.TrimSpace(out))
	}
	goos, ok := unameOS[strings.ToLower(f[0])]
	if !ok {
		return Platform{}, fmt.Errorf("unsupported operating system %q", f[0])
	}
	arch, ok := unameArch[strings.ToLower(f[1])]
	if !ok {
		return Platform{}, fmt.Errorf("unsupported machine %q", f[1])
	}
	return Platform{OS: goos, Arch: arch}, nil
}

var unameOS = map[string]string{
	"linux": "linux", "darwin": "darwin", "freebsd": "freebsd", "openbsd": "openbsd", "netbsd": "netbsd",
}

var unameArch = map[string]string{
	"x86_64": "amd64", "amd64": "amd64",
	"aarch64": "arm64", "arm64": "arm64",
	"i386": "386", "i486": "386", "i586": "386", "i686": "386",
	"armv6l": "arm", "armv7l": "arm", "armv7": "arm",
	"riscv64": "riscv64", "ppc64le": "ppc64le", "s390x": "s390x",
	"loongarch64": "loong64", "mips64": "mips64",
}
