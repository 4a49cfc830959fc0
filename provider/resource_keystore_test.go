package provider

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

func TestAccKeystore_selfSignedJKSReadByKeytool(t *testing.T) {
	t.Parallel()
	var env testEnv
	e := newAccEnv(t)
	ksPath := e.Path("james.keystore")
	config := e.ProviderBlock() + fmt.Sprintf(`
resource "mailstack_keystore" "mx" {
  path     = %[1]q
  password = "changeit"
  alias    = "james"
  key {
    rsa_bits = 3072
  }
  self_signed {
    subject {
      common_name = "mail.example.test"
    }
    dns_names = ["mail.example.test"]
  }
}`, ksPath)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: env.factories(),
		Steps: []resource.TestStep{{
			Config: config,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("mailstack_keystore.mx", tfjsonpath.New("type"), knownvalue.StringExact("JKS")),
				statecheck.ExpectKnownValue("mailstack_keystore.mx", tfjsonpath.New("key").AtMapKey("algorithm"), knownvalue.StringExact("RSA")),
				statecheck.ExpectKnownValue("mailstack_keystore.mx", tfjsonpath.New("ready_for_renewal"), knownvalue.Bool(false)),
				statecheck.ExpectKnownValue("mailstack_keystore.mx", tfjsonpath.New("fingerprint_sha256"),
					knownvalue.StringRegexp(regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`))),
			},
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
			},
			Check: func(s *terraform.State) error {
				out := runTool(t, "keytool", "-list", "-v", "-keystore", ksPath, "-storepass", "changeit")
				fp := s.RootModule().Resources["mailstack_keystore.mx"].Primary.Attributes["fingerprint_sha256"]
				for _, want := range []string{
					"Your keystore contains 1 entry",
					"Alias name: james",
					"Entry type: PrivateKeyEntry",
					"Owner: CN=mail.example.test",
					"3072-bit RSA key",
					"SHA256: " + fp,
				} {
					if !strings.Contains(out, want) {
						return fmt.Errorf("keytool -list -v does not show %q:\n%s", want, out)
					}
				}
				if n := strings.Count(out, "Entry type: PrivateKeyEntry"); n != 1 {
					return fmt.Errorf("keytool lists %d PrivateKeyEntry, want exactly 1", n)
				}
				return nil
			},
		}, {
			// terraform import of what apply made describes it the same way,
			// but for who owns it: destroy keeps what was imported.
			PreConfig:               func() { env.Set(KeystorePasswordEnv, "changeit") },
			ResourceName:            "mailstack_keystore.mx",
			ImportState:             true,
			ImportStateId:           ksPath,
			ImportStateVerify:       true,
			ImportStateVerifyIgnore: []string{"password", "delete_on_destroy"},
		}},
	})
}

// Files that are not the keystore the configuration says, through
// terraform: each error names the file and the alias and says what is
// wrong, and no file changes.
func TestAccKeystore_badKeystoreFiles(t *testing.T) {
	t.Parallel()
	var env testEnv
	e := newAccEnv(t)
	good, pemFile, truncated, empty := e.Path("good.jks"), e.Path("cert.pem"), e.Path("truncated.jks"), e.Path("empty.jks")
	keytoolGenkeypair(t, good, "JKS", "rightpass", "other", "EC")
	ca := newRootCA(t, t.TempDir(), "root", "Test Root CA")
	writeTestFile(t, pemFile, []byte(ca.CertPEM))
	writeTestFile(t, truncated, readTestFile(t, good)[:200])
	writeTestFile(t, empty, nil)
	snap := newSnapshot(t)
	snap.Take(good, pemFile, truncated, empty)
	config := func(file, password string) string {
		return e.SourcedProviderBlock() + fmt.Sprintf(`
resource "mailstack_keystore" "mx" {
  path     = %[1]q
  password = %[2]q
  alias    = "james"
  self_signed {
    subject {
      common_name = "mail.example.test"
    }
  }
}`, file, password)
	}
	step := func(file, password, what string) resource.TestStep {
		return resource.TestStep{
			PreConfig:   snap.Unchanged,
			Config:      config(file, password),
			ExpectError: errorNaming(what, file, "james"),
		}
	}
	env.Set(KeystorePasswordEnv, "wrongpass")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: env.factories(),
		Steps: []resource.TestStep{
			step(good, "wrongpass", "wrong keystore password"),
			step(pemFile, "rightpass", "found PEM text where a JKS or PKCS#12 keystore was expected"),
			step(truncated, "rightpass", "not a keystore or corrupt"),
			step(empty, "rightpass", "file is empty"),
			{
				PreConfig:     snap.Unchanged,
				Config:        config(good, "rightpass"),
				ResourceName:  "mailstack_keystore.mx",
				ImportState:   true,
				ImportStateId: good,
				ExpectError:   errorNaming("wrong keystore password", good, "(the only private key entry)"),
			},
			{
				// The right password, but the alias belongs to someone else.
				PreConfig: func() {
					snap.Unchanged()
					keytoolGenkeypair(t, good, "JKS", "rightpass", "james", "EC")
					snap.Take(good)
				},
				Config:      config(good, "rightpass"),
				ExpectError: errorNaming(`already has an entry "james": adopt it with terraform import`, good, "james"),
			},
		},
	})
	snap.Unchanged()
}
