package supervise

import (
	"fmt"
	"strings"
	"time"
)

// Unit describes the systemd service that runs `runtime serve` where
// systemd is PID 1; systemd then does what Run does elsewhere (restart
// with backoff, drain on stop). Every field but User is required.
type Unit struct {
	// Name is the server's name, for the description.
	Name string
	// Executable is the runtime executable (absolute path).
	Executable string
	// StateDir is the server's state directory (absolute path).
	StateDir string
	// LogFile receives the runtime's output, as with the builtin
	// supervisor, so the provider's error messages can quote it.
	LogFile string
	// User is true for a unit of the per-user manager (systemctl --user),
	// which is wanted by default.target rather than multi-user.target.
	User bool
	// Backoff is Options' MinBackoff and MaxBackoff; zero means theirs.
	MinBackoff, MaxBackoff time.Duration
	// StopTimeout is how long systemd waits for the drain; zero means
	// Options' default.
	StopTimeout time.Duration
}

// UnitName is the systemd unit name of the server called name.
func UnitName(name string) string { return "mailstack-" + name + ".service" }

// SystemdUnit renders u as a unit file. Restarts back off exponentially
// (RestartSteps and RestartMaxDelaySec need systemd 254; older versions
// ignore them with a warning and restart every RestartSec). KillMode=mixed
// sends SIGTERM to the runtime alone, which drains, as Run does.
func SystemdUnit(u Unit) string {
	o := Options{MinBackoff: u.MinBackoff, MaxBackoff: u.MaxBackoff, StopTimeout: u.StopTimeout}.withDefaults()
	wantedBy := "multi-user.target"
	if u.User {
		wantedBy = "default.target"
	}
	steps := 0
	for d := o.MinBackoff; d < o.MaxBackoff; d *= 2 {
		steps++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by terraform-provider-mailstack for mailstack_server %q; changes are overwritten.\n", u.Name)
	fmt.Fprintf(&b, "[Unit]\n")
	fmt.Fprintf(&b, "Description=mailstack mail runtime %s\n", u.Name)
	fmt.Fprintf(&b, "After=network-online.target\n")
	fmt.Fprintf(&b, "Wants=network-online.target\n")
	fmt.Fprintf(&b, "StartLimitIntervalSec=0\n")
	fmt.Fprintf(&b, "\n[Service]\n")
	fmt.Fprintf(&b, "Type=simple\n")
	fmt.Fprintf(&b, "ExecStart=%s runtime serve --state-dir %s\n", systemdQuote(u.Executable), systemdQuote(u.StateDir))
	fmt.Fprintf(&b, "WorkingDirectory=%s\n", systemdPath(u.StateDir))
	fmt.Fprintf(&b, "StandardOutput=append:%s\n", systemdPath(u.LogFile))
	fmt.Fprintf(&b, "StandardError=append:%s\n", systemdPath(u.LogFile))
	fmt.Fprintf(&b, "Restart=always\n")
	fmt.Fprintf(&b, "RestartSec=%s\n", systemdDuration(o.MinBackoff))
	fmt.Fprintf(&b, "RestartSteps=%d\n", steps)
	fmt.Fprintf(&b, "RestartMaxDelaySec=%s\n", systemdDuration(o.MaxBackoff))
	fmt.Fprintf(&b, "KillMode=mixed\n")
	fmt.Fprintf(&b, "KillSignal=SIGTERM\n")
	fmt.Fprintf(&b, "TimeoutStopSec=%s\n", systemdDuration(o.StopTimeout))
	fmt.Fprintf(&b, "UMask=0077\n")
	fmt.Fprintf(&b, "\n[Install]\n")
	fmt.Fprintf(&b, "WantedBy=%s\n", wantedBy)
	return b.String()
}

// systemdDuration renders d in systemd's time syntax ("250ms", "30s").
func systemdDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

// systemdPath escapes the % specifiers in a path setting, which takes the
// rest of the line as it is (no quotes).
func systemdPath(s string) string { return strings.ReplaceAll(s, "%", "%%") }

// systemdQuote quotes a word for ExecStart and paths when it needs it:
// systemd splits on white space and expands % specifiers and $ variables.
func systemdQuote(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	s = strings.ReplaceAll(s, "$", "$$")
	if !strings.ContainsAny(s, " \t\"'\\") {
		return s
	}
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `"`, `\"`)
	return `"` + s + `"`
}
