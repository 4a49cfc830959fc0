package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/atomicfile"
)

// Systemd manages runtime services through systemctl. Use it only where
// Local.Systemd reports systemd as PID 1.
type Systemd struct {
	// User selects the per-user service manager (systemctl --user, units in
	// ~/.config/systemd/user); false is the system manager (units in
	// /etc/systemd/system), which needs root.
	User bool
}

// Systemd returns the service manager to use on this host, and whether
// there is one: systemd runs as PID 1 and, for anyone but root (who uses
// the system manager), their user manager runs too.
func (Local) Systemd() (Systemd, bool) {
	s := Systemd{User: os.Geteuid() != 0}
	if !systemdIsInit() {
		return s, false
	}
	if s.User {
		rt := os.Getenv("XDG_RUNTIME_DIR")
		if rt == "" {
			return s, false
		}
		if _, err := os.Stat(filepath.Join(rt, "systemd", "private")); err != nil {
			return s, false
		}
	}
	return s, true
}

// systemdIsInit reports whether PID 1 is systemd: /proc/1/comm where it
// can be read, else the marker directory sd_booted(3) checks.
func systemdIsInit() bool {
	if comm, err := os.ReadFile("/proc/1/comm"); err == nil {
		return strings.TrimSpace(string(comm)) == "systemd"
	}
	st, err := os.Stat("/run/systemd/system")
	return err == nil && st.IsDir()
}

// UnitDir is the folder unit files are installed in.
func (s Systemd) UnitDir() (string, error) {
	if !s.User {
		return "/etc/systemd/system", nil
	}
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "systemd", "user"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".config", "systemd", "user"), nil
}

// UnitPath is where unit name's file lives.
func (s Systemd) UnitPath(name string) (string, error) {
	dir, err := s.UnitDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, name), nil
}

// Installed reports whether unit name's file exists.
func (s Systemd) Installed(name string) bool {
	p, err := s.UnitPath(name)
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}

// Install writes unit name, reloads systemd and enables and starts it
// (systemctl enable --now). A unit whose text changed is restarted.
func (s Systemd) Install(ctx context.Context, name string, text []byte) error {
	p, err := s.UnitPath(name)
	if err != nil {
		return err
	}
	old, readErr := os.ReadFile(p)
	changed := readErr != nil || !bytes.Equal(old, text)
	if changed {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("creating unit folder: %w", err)
		}
		if err := atomicfile.WriteFile(p, text, 0o644); err != nil {
			return err
		}
		if _, err := s.systemctl(ctx, "daemon-reload"); err != nil {
			return err
		}
	}
	if _, err := s.systemctl(ctx, "enable", "--now", name); err != nil {
		return err
	}
	if changed && readErr == nil {
		_, err = s.systemctl(ctx, "restart", name)
	}
	return err
}

// Restart restarts unit name (its stop drains the runtime).
func (s Systemd) Restart(ctx context.Context, name string) error {
	_, err := s.systemctl(ctx, "restart", name)
	return err
}

// Active reports whether unit name is active (running).
func (s Systemd) Active(ctx context.Context, name string) bool {
	_, err := s.systemctl(ctx, "is-active", "--quiet", name)
	return err == nil
}

// Remove stops and disables unit name and deletes its file. A unit that
// is not installed is not an error.
func (s Systemd) Remove(ctx context.Context, name string) error {
	p, err := s.UnitPath(name)
	if err != nil {
		return err
	}
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if _, err := s.systemctl(ctx, "disable", "--now", name); err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	_, err = s.systemctl(ctx, "daemon-reload")
	return err
}

func (s Systemd) systemctl(ctx context.Context, args ...string) (string, error) {
	if s.User {
		args = append([]string{"--user"}, args...)
	}
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "systemctl", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("systemctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}
