package supervise

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestSystemdUnit compares rendered units with golden files in testdata/
// (go test -update rewrites them; review the diff).
func TestSystemdUnit(t *testing.T) {
	cases := []struct {
		name string
		unit Unit
	}{
		{"system", Unit{Name: "default", Executable: "/var/lib/mailstack/default/bin/terraform-provider-mailstack",
			StateDir: "/var/lib/mailstack/default", LogFile: "/var/lib/mailstack/default/runtime.log"}},
		{"user-tuned", Unit{Name: "mx-2", Executable: "/home/ann/.local/state/mailstack/mx-2/bin/terraform-provider-mailstack",
			StateDir: "/home/ann/.local/state/mailstack/mx-2", LogFile: "/home/ann/.local/state/mailstack/mx-2/runtime.log",
			User: true, MinBackoff: time.Second, MaxBackoff: time.Minute, StopTimeout: 20 * time.Second}},
		{"quoting", Unit{Name: "odd", Executable: "/srv/mail 100%/bin/terraform-provider-mailstack",
			StateDir: "/srv/mail 100%/odd", LogFile: "/srv/mail 100%/odd/runtime.log"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := SystemdUnit(tc.unit)
			golden := filepath.Join("testdata", tc.name+".service")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("unit differs from %s:\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
}

func TestSystemdUnitDirectives(t *testing.T) {
	u := SystemdUnit(Unit{Name: "default", Executable: "/x/bin/mailstack", StateDir: "/x", LogFile: "/x/runtime.log"})
	for _, want := range []string{
		"ExecStart=/x/bin/mailstack runtime serve --state-dir /x\n",
		"Restart=always\n",
		"RestartSec=250ms\n",
		"RestartMaxDelaySec=30s\n",
		"RestartSteps=7\n",
		"KillSignal=SIGTERM\n",
		"TimeoutStopSec=45s\n",
		"WantedBy=multi-user.target\n",
	} {
		if !strings.Contains(u, want) {
			t.Errorf("unit lacks %q:\n%s", want, u)
		}
	}
}

func TestUnitName(t *testing.T) {
	if got := UnitName("mx-2"); got != "mailstack-mx-2.service" {
		t.Errorf("UnitName = %q", got)
	}
}
