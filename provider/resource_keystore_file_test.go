package provider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

// fileOwner returns a file's mode, uid and gid.
func fileOwner(t *testing.T, file string) (os.FileMode, int, int) {
	t.Helper()
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	return st.Mode().Perm(), int(sys.Uid), int(sys.Gid)
}

// A keystore in an Apache James conf folder, mode 0640 and group of the
// user James runs as, is adopted: changing its password keeps its mode,
// owner and group and leaves no lock file in the folder; file_mode set in
// the configuration is applied and a chmod outside Terraform is repaired;
// destroy leaves the adopted keystore in place.
func TestAccKeystore_adoptedKeystoreKeepsModeOwnerAndFile(t *testing.T) {
	t.Parallel()
	var env testEnv
	e := newAccEnv(t)
	conf := e.Path("james-conf")
	if err := os.Mkdir(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(conf, "keystore")
	keytoolGenkeypair(t, file, "PKCS12", "changeit", "james", "EC")
	if err := os.Chmod(file, 0o640); err != nil {
		t.Fatal(err)
	}
	// As root, the file belongs to another group, named when the host has
	// one with gid 8 ("mail" on Debian).
	root := os.Geteuid() == 0
	gid, group := os.Getegid(), fmt.Sprint(os.Getegid())
	if root {
		gid = 8
		group = "8"
		if out, err := exec.Command("getent", "group", "8").Output(); err == nil {
			group, _, _ = strings.Cut(string(out), ":")
		}
		if err := os.Chown(file, 0, gid); err != nil {
			t.Fatal(err)
		}
	}
	env.Set(KeystorePasswordEnv, "changeit")
	config := func(password, extra string) string {
		return e.SourcedProviderBlock() + fmt.Sprintf(`
resource "mailstack_keystore" "james" {
  path     = %[1]q
  type     = "pkcs12"
  password = %[2]q
  alias    = "james"
  key {
    algorithm = "ec"
  }
  self_signed {
    %[3]s
  }
  %[4]s
}`, file, password, keytoolSubject("james"), extra)
	}
	onlyKeystore := func(*terraform.State) error {
		names, err := filepath.Glob(filepath.Join(conf, "*"))
		if err != nil || len(names) != 1 {
			return fmt.Errorf("the conf folder holds %v (%v), want only the keystore: no lock or temporary file", names, err)
		}
		return nil
	}
	keeps := func(mode os.FileMode) resource.TestCheckFunc {
		return func(*terraform.State) error {
			got, _, g := fileOwner(t, file)
			if got != mode || g != gid {
				return fmt.Errorf("%s has mode %04o group %d, want %04o and %d", file, got, g, mode, gid)
			}
			return nil
		}
	}
	warned := &warnings{}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: warned.wrap(env.factories()),
		CheckDestroy: func(*terraform.State) error {
			if out := keytoolList(t, file, "second-pass"); !strings.Contains(out, "Alias name: james") {
				return fmt.Errorf("destroy deleted the adopted entry:\n%s", out)
			}
			return keeps(0o640)(nil)
		},
		Steps: []resource.TestStep{
			initOnly(e),
			{
				Config: config("changeit", ""), ResourceName: "mailstack_keystore.james", ImportState: true,
				ImportStateId: file, ImportStatePersist: true,
				ImportStateCheck: func(states []*terraform.InstanceState) error {
					a := states[0].Attributes
					if a["delete_on_destroy"] != "false" || a["file_mode"] != "0640" || a["group"] != group {
						return fmt.Errorf("imported delete_on_destroy %q file_mode %q group %q, want false, 0640, %q",
							a["delete_on_destroy"], a["file_mode"], a["group"], group)
					}
					return nil
				},
			},
			{
				Config: config("second-pass", ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction("mailstack_keystore.james", plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeTestCheckFunc(keeps(0o640), onlyKeystore, func(*terraform.State) error {
					keytoolList(t, file, "second-pass")
					return nil
				}),
			},
			{
				Config: config("second-pass", `file_mode = "0644"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction("mailstack_keystore.james", plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeTestCheckFunc(keeps(0o644), onlyKeystore),
			},
			{
				// chmod outside Terraform: drift that apply repairs.
				PreConfig: func() {
					if err := os.Chmod(file, 0o600); err != nil {
						t.Fatal(err)
					}
				},
				Config: config("second-pass", `file_mode = "0640"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("mailstack_keystore.james", plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue("mailstack_keystore.james", tfjsonpath.New("fingerprint_sha256"), knownvalue.NotNull()),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("mailstack_keystore.james", tfjsonpath.New("group"), knownvalue.StringExact(group)),
					statecheck.ExpectKnownValue("mailstack_keystore.james", tfjsonpath.New("delete_on_destroy"), knownvalue.Bool(false)),
				},
				Check: keeps(0o640),
			},
			{
				// The resource leaves the configuration: the plan says that
				// the adopted keystore stays, and it does.
				PreConfig: warned.reset,
				Config:    e.SourcedProviderBlock(),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("mailstack_keystore.james", plancheck.ResourceActionDestroy),
						warned.expect("mailstack_keystore", `Keystore Entry Kept on Destroy: Destroy leaves the entry "james" and the keystore `+
							regexp.QuoteMeta(file)+` on disk`),
					},
				},
				Check: func(*terraform.State) error {
					keytoolList(t, file, "second-pass")
					return keeps(0o640)(nil)
				},
			},
		},
	})
}

// An adopted entry with delete_on_destroy = true: the change is planned
// in place and touches nothing on disk; destroy then deletes that entry
// and keeps the keystore file with the entry Terraform does not manage.
func TestAccKeystore_adoptedEntryDeletedWhenAsked(t *testing.T) {
	t.Parallel()
	var env testEnv
	e := newAccEnv(t)
	file := e.Path("james.jks")
	keytoolGenkeypair(t, file, "JKS", "changeit", "james", "EC")
	keytoolGenkeypair(t, file, "JKS", "changeit", "other", "EC")
	env.Set(KeystorePasswordEnv, "changeit")
	before := readTestFile(t, file)
	config := e.SourcedProviderBlock() + fmt.Sprintf(`
resource "mailstack_keystore" "james" {
  path              = %[1]q
  password          = "changeit"
  alias             = "james"
  delete_on_destroy = true
  key {
    algorithm = "EC"
  }
  self_signed {
    %[2]s
  }
}`, file, keytoolSubject("james"))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: env.factories(),
		CheckDestroy: func(*terraform.State) error {
			out := keytoolList(t, file, "changeit")
			if strings.Contains(out, "Alias name: james") || !strings.Contains(out, "Alias name: other") {
				return fmt.Errorf("after destroy with delete_on_destroy = true, want only the entry \"other\":\n%s", out)
			}
			return nil
		},
		Steps: []resource.TestStep{
			initOnly(e),
			{
				Config: config, ResourceName: "mailstack_keystore.james", ImportState: true,
				ImportStateId: file + ":james", ImportStatePersist: true,
			},
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("mailstack_keystore.james", plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue("mailstack_keystore.james", tfjsonpath.New("delete_on_destroy"), knownvalue.Bool(true)),
						plancheck.ExpectKnownValue("mailstack_keystore.james", tfjsonpath.New("fingerprint_sha256"), knownvalue.NotNull()),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: func(*terraform.State) error {
					if !bytes.Equal(readTestFile(t, file), before) {
						return fmt.Errorf("setting delete_on_destroy rewrote %s", file)
					}
					return nil
				},
			},
		},
	})
}

// A state written by version 0 of the schema is upgraded by terraform
// through the provider: plan is empty, and destroy keeps the keystore,
// since version 0 did not record who made it.
func TestAccKeystore_stateFromSchemaVersion0(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	file, workDir := e.Path("mx.jks"), e.Path("work")
	if err := os.Mkdir(workDir, 0o700); err != nil {
		t.Fatal(err)
	}
	config := e.ProviderBlock() + fmt.Sprintf(`
resource "mailstack_keystore" "mx" {
  path     = %[1]q
  password = "changeit"
  alias    = "james"
  key {
    algorithm = "ECDSA"
  }
  self_signed {
    subject {
      common_name = "mail.example.test"
    }
  }
}`, file)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		// The state file is then at a known place: work/work*/terraform.tfstate.
		WorkingDir: workDir,
		CheckDestroy: func(*terraform.State) error {
			if out := keytoolList(t, file, "changeit"); !strings.Contains(out, "Alias name: james") {
				return fmt.Errorf("destroy deleted an entry whose version 0 state could not say who made it:\n%s", out)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{Config: config},
			{
				PreConfig: func() {
					states, _ := filepath.Glob(filepath.Join(workDir, "work*", "terraform.tfstate"))
					if len(states) != 1 {
						t.Fatalf("state files %v, want one", states)
					}
					downgradeToV0(t, states[0])
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("mailstack_keystore.mx", tfjsonpath.New("delete_on_destroy"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue("mailstack_keystore.mx", tfjsonpath.New("key").AtMapKey("rsa_bits"), knownvalue.Null()),
				},
			},
		},
	})
}

// downgradeToV0 rewrites the keystore in a terraform state file as
// version 0 of the schema had it.
func downgradeToV0(t *testing.T, stateFile string) {
	t.Helper()
	var st map[string]any
	if err := json.Unmarshal(readTestFile(t, stateFile), &st); err != nil {
		t.Fatal(err)
	}
	for _, r := range st["resources"].([]any) {
		res := r.(map[string]any)
		if res["type"] != "mailstack_keystore" {
			continue
		}
		inst := res["instances"].([]any)[0].(map[string]any)
		inst["schema_version"] = 0
		attrs := inst["attributes"].(map[string]any)
		for _, name := range []string{"delete_on_destroy", "password_wo", "password_wo_version", "file_mode", "owner",
			"group", "locally_signed", "pem", "chain_pem", "issuer_pem"} {
			delete(attrs, name)
		}
		attrs["key"].(map[string]any)["rsa_bits"] = 2048
		for _, b := range attrs["self_signed"].([]any) {
			block := b.(map[string]any)
			for _, name := range []string{"ip_addresses", "validity_hours", "early_renewal_hours", "is_ca_certificate", "key_usage", "extended_key_usage"} {
				delete(block, name)
			}
		}
	}
	out, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, stateFile, out)
}
