package provider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
	"github.com/mailstack/terraform-provider-mailstack/runtime/supervise"
)

// repairWorld is a server with one listener and one user whose host the
// test breaks behind Terraform's back.
type repairWorld struct {
	e          *accEnv
	imap, pop3 int
}

func (w *repairWorld) dir() string { return w.e.Path("default") }

func (w *repairWorld) config(extra string) string {
	return w.e.ProviderBlock() + fmt.Sprintf(`
resource "mailstack_server" "mx" {
  hostname = "mail.example.test"
  domains  = ["example.test"]
}

resource "mailstack_listener" "imap" {
  server_id = mailstack_server.mx.id
  protocol  = "imap"
  address   = "127.0.0.1"
  port      = %d
  tls {
    mode = "none"
  }
}

resource "mailstack_user" "alice" {
  server_id = mailstack_server.mx.id
  address   = "alice@example.test"
  password  = "alice-secret-1"
}
%s`, w.imap, extra)
}

// servePID is the running runtime's pid.
func (w *repairWorld) servePID() (int, error) {
	st, err := w.e.client().Status(context.Background())
	if err != nil {
		return 0, err
	}
	return st.PID, nil
}

// healthy checks what every repair must leave: the runtime answers under
// its supervisor, the listener is bound, the user is there, and the
// executable in the state directory is the provider's.
func (w *repairWorld) healthy(*terraform.State) error {
	ctx := context.Background()
	st, err := w.e.client().Status(ctx)
	if err != nil {
		return err
	}
	if st.Supervisor == nil {
		return errors.New("the runtime runs without its supervisor")
	}
	if portsClosed(w.imap) == nil {
		return fmt.Errorf("port %d is not bound", w.imap)
	}
	if _, err := w.e.client().User(ctx, "alice@example.test"); err != nil {
		return fmt.Errorf("user alice: %w", err)
	}
	want, err := host.FileSHA256(runtimeExe)
	if err != nil {
		return err
	}
	if got, err := host.FileSHA256(filepath.Join(w.dir(), statedir.Executable)); err != nil || got != want {
		return fmt.Errorf("executable in the state directory: SHA-256 %s (%v), want %s", got, err, want)
	}
	return nil
}

// configHolds checks config.json: the server's settings and its listener.
func (w *repairWorld) configHolds(*terraform.State) error {
	doc, err := statedir.Local(w.dir()).LoadConfig(context.Background())
	if err != nil {
		return err
	}
	if doc.Server.Hostname != "mail.example.test" || len(doc.Listeners) != 1 {
		return fmt.Errorf("config.json after the repair: %+v", doc)
	}
	return nil
}

// samePID checks that a repair did not restart the runtime.
func (w *repairWorld) samePID(pid *int) resource.TestCheckFunc {
	return func(*terraform.State) error {
		now, err := w.servePID()
		if err != nil {
			return err
		}
		if now != *pid {
			return fmt.Errorf("the runtime was restarted (pid %d, was %d); the repair needs no restart", now, *pid)
		}
		return nil
	}
}

// breakConfig deletes config.json of the server in state directory dir
// and kills its runtime (not its supervisor), then checks that the
// supervisor waits instead of crash looping.
func breakConfig(t *testing.T, dir string) {
	t.Helper()
	st, err := statedir.Local(dir).Client().Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, statedir.ConfigFile)); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var sup supervise.Status
	err = waitFor(testutil.HangGuard, func() error {
		if sup, err = supervise.ReadStatus(dir); err != nil {
			return err
		}
		if sup.State != supervise.StateWaiting {
			return fmt.Errorf("supervisor state %q, want %q", sup.State, supervise.StateWaiting)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	later, err := supervise.ReadStatus(dir)
	if err != nil || later.State != supervise.StateWaiting || later.Restarts != sup.Restarts {
		t.Fatalf("supervisor after config.json went: %+v (%v), then %+v; want it waiting, not restarting", sup, err, later)
	}
}

// TestAccServer_repairsBrokenHost breaks the host in the ways an unlucky
// operator would; each shows in plan as a repair that apply makes, and
// destroy succeeds from the last broken state.
func TestAccServer_repairsBrokenHost(t *testing.T) {
	e := newAccEnv(t)
	w := &repairWorld{e: e, imap: e.FreePort(), pop3: e.FreePort()}
	var pid int
	serverRepair := func(extra ...plancheck.PlanCheck) resource.ConfigPlanChecks {
		return resource.ConfigPlanChecks{
			PreApply: append([]plancheck.PlanCheck{
				plancheck.ExpectResourceAction("mailstack_server.mx", plancheck.ResourceActionUpdate),
				plancheck.ExpectResourceAction("mailstack_user.alice", plancheck.ResourceActionNoop),
			}, extra...),
			PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
		}
	}
	remember := func() {
		var err error
		if pid, err = w.servePID(); err != nil {
			t.Fatal(err)
		}
	}
	clash := fmt.Sprintf(`
resource "mailstack_listener" "pop3" {
  server_id = mailstack_server.mx.id
  protocol  = "pop3"
  address   = "0.0.0.0"
  port      = %[1]d
  tls {
    mode = "none"
  }
}

resource "mailstack_listener" "pop3_again" {
  server_id = mailstack_server.mx.id
  protocol  = "pop3"
  address   = "127.0.0.1"
  port      = %[1]d
  tls {
    mode = "none"
  }
}`, w.pop3)

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		CheckDestroy: func(*terraform.State) error {
			if err := portsClosed(w.imap, w.pop3); err != nil {
				return fmt.Errorf("after destroy: %w", err)
			}
			if pids := processesUnder(e.StateDir); len(pids) > 0 {
				return fmt.Errorf("after destroy, processes %v still run in %s", pids, e.StateDir)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config:           w.config(""),
				Check:            w.healthy,
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				// Two new listeners on one port: refused at plan time,
				// before either is created.
				Config:      w.config(clash),
				ExpectError: regexp.MustCompile(`Port Clash(.|\n)*would both bind port ` + fmt.Sprint(w.pop3)),
			},
			{
				// Nothing of the refused plan reached the host.
				PreConfig: func() {
					st, err := e.client().Status(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					if len(st.Listeners) != 1 || portsClosed(w.pop3) != nil {
						t.Fatalf("after the refused plan the runtime has listeners %v (port %d open: %v), want just the IMAP one",
							st.Listeners, w.pop3, portsClosed(w.pop3) != nil)
					}
				},
				Config:           w.config(""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				// config.json deleted, then the runtime killed: the
				// supervisor waits; apply writes the config, restarts the
				// runtime and puts the listener back.
				PreConfig: func() { breakConfig(t, w.dir()) },
				Config:    w.config(""),
				ConfigPlanChecks: serverRepair(
					plancheck.ExpectKnownValue("mailstack_server.mx", tfjsonpath.New("running"), knownvalue.Bool(true)),
					plancheck.ExpectResourceAction("mailstack_listener.imap", plancheck.ResourceActionUpdate)),
				Check: resource.ComposeTestCheckFunc(w.healthy, w.configHolds),
			},
			{
				// config.json deleted under the running runtime: it writes
				// it again, and nothing restarts.
				PreConfig: func() {
					remember()
					if err := os.Remove(filepath.Join(w.dir(), statedir.ConfigFile)); err != nil {
						t.Fatal(err)
					}
				},
				Config: w.config(""),
				ConfigPlanChecks: serverRepair(
					plancheck.ExpectKnownValue("mailstack_server.mx", tfjsonpath.New("running"), knownvalue.Bool(true)),
					plancheck.ExpectResourceAction("mailstack_listener.imap", plancheck.ResourceActionNoop)),
				Check: resource.ComposeTestCheckFunc(w.healthy, w.samePID(&pid), w.configHolds),
			},
			{
				// The executable deleted under the running runtime: put
				// back without a restart.
				PreConfig: func() {
					remember()
					if err := os.Remove(filepath.Join(w.dir(), statedir.Executable)); err != nil {
						t.Fatal(err)
					}
				},
				Config:           w.config(""),
				ConfigPlanChecks: serverRepair(plancheck.ExpectResourceAction("mailstack_listener.imap", plancheck.ResourceActionNoop)),
				Check:            resource.ComposeTestCheckFunc(w.healthy, w.samePID(&pid)),
			},
			{
				// ... or replaced by another file.
				PreConfig: func() {
					remember()
					exe := filepath.Join(w.dir(), statedir.Executable)
					if err := os.WriteFile(exe+".tmp", []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.Rename(exe+".tmp", exe); err != nil {
						t.Fatal(err)
					}
				},
				Config:           w.config(""),
				ConfigPlanChecks: serverRepair(),
				Check:            resource.ComposeTestCheckFunc(w.healthy, w.samePID(&pid)),
			},
			{
				// The state directory's mode (and, as root, owner) changed.
				PreConfig: func() {
					remember()
					if err := os.Chmod(w.dir(), 0o755); err != nil {
						t.Fatal(err)
					}
					if os.Getuid() == 0 {
						if err := os.Chown(w.dir(), 65534, 65534); err != nil {
							t.Fatal(err)
						}
					}
				},
				Config: w.config(""),
				ConfigPlanChecks: serverRepair(
					plancheck.ExpectKnownValue("mailstack_server.mx", tfjsonpath.New("running"), knownvalue.Bool(true))),
				Check: resource.ComposeTestCheckFunc(w.healthy, w.samePID(&pid), func(*terraform.State) error {
					fi, err := os.Stat(w.dir())
					if err != nil {
						return err
					}
					st := fi.Sys().(*syscall.Stat_t)
					if fi.Mode().Perm() != 0o700 || int(st.Uid) != os.Getuid() || int(st.Gid) != os.Getgid() {
						return fmt.Errorf("state directory after the repair: mode %04o, owner %d:%d", fi.Mode().Perm(), st.Uid, st.Gid)
					}
					return nil
				}),
			},
			{
				// Broken again (config.json deleted, runtime killed) and left
				// so: plan shows the repair, and destroy works from there
				// although the control socket is dead.
				PreConfig:          func() { breakConfig(t, w.dir()) },
				Config:             w.config(""),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
		},
	})
}
