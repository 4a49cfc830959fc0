package host

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"strings"
	"time"
)

// Systemd manages runtime services through systemctl on a host. Use it
// only where DetectSystemd reports systemd as PID 1.
type Systemd struct {
	h Host
	// User selects the per-user service manager (systemctl --user, units in
	// ~/.config/systemd/user); false is the system manager (units in
	// /etc/systemd/system), which needs root.
	User bool
	// unitDir is the folder unit files are installed in.
	unitDir string
}

// systemdProbe prints, one per line: the login's uid, PID 1's name (or
// "systemd" where only sd_booted(3)'s marker folder says so), the folder
// of user units, and whether the user manager's socket exists.
const systemdProbe = `id -u
cat /proc/1/comm 2>/dev/null || { test -d /run/systemd/system && echo systemd; } || echo unknown
printf '%s\n' "${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user"
if [ -n "${XDG_RUNTIME_DIR:-}" ] && [ -e "$XDG_RUNTIME_DIR/systemd/private" ]; then echo yes; else echo no; fi`

// DetectSystemd returns the service manager to use on h, and whether there
// is one: systemd runs as PID 1 and, for anyone but root (who uses the
// system manager), their user manager runs too. An error says the probe
// could not run (the host did not answer); the manager is then reported
// missing, but the answer is not one to remember.
func DetectSystemd(ctx context.Context, h Host) (Systemd, bool, error) {
	f, err := Detect(ctx, h)
	return f.Systemd, f.HasSystemd, err
}

// parseSystemdProbe reads systemdProbe's output.
func parseSystemdProbe(h Host, out string) (Systemd, bool) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		return Systemd{h: h}, false
	}
	s := Systemd{h: h, User: strings.TrimSpace(lines[0]) != "0", unitDir: "/etc/systemd/system"}
	if strings.TrimSpace(lines[1]) != "systemd" {
		return s, false
	}
	if s.User {
		s.unitDir = strings.TrimSpace(lines[2])
		if strings.TrimSpace(lines[3]) != "yes" {
			return s, false
		}
	}
	return s, true
}

// UnitPath is where unit name's file lives.
func (s Systemd) UnitPath(name string) string { return path.Join(s.unitDir, name) }

// Installed reports whether unit name's file exists.
func (s Systemd) Installed(ctx context.Context, name string) bool {
	_, err := s.h.Stat(ctx, s.UnitPath(name))
	return err == nil
}

// Install writes unit name, reloads systemd and enables and starts it
// (systemctl enable --now). A unit whose text changed is restarted.
func (s Systemd) Install(ctx context.Context, name string, text []byte) error {
	p := s.UnitPath(name)
	old, readErr := s.h.ReadFile(ctx, p)
	changed := readErr != nil || !bytes.Equal(old, text)
	if changed {
		if err := s.h.MkdirAll(ctx, path.Dir(p), 0o755); err != nil {
			return fmt.Errorf("creating unit folder: %w", err)
		}
		if err := s.h.WriteFile(ctx, p, text, WriteOptions{Mode: 0o644}); err != nil {
			return err
		}
		if err := s.systemctl(ctx, "daemon-reload"); err != nil {
			return err
		}
	}
	if err := s.systemctl(ctx, "enable", "--now", name); err != nil {
		return err
	}
	if changed && readErr == nil {
		return s.systemctl(ctx, "restart", name)
	}
	return nil
}

// Restart restarts unit name (its stop drains the runtime).
func (s Systemd) Restart(ctx context.Context, name string) error {
	return s.systemctl(ctx, "restart", name)
}

// Active reports whether unit name is active (running).
func (s Systemd) Active(ctx context.Context, name string) bool {
	return s.systemctl(ctx, "is-active", "--quiet", name) == nil
}

// Remove stops and disables unit name and deletes its file. A unit that
// is not installed is not an error.
func (s Systemd) Remove(ctx context.Context, name string) error {
	if !s.Installed(ctx, name) {
		return nil
	}
	if err := s.systemctl(ctx, "disable", "--now", name); err != nil {
		return err
	}
	if err := s.h.Remove(ctx, s.UnitPath(name)); err != nil {
		return err
	}
	return s.systemctl(ctx, "daemon-reload")
}

func (s Systemd) systemctl(ctx context.Context, args ...string) error {
	if s.User {
		args = append([]string{"--user"}, args...)
	}
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	_, err := s.h.Run(ctx, "systemctl", args...)
	return err
}
