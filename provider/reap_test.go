package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil/netns"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
	"github.com/mailstack/terraform-provider-mailstack/runtime/supervise"
)

// reapCheckEnv names the file TestAccLeftRunning writes what it started
// to; scripts/reap-check.sh sets it.
const reapCheckEnv = "MAILSTACK_REAP_CHECK"

// TestAccLeftRunning is the leak scripts/reap-check.sh makes on purpose:
// it starts a server through the real provider (a supervisor and a
// runtime, detached by design) and a remote host (sshd in a network
// namespace), writes their pids and the namespace's name to the file
// reapCheckEnv names, and waits for go test's -timeout to kill it. Its cleanups never run, so
// all of that is left to scripts/reap.sh. Skipped without reapCheckEnv.
func TestAccLeftRunning(t *testing.T) {
	out := os.Getenv(reapCheckEnv)
	if out == "" {
		t.Skip("a deliberate leak for scripts/reap-check.sh, which sets " + reapCheckEnv)
	}
	deadline, ok := t.Deadline()
	if !ok {
		t.Fatal("run with -timeout: the test waits for it")
	}
	e := newAccEnv(t)
	rh := netns.New(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{{
			Config: e.ProviderBlock() + `
resource "mailstack_server" "mx" {
  hostname = "mail.example.test"
}
`,
			Check: func(*terraform.State) error {
				var b strings.Builder
				for _, name := range []string{supervise.PIDFile, statedir.PIDFile} {
					local, err := hostLocal.ReadPID(filepath.Join(e.Path("default"), name))
					if err != nil || local == 0 {
						return fmt.Errorf("local %s: pid %d, %v", name, local, err)
					}
					fmt.Fprintf(&b, "pid %d\n", local)
				}
				for _, pid := range rh.Processes() {
					fmt.Fprintf(&b, "pid %d\n", pid)
				}
				fmt.Fprintf(&b, "netns %s\n", rh.Name)
				tmp := out + ".tmp"
				if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
					return err
				}
				if err := os.Rename(tmp, out); err != nil {
					return err
				}
				time.Sleep(time.Until(deadline) + time.Minute)
				return nil
			},
		}},
	})
}
