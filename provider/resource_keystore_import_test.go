package provider

import (
	"fmt"
	"os"
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

// keytoolSubject is the subject block matching keytoolGenkeypair's -dname.
func keytoolSubject(alias string) string {
	return fmt.Sprintf(`subject {
      common_name         = "%s.example.test"
      organizational_unit = "Mail"
      organization        = "Example"
      locality            = "Paris"
      province            = "IDF"
      country             = "FR"
    }`, alias)
}

// Keystores made by keytool (JKS and PKCS#12, RSA and EC, a JKS key with
// its own -keypass, a file with two keys) are imported; a configuration
// that describes them then plans nothing, and no file is written.
func TestAccKeystore_importKeytoolKeystores(t *testing.T) {
	t.Parallel()
	var env testEnv
	e := newAccEnv(t)
	rsaJKS, ecP12, keypassJKS, twoKeys := e.Path("rsa.jks"), e.Path("ec.p12"), e.Path("keypass.jks"), e.Path("two.jks")
	keytoolGenkeypair(t, rsaJKS, "JKS", "changeit", "james", "RSA", "-keysize", "3072",
		"-ext", "SAN=dns:james.example.test,dns:mail.example.test")
	keytoolGenkeypair(t, ecP12, "PKCS12", "changeit", "mx", "EC", "-groupname", "secp384r1")
	keytoolGenkeypair(t, keypassJKS, "JKS", "changeit", "smtp", "RSA", "-keypass", "keypass1")
	keytoolGenkeypair(t, twoKeys, "JKS", "changeit", "a", "EC")
	keytoolGenkeypair(t, twoKeys, "JKS", "changeit", "b", "EC")
	env.Set(KeystorePasswordEnv, "changeit")
	env.Set(KeystoreKeyPasswordEnv, "keypass1")
	snap := newSnapshot(t)
	snap.Take(rsaJKS, ecP12, keypassJKS, twoKeys)

	config := e.SourcedProviderBlock() + fmt.Sprintf(`
resource "mailstack_keystore" "rsa" {
  path     = %[1]q
  password = "changeit"
  alias    = "james"
  key {
    rsa_bits = 3072
  }
  self_signed {
    %[5]s
    dns_names = ["james.example.test", "mail.example.test"]
  }
}

resource "mailstack_keystore" "ec" {
  path     = %[2]q
  type     = "PKCS12"
  password = "changeit"
  alias    = "mx"
  key {
    algorithm   = "ECDSA"
    ecdsa_curve = "P384"
  }
  self_signed {
    %[6]s
  }
}

resource "mailstack_keystore" "keypass" {
  path         = %[3]q
  password     = "changeit"
  key_password = "keypass1"
  alias        = "smtp"
  key {
    algorithm = "RSA"
  }
  self_signed {
    %[7]s
  }
}

resource "mailstack_keystore" "two" {
  path     = %[4]q
  password = "changeit"
  alias    = "b"
  key {
    algorithm = "ECDSA"
  }
  self_signed {
    %[8]s
  }
}
`, rsaJKS, ecP12, keypassJKS, twoKeys, keytoolSubject("james"), keytoolSubject("mx"), keytoolSubject("smtp"), keytoolSubject("b"))

	importStep := func(name, id string) resource.TestStep {
		return resource.TestStep{
			Config: config, ResourceName: "mailstack_keystore." + name, ImportState: true, ImportStateId: id,
			ImportStatePersist: true,
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: env.factories(),
		Steps: []resource.TestStep{
			initOnly(e),
			importStep("rsa", rsaJKS),
			importStep("ec", ecP12),
			importStep("keypass", keypassJKS),
			{
				Config: config, ResourceName: "mailstack_keystore.two", ImportState: true, ImportStateId: twoKeys,
				ExpectError: regexp.MustCompile(`(?s)alias required.*found\s+2\s+private\s+key\s+entries\s+\(a,\s+b\).*<path>:<alias>`),
			},
			importStep("two", twoKeys+":b"),
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("mailstack_keystore.rsa", tfjsonpath.New("type"), knownvalue.StringExact("JKS")),
					statecheck.ExpectKnownValue("mailstack_keystore.ec", tfjsonpath.New("type"), knownvalue.StringExact("PKCS12")),
					statecheck.ExpectKnownValue("mailstack_keystore.rsa", tfjsonpath.New("self_signed").AtSliceIndex(0).AtMapKey("validity_days"), knownvalue.Int64Exact(365)),
					statecheck.ExpectKnownValue("mailstack_keystore.keypass", tfjsonpath.New("csr"), knownvalue.ListSizeExact(0)),
				},
				Check: func(*terraform.State) error { snap.Unchanged(); return nil },
			},
		},
	})
}

// A keytool certificate that ends within early_renewal_days is adopted as
// ready_for_renewal; apply issues a new certificate for the same key.
func TestAccKeystore_importedCertificateDueForRenewal(t *testing.T) {
	t.Parallel()
	var env testEnv
	e := newAccEnv(t)
	file := e.Path("due.jks")
	keytoolGenkeypair(t, file, "JKS", "changeit", "james", "EC", "-startdate", "-350d")
	env.Set(KeystorePasswordEnv, "changeit")
	var keytoolSPKI string
	config := e.SourcedProviderBlock() + fmt.Sprintf(`
resource "mailstack_keystore" "mx" {
  path     = %[1]q
  password = "changeit"
  alias    = "james"
  key {
    algorithm = "ECDSA"
  }
  self_signed {
    %[2]s
  }
}`, file, keytoolSubject("james"))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: env.factories(),
		Steps: []resource.TestStep{
			initOnly(e),
			{
				Config: config, ResourceName: "mailstack_keystore.mx", ImportState: true, ImportStateId: file, ImportStatePersist: true,
				ImportStateCheck: func(states []*terraform.InstanceState) error {
					a := states[0].Attributes
					if a["ready_for_renewal"] != "true" {
						return fmt.Errorf("ready_for_renewal = %q for a certificate ending in 15 days", a["ready_for_renewal"])
					}
					keytoolSPKI = spkiSHA256(mustParseCertPEM(t, a["certificate_pem"]))
					return nil
				},
			},
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("mailstack_keystore.mx", plancheck.ResourceActionUpdate),
						plancheck.ExpectUnknownValue("mailstack_keystore.mx", tfjsonpath.New("not_after")),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("mailstack_keystore.mx", tfjsonpath.New("ready_for_renewal"), knownvalue.Bool(false)),
				},
				Check: func(s *terraform.State) error {
					certPEM, _ := stateAttr(s, "mailstack_keystore.mx", "certificate_pem")
					c := mustParseCertPEM(t, certPEM)
					if spkiSHA256(c) != keytoolSPKI {
						return fmt.Errorf("renewal replaced the key")
					}
					if c.NotAfter.Before(inDays(364)) {
						return fmt.Errorf("renewed certificate ends %s", c.NotAfter)
					}
					return nil
				},
			},
		},
	})
}

// Changes made with keytool between applies show in plan and apply
// repairs them: an entry deleted is created again, a whole new file (a new
// key) replaces the resource, a certificate replaced for the same key
// (keytool -selfcert) is issued again in place.
func TestAccKeystore_driftRepaired(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	file := e.Path("james.jks")
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
}`, file)
	var fingerprints []string
	record := func(s *terraform.State) error {
		fp, err := stateAttr(s, "mailstack_keystore.mx", "fingerprint_sha256")
		fingerprints = append(fingerprints, fp)
		if !strings.Contains(keytoolList(t, file, "changeit"), "SHA256: "+fp) {
			return fmt.Errorf("keytool does not list the fingerprint in state %s", fp)
		}
		return err
	}
	step := func(pre func(), action plancheck.ResourceActionType) resource.TestStep {
		return resource.TestStep{
			PreConfig: pre,
			Config:    config,
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction("mailstack_keystore.mx", action)},
				PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
			},
			Check: record,
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{
			step(nil, plancheck.ResourceActionCreate),
			step(func() {
				keytool(t, "-delete", "-alias", "james", "-keystore", file, "-storepass", "changeit")
			}, plancheck.ResourceActionCreate),
			step(func() {
				if err := os.Remove(file); err != nil {
					t.Fatal(err)
				}
				keytoolGenkeypair(t, file, "JKS", "changeit", "james", "RSA")
			}, plancheck.ResourceActionDestroyBeforeCreate),
			step(func() {
				keytool(t, "-selfcert", "-alias", "james", "-keystore", file, "-storepass", "changeit", "-dname", "CN=someone.else")
			}, plancheck.ResourceActionUpdate),
		},
	})
	for i := 1; i < len(fingerprints); i++ {
		if fingerprints[i] == fingerprints[i-1] {
			t.Errorf("step %d kept certificate %s", i+1, fingerprints[i])
		}
	}
}

// password and key_password change in place: the file is re-encoded, the
// key re-encrypted, entries Terraform does not own are kept; a password
// changed outside with keytool -storepasswd is taken up by the next apply.
func TestAccKeystore_passwordChangedInPlace(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	jks, p12 := e.Path("james.jks"), e.Path("mx.p12")
	ca := newRootCA(t, t.TempDir(), "root", "Test Root CA")
	config := func(pw, kp string) string {
		return e.ProviderBlock() + fmt.Sprintf(`
resource "mailstack_keystore" "jks" {
  path         = %[1]q
  password     = %[3]q
  key_password = %[4]q
  alias        = "james"
  self_signed {
    subject {
      common_name = "mail.example.test"
    }
  }
}

resource "mailstack_keystore" "p12" {
  path     = %[2]q
  type     = "PKCS12"
  password = %[3]q
  alias    = "mx"
  key {
    algorithm = "ECDSA"
  }
  self_signed {
    subject {
      common_name = "mail.example.test"
    }
  }
}`, jks, p12, pw, kp)
	}
	opensWith := func(pw, kp string, entries int) func(*terraform.State) error {
		return func(*terraform.State) error {
			out := keytoolList(t, jks, pw)
			if want := fmt.Sprintf("Your keystore contains %d entr", entries); !strings.Contains(out, want) {
				return fmt.Errorf("%s: want %q:\n%s", jks, want, out)
			}
			keytool(t, "-certreq", "-keystore", jks, "-storepass", pw, "-alias", "james", "-keypass", kp)
			// openssl decrypts the PKCS#12 key and MAC with the store password.
			runTool(t, "openssl", "pkcs12", "-in", p12, "-passin", "pass:"+pw, "-nodes", "-noout")
			return nil
		}
	}
	update := resource.ConfigPlanChecks{
		PreApply: []plancheck.PlanCheck{
			plancheck.ExpectResourceAction("mailstack_keystore.jks", plancheck.ResourceActionUpdate),
			plancheck.ExpectResourceAction("mailstack_keystore.p12", plancheck.ResourceActionUpdate),
		},
		PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{
			{
				Config: config("first-pass", "key-pass-1"),
				Check:  opensWith("first-pass", "key-pass-1", 1),
			},
			{
				PreConfig: func() {
					caFile := e.Path("root.pem")
					writeTestFile(t, caFile, []byte(ca.CertPEM))
					keytool(t, "-importcert", "-noprompt", "-alias", "root", "-file", caFile, "-keystore", jks, "-storepass", "first-pass")
				},
				Config:           config("second-pass", "key-pass-2"),
				ConfigPlanChecks: update,
				Check:            opensWith("second-pass", "key-pass-2", 2),
			},
			{
				PreConfig: func() {
					keytool(t, "-storepasswd", "-new", "third-pass", "-keystore", jks, "-storepass", "second-pass")
					keytool(t, "-storepasswd", "-new", "third-pass", "-keystore", p12, "-storepass", "second-pass")
				},
				Config:           config("third-pass", "key-pass-2"),
				ConfigPlanChecks: update,
				Check:            opensWith("third-pass", "key-pass-2", 2),
			},
		},
	})
}

// The whole keytool workflow (-genkeypair, -certreq, an openssl CA,
// -importcert of the root, -importcert of the reply) is adopted as csr:
// the first plan only records the reply's text, and its apply leaves the
// file's bytes alone.
func TestAccKeystore_importCASignedKeytoolKeystore(t *testing.T) {
	t.Parallel()
	var env testEnv
	e := newAccEnv(t)
	caDir := t.TempDir()
	ca := newRootCA(t, caDir, "root", "Test Root CA")
	file, csrFile, replyFile := e.Path("james.p12"), e.Path("james.csr"), e.Path("reply.pem")
	keytoolGenkeypair(t, file, "PKCS12", "changeit", "james", "EC", "-ext", "SAN=dns:mail.example.test")
	keytool(t, "-certreq", "-alias", "james", "-file", csrFile, "-keystore", file, "-storepass", "changeit", "-ext", "SAN=dns:mail.example.test")
	writeTestFile(t, replyFile, []byte(ca.sign(string(readTestFile(t, csrFile)))))
	keytool(t, "-importcert", "-noprompt", "-trustcacerts", "-alias", "root", "-file", ca.file(".pem"), "-keystore", file, "-storepass", "changeit")
	keytool(t, "-importcert", "-noprompt", "-alias", "james", "-file", replyFile, "-keystore", file, "-storepass", "changeit")
	env.Set(KeystorePasswordEnv, "changeit")
	snap := newSnapshot(t)
	snap.Take(file)

	config := e.SourcedProviderBlock() + fmt.Sprintf(`
resource "mailstack_keystore" "mx" {
  path     = %[1]q
  type     = "PKCS12"
  password = "changeit"
  alias    = "james"
  key {
    algorithm = "ECDSA"
  }
  csr {
    %[2]s
    dns_names = ["mail.example.test"]
  }
  certificate_chain_pem = file(%[3]q)
}`, file, keytoolSubject("james"), replyFile)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: env.factories(),
		Steps: []resource.TestStep{
			initOnly(e),
			{
				Config: config, ResourceName: "mailstack_keystore.mx", ImportState: true, ImportStateId: file, ImportStatePersist: true,
				ImportStateCheck: func(states []*terraform.InstanceState) error {
					a := states[0].Attributes
					if a["csr.#"] != "1" || a["self_signed.#"] != "0" || !strings.HasPrefix(a["csr_pem"], "-----BEGIN CERTIFICATE REQUEST") {
						return fmt.Errorf("a CA-signed entry not adopted as csr: csr.# %s self_signed.# %s csr_pem %.40q", a["csr.#"], a["self_signed.#"], a["csr_pem"])
					}
					return nil
				},
			},
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("mailstack_keystore.mx", plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue("mailstack_keystore.mx", tfjsonpath.New("fingerprint_sha256"),
							knownvalue.StringRegexp(regexp.MustCompile(`^[0-9A-F:]{95}$`))),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: func(*terraform.State) error { snap.Unchanged(); return nil },
			},
		},
	})
}
