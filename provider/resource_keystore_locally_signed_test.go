package provider

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

// locallySignedConfig is a CA keystore made by Terraform, a JKS whose
// ECDSA P-384 key it signs in the same apply, and a PKCS#12 whose Ed25519
// key an openssl CA's PEM key signs; caOrg and caPassword vary by step.
func locallySignedConfig(e *accEnv, pemCA *testCA, caOrg, caPassword string) string {
	return e.ProviderBlock() + fmt.Sprintf(`
resource "mailstack_keystore" "ca" {
  path     = %[1]q
  type     = "pkcs12"
  password = "ca-secret"
  alias    = "ca"
  self_signed {
    subject {
      common_name  = "Example Mail CA"
      organization = %[5]q
    }
    is_ca_certificate = true
    validity_days     = 3650
  }
}

resource "mailstack_keystore" "mx" {
  path     = %[2]q
  password = "changeit"
  alias    = "james"
  key {
    algorithm   = "EC"
    ecdsa_curve = "secp384r1"
  }
  locally_signed {
    subject {
      common_name = "mail.example.test"
    }
    dns_names            = ["mail.example.test"]
    ip_addresses         = ["127.0.0.1", "::1"]
    validity_days        = 90
    ca_certificate_pem   = mailstack_keystore.ca.chain_pem
    ca_keystore_path     = mailstack_keystore.ca.path
    ca_keystore_password = %[6]q
    ca_alias             = mailstack_keystore.ca.alias
  }
}

resource "mailstack_keystore" "imap" {
  path     = %[3]q
  type     = "PKCS12"
  password = "changeit"
  alias    = "imap"
  key {
    algorithm = "EdDSA"
  }
  locally_signed {
    subject {
      common_name = "imap.example.test"
    }
    dns_names          = ["imap.example.test"]
    validity_hours     = 48
    extended_key_usage = ["server_auth", "clientAuth"]
    ca_certificate_pem = file(%[4]q)
    ca_private_key_pem = file(%[7]q)
  }
}

data "mailstack_keystore" "mx" {
  path     = mailstack_keystore.mx.path
  password = "changeit"
}
`, e.Path("ca.p12"), e.Path("james.jks"), e.Path("imap.p12"), pemCA.file(".pem"), caOrg, caPassword, pemCA.file(".key"))
}

// The CSR flow in one apply: a CA keystore made by Terraform signs another
// keystore's key; openssl verify accepts the chain, and a JVM serves the
// keystore from an SSLServerSocket to openssl s_client, which verifies it
// against the CA. An openssl CA's PEM key signs a third. Moving the clock
// into the renewal window plans new certificates for the same keys, and a
// renewed CA signs again in the same apply.
func TestAccKeystore_locallySignedInOneApply(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	clock := &testClock{}
	pemCA := newRootCA(t, t.TempDir(), "pemca", "PEM CA")
	var mxKey, mxFingerprint string
	// verify checks the chains of names with openssl at a time.
	verify := func(at time.Time, names ...string) resource.TestCheckFunc {
		return func(s *terraform.State) error {
			for _, name := range names {
				chain, _ := stateAttr(s, "mailstack_keystore."+name, "chain_pem")
				issuer, _ := stateAttr(s, "mailstack_keystore."+name, "issuer_pem")
				leaf, _ := stateAttr(s, "mailstack_keystore."+name, "certificate_pem")
				if n := strings.Count(chain, "BEGIN CERTIFICATE"); n != 2 {
					return fmt.Errorf("%s: chain of %d certificates, want the leaf and its CA", name, n)
				}
				writeTestFile(t, e.Path(name+"-ca.pem"), []byte(issuer))
				writeTestFile(t, e.Path(name+"-leaf.pem"), []byte(leaf))
				out := runTool(t, "openssl", "verify", "-attime", fmt.Sprint(at.Unix()), "-purpose", "sslserver",
					"-CAfile", e.Path(name+"-ca.pem"), e.Path(name+"-leaf.pem"))
				if !strings.Contains(out, ": OK") {
					return fmt.Errorf("openssl verify %s: %s", name, out)
				}
			}
			return nil
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: clock.factories(),
		Steps: []resource.TestStep{
			{
				Config: locallySignedConfig(e, pemCA, "Example", "ca-secret"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.CompareValuePairs("mailstack_keystore.mx", tfjsonpath.New("issuer_pem"),
						"mailstack_keystore.ca", tfjsonpath.New("certificate_pem"), compare.ValuesSame()),
					statecheck.ExpectKnownValue("mailstack_keystore.mx", tfjsonpath.New("key").AtMapKey("ecdsa_curve"), knownvalue.StringExact("secp384r1")),
					statecheck.ExpectKnownValue("mailstack_keystore.mx", tfjsonpath.New("key").AtMapKey("rsa_bits"), knownvalue.Null()),
					statecheck.ExpectKnownValue("mailstack_keystore.mx", tfjsonpath.New("locally_signed").AtSliceIndex(0).AtMapKey("early_renewal_days"), knownvalue.Int64Exact(30)),
					statecheck.ExpectKnownValue("mailstack_keystore.imap", tfjsonpath.New("locally_signed").AtSliceIndex(0).AtMapKey("early_renewal_hours"), knownvalue.Int64Exact(16)),
					statecheck.ExpectKnownValue("data.mailstack_keystore.mx", tfjsonpath.New("entries").AtSliceIndex(0).AtMapKey("days_remaining"), knownvalue.Int64Exact(89)),
					statecheck.ExpectKnownValue("data.mailstack_keystore.mx", tfjsonpath.New("entries").AtSliceIndex(0).AtMapKey("chain_pem"),
						knownvalue.StringRegexp(regexp.MustCompile(`(?s)BEGIN CERTIFICATE.*BEGIN CERTIFICATE`))),
				},
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check: resource.ComposeTestCheckFunc(verify(time.Now(), "mx", "imap"), func(s *terraform.State) error {
					out := keytoolList(t, e.Path("james.jks"), "changeit")
					for _, want := range []string{"Certificate chain length: 2", "384-bit EC (secp384r1) key",
						"Issuer: CN=Example Mail CA, O=Example", "IPAddress: 127.0.0.1", "IPAddress: 0:0:0:0:0:0:0:1"} {
						if !strings.Contains(out, want) {
							return fmt.Errorf("keytool -list -v of the JKS lacks %q:\n%s", want, out)
						}
					}
					if out := keytoolList(t, e.Path("imap.p12"), "changeit"); !strings.Contains(out, "Ed25519 key") {
						return fmt.Errorf("keytool -list -v of the PKCS#12 shows no Ed25519 key:\n%s", out)
					}
					certPEM, _ := stateAttr(s, "mailstack_keystore.mx", "certificate_pem")
					mxKey = spkiSHA256(mustParseCertPEM(t, certPEM))
					mxFingerprint, _ = stateAttr(s, "mailstack_keystore.mx", "fingerprint_sha256")
					return javaServesVerified(t, "JKS", e.Path("james.jks"), "changeit", e.Path("mx-ca.pem"), "mail.example.test")
				}),
			},
			{
				// The CA keystore's password is checked at plan, on the attribute.
				Config:      locallySignedConfig(e, pemCA, "Example", "not-the-ca-password"),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Unable to Use CA Keystore.*wrong keystore password.*Keystore file:\s+` + regexp.QuoteMeta(e.Path("ca.p12"))),
			},
			{
				// 80 days on: the JKS's certificate is within its 30 days,
				// the 48-hour one long expired; the CA (ten years) is not due.
				// (The openssl CA, valid two days, has expired by then: the
				// renewed 48-hour certificate is not verified.)
				PreConfig: func() { clock.advance(80 * 24 * time.Hour) },
				Config:    locallySignedConfig(e, pemCA, "Example", "ca-secret"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("mailstack_keystore.mx", plancheck.ResourceActionUpdate),
						plancheck.ExpectResourceAction("mailstack_keystore.imap", plancheck.ResourceActionUpdate),
						plancheck.ExpectResourceAction("mailstack_keystore.ca", plancheck.ResourceActionNoop),
						plancheck.ExpectUnknownValue("mailstack_keystore.mx", tfjsonpath.New("fingerprint_sha256")),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeTestCheckFunc(func(s *terraform.State) error { return verify(clock.now(), "mx")(s) }, renewedSameKey(t, &mxKey, &mxFingerprint)),
			},
			{
				// A renewed CA signs the entry again in the same apply.
				Config: locallySignedConfig(e, pemCA, "Example Renewed", "ca-secret"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction("mailstack_keystore.mx", plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.CompareValuePairs("mailstack_keystore.mx", tfjsonpath.New("issuer_pem"),
						"mailstack_keystore.ca", tfjsonpath.New("certificate_pem"), compare.ValuesSame()),
				},
				Check: resource.ComposeTestCheckFunc(func(s *terraform.State) error { return verify(clock.now(), "mx")(s) }, renewedSameKey(t, &mxKey, &mxFingerprint)),
			},
		},
	})
}

// renewedSameKey checks that the JKS entry has a new certificate for the
// key it had.
func renewedSameKey(t *testing.T, key, fingerprint *string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		certPEM, _ := stateAttr(s, "mailstack_keystore.mx", "certificate_pem")
		fp, _ := stateAttr(s, "mailstack_keystore.mx", "fingerprint_sha256")
		if k := spkiSHA256(mustParseCertPEM(t, certPEM)); k != *key || fp == *fingerprint {
			return fmt.Errorf("key %s (was %s), fingerprint %s (was %s): want a new certificate for the same key", k, *key, fp, *fingerprint)
		}
		*fingerprint = fp
		return nil
	}
}

// javaServesVerified has a JVM load the keystore into a KeyManager and
// serve it from an SSLServerSocket (internal/keystore's
// testdata/ServeKeystore.java), and openssl s_client connect to it and
// verify the chain against caFile for host.
func javaServesVerified(t *testing.T, typ, file, password, caFile, host string) error {
	t.Helper()
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("java not on PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	java := exec.CommandContext(ctx, "java", "-XX:+UseSerialGC", "-Xshare:auto",
		filepath.Join("..", "internal", "keystore", "testdata", "ServeKeystore.java"), typ, file, password, password)
	stdout, err := java.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	java.Stderr = &stderr
	if err := java.Start(); err != nil {
		return err
	}
	defer java.Wait()
	defer cancel()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		return fmt.Errorf("java printed no port: %v\n%s", lines.Err(), stderr.String())
	}
	port, ok := strings.CutPrefix(lines.Text(), "PORT ")
	if !ok {
		return fmt.Errorf("java: %q", lines.Text())
	}
	out := runTool(t, "openssl", "s_client", "-connect", "127.0.0.1:"+port, "-CAfile", caFile, "-verify_return_error",
		"-verify_hostname", host, "-ign_eof")
	if !strings.Contains(out, "Verify return code: 0 (ok)") || !strings.Contains(out, "served "+typ) {
		return fmt.Errorf("openssl s_client against the JVM's SSLServerSocket:\n%s", out)
	}
	return nil
}
