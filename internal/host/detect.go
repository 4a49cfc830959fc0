package host

import (
	"context"
	"fmt"
	"strings"
)

// Facts is what the provider asks of a host before it installs or
// supervises a runtime there: its platform and its service manager.
type Facts struct {
	// Platform is the host's, from uname -sm; PlatformErr says why it is
	// not known (an operating system or machine this provider does not
	// support), which need not stop anything but an install.
	Platform    Platform
	PlatformErr error
	// Systemd manages services on the host where HasSystemd.
	Systemd    Systemd
	HasSystemd bool
}

// Detect finds h's Facts with one remote command: over SSH one exec
// session (a shell on the host), not one per question. An error says the
// command could not run (the host did not answer).
func Detect(ctx context.Context, h Host) (Facts, error) {
	out, err := h.Run(ctx, "sh", "-c", "uname -sm\n"+systemdProbe)
	if err != nil {
		return Facts{Systemd: Systemd{h: h}}, fmt.Errorf("probing %s (uname, systemd): %w", h, err)
	}
	uname, rest, _ := strings.Cut(string(out), "\n")
	f := Facts{}
	if f.Platform, err = ParseUname(uname); err != nil {
		f.PlatformErr = fmt.Errorf("detecting the platform of %s: %w", h, err)
	}
	f.Systemd, f.HasSystemd = parseSystemdProbe(h, rest)
	return f, nil
}
