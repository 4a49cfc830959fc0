package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"
)

// noSecretInState fails when a secret appears anywhere in the state.
type noSecretInState struct{ secrets []string }

func (c noSecretInState) CheckState(_ context.Context, req statecheck.CheckStateRequest, resp *statecheck.CheckStateResponse) {
	raw, err := json.Marshal(req.State)
	if err != nil {
		resp.Error = err
		return
	}
	for _, s := range c.secrets {
		if strings.Contains(string(raw), s) {
			resp.Error = fmt.Errorf("the password %q is in the Terraform state", s)
			return
		}
	}
}

// woConfig is a PKCS#12 keystore, a root imported into it and an
// implicit-TLS listener serving it, all with write-only passwords, and a
// keystore made from a PEM key given write-only.
func woConfig(e *accEnv, caPEMFile, password string, version, port int, pemKey, pemChain string) string {
	return e.ProviderBlock() + fmt.Sprintf(`
resource "mailstack_keystore" "mx" {
  path                = %[1]q
  type                = "PKCS12"
  password_wo         = %[2]q
  password_wo_version = %[3]d
  alias               = "james"
  self_signed {
    subject {
      common_name = "mail.example.test"
    }
  }
}

resource "mailstack_certificate_import" "root" {
  keystore_path       = mailstack_keystore.mx.path
  password_wo         = %[2]q
  password_wo_version = %[3]d
  alias               = "root"
  certificate_pem     = file(%[4]q)
}

resource "mailstack_server" "mx" {
  hostname = "mail.example.test"
  domains  = ["example.test"]
}

resource "mailstack_listener" "smtps" {
  server_id = mailstack_server.mx.id
  protocol  = "smtp"
  address   = "127.0.0.1"
  port      = %[5]d
  tls {
    mode                         = "implicit"
    keystore_path                = mailstack_certificate_import.root.keystore_path
    keystore_password_wo         = %[2]q
    keystore_password_wo_version = %[3]d
    expected_fingerprint_sha256  = mailstack_keystore.mx.fingerprint_sha256
  }
}

resource "mailstack_keystore" "pem" {
  path                = %[6]q
  password_wo         = %[2]q
  password_wo_version = %[3]d
  alias               = "pem"
  pem {
    private_key_pem_wo    = file(%[7]q)
    certificate_chain_pem = file(%[8]q)
  }
}
`, e.Path("mx.p12"), password, version, caPEMFile, port, e.Path("pem.jks"), pemKey, pemChain)
}

// Write-only passwords keep every keystore password out of the state
// (before, the same password sat there three times in clear); a new one
// with a new version re-encodes the keystore and reaches the runtime; drift
// is still seen, through the copy the provider keeps on the host.
func TestAccKeystore_writeOnlyPasswords(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	dir := t.TempDir()
	ca := newRootCA(t, dir, "root", "Test Root CA")
	pemKey, pemChain := pemKeyAndChain(t, dir, "pem", ca.intermediate("int", "Test Intermediate CA"), "genpkey", "-algorithm", "ED25519")
	keyLine := strings.Split(string(readTestFile(t, pemKey)), "\n")[1]
	port := e.FreePort()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	file := e.Path("mx.p12")
	secrets := noSecretInState{[]string{"first-secret", "second-secret", keyLine}}
	config := func(password string, version int) string {
		return woConfig(e, ca.file(".pem"), password, version, port, pemKey, pemChain)
	}
	served := func(password string) resource.TestCheckFunc {
		return func(s *terraform.State) error {
			if out := keytoolList(t, file, password); !strings.Contains(out, "Your keystore contains 2 entries") {
				return fmt.Errorf("keytool with the new password:\n%s", out)
			}
			fp, _ := stateAttr(s, "mailstack_keystore.mx", "fingerprint_sha256")
			return checkTLSGreeting(addr, "220 mail.example.test ESMTP", fp)
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		// Write-only attributes need Terraform 1.11 (OpenTofu older than
		// that reports a lower version).
		TerraformVersionChecks: []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)},
		Steps: []resource.TestStep{
			{
				Config:            config("first-secret", 1),
				ConfigStateChecks: []statecheck.StateCheck{secrets},
				ConfigPlanChecks:  resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check: resource.ComposeTestCheckFunc(served("first-secret"), func(*terraform.State) error {
					kept, _ := filepath.Glob(filepath.Join(e.StateDir, secretsDir, "*.json"))
					for _, k := range kept {
						if st, err := os.Stat(k); err != nil || st.Mode().Perm() != 0o600 {
							return fmt.Errorf("kept password %s: mode %v, %v", k, st.Mode(), err)
						}
					}
					if len(kept) != 3 {
						return fmt.Errorf("%d kept passwords, want the two keystores' and the import's", len(kept))
					}
					if out := keytoolList(t, e.Path("pem.jks"), "first-secret"); !strings.Contains(out, "Certificate chain length: 2") {
						return fmt.Errorf("the PEM keystore:\n%s", out)
					}
					return nil
				}),
			},
			{
				// A new value without a new version is not seen.
				Config:   config("unseen-secret", 1),
				PlanOnly: true,
			},
			{
				Config: config("second-secret", 2),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("mailstack_keystore.mx", plancheck.ResourceActionUpdate),
						plancheck.ExpectResourceAction("mailstack_certificate_import.root", plancheck.ResourceActionUpdate),
						plancheck.ExpectResourceAction("mailstack_listener.smtps", plancheck.ResourceActionUpdate),
						plancheck.ExpectResourceAction("mailstack_keystore.pem", plancheck.ResourceActionUpdate),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{secrets},
				Check:             served("second-secret"),
			},
			{
				// Drift with a write-only password: the root deleted with
				// keytool is planned back.
				PreConfig: func() {
					keytool(t, "-delete", "-alias", "root", "-keystore", file, "-storepass", "second-secret")
				},
				Config: config("second-secret", 2),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction("mailstack_certificate_import.root", plancheck.ResourceActionCreate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{secrets},
				Check:             served("second-secret"),
			},
		},
	})
}
