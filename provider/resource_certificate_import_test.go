package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

// keytoolAliases returns the aliases and entry types keytool lists.
func keytoolAliases(t *testing.T, file, storepass string) map[string]string {
	t.Helper()
	return keytoolAliasesIn(keytoolList(t, file, storepass))
}

func keytoolAliasesIn(out string) map[string]string {
	got := map[string]string{}
	for alias, fields := range keytoolEntries(out) {
		got[alias] = fields["kind"]
	}
	return got
}

func wantEntries(t *testing.T, file string, want map[string]string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		got := keytoolAliases(t, file, "changeit")
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("keytool lists %v, want %v", got, want)
		}
		return nil
	}
}

// A root, then a bundle, then the root again go into a keystore made by
// keytool, next to its key; import by <path>:<alias> matches the state,
// and destroy removes only the trusted entries.
func TestAccCertificateImport_rootAndBundle(t *testing.T) {
	t.Parallel()
	var env testEnv
	e := newAccEnv(t)
	file := e.Path("james.jks")
	keytoolGenkeypair(t, file, "JKS", "changeit", "james", "EC")
	root := newRootCA(t, t.TempDir(), "root", "Test Root CA")
	inter := root.intermediate("int", "Test Intermediate CA")
	rootFP := keytoolField(keytool(t, "-printcert", "-file", filepath.Join(root.dir, "root.pem")), "SHA256: ")[0]
	env.Set(KeystorePasswordEnv, "changeit")

	config := func(pemText string) string {
		return e.ProviderBlock() + fmt.Sprintf(`
resource "mailstack_certificate_import" "root" {
  keystore_path     = %[1]q
  keystore_password = "changeit"
  alias             = "root"
  certificate_pem   = %[2]q
}`, file, pemText)
	}
	const addr = "mailstack_certificate_import.root"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: env.factories(),
		CheckDestroy:             wantEntries(t, file, map[string]string{"james": "PrivateKeyEntry"}),
		Steps: []resource.TestStep{
			{
				Config: config(root.CertPEM),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("aliases"), knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("root")})),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("fingerprint_sha256"), knownvalue.StringExact(rootFP)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("subject"), knownvalue.StringExact("CN=Test Root CA, O=Example")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("keystore_type"), knownvalue.StringExact("JKS")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringExact(file+":root")),
				},
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check: resource.ComposeTestCheckFunc(
					wantEntries(t, file, map[string]string{"james": "PrivateKeyEntry", "root": "trustedCertEntry"}),
					func(*terraform.State) error {
						if out := keytoolList(t, file, "changeit"); !strings.Contains(out, "SHA256: "+rootFP) {
							return fmt.Errorf("keytool does not list the root's fingerprint:\n%s", out)
						}
						return nil
					}),
			},
			{
				Config: config(inter.CertPEM + root.CertPEM),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue(addr, tfjsonpath.New("aliases"), knownvalue.ListExact([]knownvalue.Check{
							knownvalue.StringExact("root-1"), knownvalue.StringExact("root-2")})),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: wantEntries(t, file, map[string]string{"james": "PrivateKeyEntry", "root-1": "trustedCertEntry", "root-2": "trustedCertEntry"}),
			},
			{
				Config: config(root.CertPEM),
				Check:  wantEntries(t, file, map[string]string{"james": "PrivateKeyEntry", "root": "trustedCertEntry"}),
			},
			{
				ResourceName:            addr,
				ImportState:             true,
				ImportStateId:           file + ":root",
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"keystore_password", "delete_on_destroy"},
			},
			{
				ResourceName:  addr,
				ImportState:   true,
				ImportStateId: file + ":nothing",
				ExpectError:   regexp.MustCompile(`(?s)has\s+no\s+trusted\s+certificate\s+entry\s+"nothing"`),
			},
		},
	})
}

// Entries deleted or replaced with keytool show in plan and apply puts
// them back; destroying the keystore and the import removes the file.
func TestAccCertificateImport_drift(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	file := e.Path("james.jks")
	caDir := t.TempDir()
	root := newRootCA(t, caDir, "root", "Test Root CA")
	other := newRootCA(t, caDir, "other", "Someone Else")
	config := e.ProviderBlock() + fmt.Sprintf(`
resource "mailstack_keystore" "mx" {
  path     = %[1]q
  password = "changeit"
  alias    = "james"
  self_signed {
    subject {
      common_name = "mail.example.test"
    }
  }
}

resource "mailstack_certificate_import" "root" {
  keystore_path     = mailstack_keystore.mx.path
  keystore_password = "changeit"
  alias             = "root"
  certificate_pem   = %[2]q
}`, file, root.CertPEM)
	const addr = "mailstack_certificate_import.root"
	step := func(pre func(), action plancheck.ResourceActionType) resource.TestStep {
		return resource.TestStep{
			PreConfig: pre,
			Config:    config,
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, action)},
				PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
			},
			Check: func(s *terraform.State) error {
				fp, _ := stateAttr(s, addr, "fingerprint_sha256")
				if out := keytoolList(t, file, "changeit"); !strings.Contains(out, "SHA256: "+fp) {
					return fmt.Errorf("keytool does not list %s:\n%s", fp, out)
				}
				return nil
			},
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		CheckDestroy: func(*terraform.State) error {
			if _, err := os.Stat(file); !os.IsNotExist(err) {
				return fmt.Errorf("%s still there after destroy (%v)", file, err)
			}
			return nil
		},
		Steps: []resource.TestStep{
			step(nil, plancheck.ResourceActionCreate),
			step(func() {
				keytool(t, "-delete", "-alias", "root", "-keystore", file, "-storepass", "changeit")
			}, plancheck.ResourceActionCreate),
			step(func() {
				keytool(t, "-delete", "-alias", "root", "-keystore", file, "-storepass", "changeit")
				keytool(t, "-importcert", "-noprompt", "-alias", "root", "-file", other.file(".pem"),
					"-keystore", file, "-storepass", "changeit")
			}, plancheck.ResourceActionUpdate),
		},
	})
}

// The keytool sequence of a CA-signed keystore: the root is imported as a
// trusted entry first (keytool -importcert -trustcacerts -alias root),
// then a reply that holds only the leaf and its intermediate is installed
// and completed with that root, as keytool does.
func TestAccKeystore_csrReplyCompletedByImportedRoot(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	caDir := t.TempDir()
	root := newRootCA(t, caDir, "root", "Test Root CA")
	inter := root.intermediate("int", "Test Intermediate CA")
	ksPath, replyPath, rootPath := e.Path("james.keystore"), filepath.Join(caDir, "reply.pem"), filepath.Join(caDir, "root.pem")
	withRoot := fmt.Sprintf(`
resource "mailstack_certificate_import" "root" {
  keystore_path     = %[1]q
  keystore_password = "storepass1"
  alias             = "root"
  certificate_pem   = file(%[2]q)
}`, ksPath, rootPath)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{
			{
				Config: csrKeystoreConfig(e, ksPath, "", ""),
				Check: func(s *terraform.State) error {
					csrPEM, err := stateAttr(s, "mailstack_keystore.mx", "csr_pem")
					writeTestFile(t, replyPath, []byte(inter.sign(csrPEM)+inter.CertPEM))
					return err
				},
			},
			{
				Config:      csrKeystoreConfig(e, ksPath, replyPath, ""),
				ExpectError: errorNaming("does not reach a trusted or self-signed root", ksPath, "james"),
			},
			{
				Config: csrKeystoreConfig(e, ksPath, replyPath, "depends_on = [mailstack_certificate_import.root]") + withRoot,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: func(*terraform.State) error {
					out := keytoolList(t, ksPath, "storepass1")
					for _, want := range []string{"Certificate chain length: 3", "Alias name: root", "Entry type: trustedCertEntry"} {
						if !strings.Contains(out, want) {
							return fmt.Errorf("keytool -list -v does not show %q:\n%s", want, out)
						}
					}
					return nil
				},
			},
		},
	})
}

func TestTrustedAliasesAndGroupOrder(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{
		{1, "[root]"},
		{2, "[root-1 root-2]"},
		{3, "[root-1 root-2 root-3]"},
	} {
		if got := fmt.Sprint(trustedAliases("root", tc.n)); got != tc.want {
			t.Errorf("trustedAliases(root, %d) = %s, want %s", tc.n, got, tc.want)
		}
	}
	var group []keystore.Entry
	for _, a := range []string{"root-10", "root-2", "root", "root-1"} { // as TrustedGroup sorts them, or worse
		group = append(group, keystore.Entry{Alias: a})
	}
	if got := fmt.Sprint(groupAliases(orderedGroup(group, "root"))); got != "[root root-1 root-2 root-10]" {
		t.Errorf("orderedGroup = %s, want numeric order", got)
	}
}
