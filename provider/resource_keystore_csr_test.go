package provider

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

// csrKeystoreConfig is a JKS keystore in csr mode with a distinct key
// password; replyFile, when set, is read into certificate_chain_pem.
func csrKeystoreConfig(e *accEnv, file, replyFile, extra string) string {
	reply := ""
	if replyFile != "" {
		reply = fmt.Sprintf("certificate_chain_pem = file(%q)", replyFile)
	}
	return e.ProviderBlock() + fmt.Sprintf(`
resource "mailstack_keystore" "mx" {
  path         = %[1]q
  password     = "storepass1"
  key_password = "keypass1"
  alias        = "james"
  key {
    algorithm = "ECDSA"
  }
  csr {
    subject {
      common_name  = "mail.example.test"
      organization = "Example"
    }
    dns_names = ["mail.example.test", "smtp.example.test"]
  }
  %[2]s
  %[3]s
}`, file, reply, extra)
}

// stateAttr reads an attribute of a resource from the state.
func stateAttr(s *terraform.State, name, attr string) (string, error) {
	rs, ok := s.RootModule().Resources[name]
	if !ok {
		return "", fmt.Errorf("%s not in state", name)
	}
	return rs.Primary.Attributes[attr], nil
}

// A CSR made by terraform is signed by an openssl CA and the reply
// installed in place: same key, chain of two that keytool lists with the
// CA as issuer, and an import of the result matches the state.
func TestAccKeystore_csrSignedByOpensslCA(t *testing.T) {
	t.Parallel()
	var env testEnv
	e := newAccEnv(t)
	caDir := t.TempDir()
	ca := newRootCA(t, caDir, "root", "Test Root CA")
	ksPath, replyPath, renewalPath := e.Path("james.keystore"), filepath.Join(caDir, "reply.pem"), filepath.Join(caDir, "renewal.pem")
	var csr *x509.CertificateRequest
	var firstFP string
	env.Set(KeystorePasswordEnv, "storepass1")
	env.Set(KeystoreKeyPasswordEnv, "keypass1")
	clock := &testClock{}
	warned := &warnings{}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: warned.wrap(testFactories(clock, &env)),
		Steps: []resource.TestStep{
			{
				Config: csrKeystoreConfig(e, ksPath, "", ""),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("mailstack_keystore.mx", tfjsonpath.New("csr_pem"),
						knownvalue.StringRegexp(regexp.MustCompile(`^-----BEGIN CERTIFICATE REQUEST-----`))),
					statecheck.ExpectKnownValue("mailstack_keystore.mx", tfjsonpath.New("ready_for_renewal"), knownvalue.Bool(false)),
				},
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check: func(s *terraform.State) error {
					csrPEM, err := stateAttr(s, "mailstack_keystore.mx", "csr_pem")
					if err != nil {
						return err
					}
					b, _ := pem.Decode([]byte(csrPEM))
					if csr, err = x509.ParseCertificateRequest(b.Bytes); err != nil {
						return err
					}
					if err := csr.CheckSignature(); err != nil {
						return fmt.Errorf("CSR signature: %w", err)
					}
					if got := strings.Join(csr.DNSNames, ","); got != "mail.example.test,smtp.example.test" || csr.Subject.CommonName != "mail.example.test" {
						return fmt.Errorf("CSR asks for %q %v", csr.Subject, csr.DNSNames)
					}
					// Until the reply is installed the entry holds a self-signed
					// placeholder, as after keytool -genkeypair.
					out := keytoolList(t, ksPath, "storepass1")
					if !strings.Contains(out, "Certificate chain length: 1") || !strings.Contains(out, "Issuer: CN=mail.example.test, O=Example") {
						return fmt.Errorf("placeholder not listed:\n%s", out)
					}
					writeTestFile(t, replyPath, []byte(ca.sign(csrPEM)+ca.CertPEM))
					// The renewal holds only the leaf: the root of the chain
					// installed before completes it.
					writeTestFile(t, renewalPath, []byte(ca.sign(csrPEM)))
					return nil
				},
			},
			{
				Config: csrKeystoreConfig(e, ksPath, replyPath, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("mailstack_keystore.mx", plancheck.ResourceActionUpdate),
						plancheck.ExpectUnknownValue("mailstack_keystore.mx", tfjsonpath.New("fingerprint_sha256")),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: func(s *terraform.State) error {
					certPEM, err := stateAttr(s, "mailstack_keystore.mx", "certificate_pem")
					if err != nil {
						return err
					}
					leaf := mustParseCertPEM(t, certPEM)
					if !leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(csr.PublicKey) {
						return fmt.Errorf("the installed certificate is not for the CSR's key: the key was not kept")
					}
					out := keytoolList(t, ksPath, "storepass1")
					fp, _ := stateAttr(s, "mailstack_keystore.mx", "fingerprint_sha256")
					for _, want := range []string{"Alias name: james", "Entry type: PrivateKeyEntry",
						"Certificate chain length: 2", "Issuer: CN=Test Root CA, O=Example", "SHA256: " + fp} {
						if !strings.Contains(out, want) {
							return fmt.Errorf("keytool -list -v does not show %q:\n%s", want, out)
						}
					}
					// The key still opens with its own password (keytool -certreq needs it).
					keytool(t, "-certreq", "-keystore", ksPath, "-storepass", "storepass1", "-alias", "james", "-keypass", "keypass1")
					firstFP = fp
					return nil
				},
			},
			{
				Config: csrKeystoreConfig(e, ksPath, renewalPath, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction("mailstack_keystore.mx", plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: func(s *terraform.State) error {
					fp, _ := stateAttr(s, "mailstack_keystore.mx", "fingerprint_sha256")
					out := keytoolList(t, ksPath, "storepass1")
					if fp == firstFP || !strings.Contains(out, "SHA256: "+fp) || !strings.Contains(out, "Certificate chain length: 2") {
						return fmt.Errorf("renewal %s (first %s) not installed with the root:\n%s", fp, firstFP, out)
					}
					return nil
				},
			},
			{
				ResourceName:      "mailstack_keystore.mx",
				ImportState:       true,
				ImportStateId:     ksPath,
				ImportStateVerify: true,
				// Secrets; the reply as installed (text differs from the file
				// configured); a fresh ECDSA CSR (randomized signature).
				ImportStateVerifyIgnore: []string{"password", "key_password", "certificate_chain_pem", "csr_pem", "delete_on_destroy"},
			},
			{
				// 20 hours on, the CA's one-day certificate is within a third
				// of its lifetime: ready_for_renewal, and plan warns (the CA
				// renews, not apply).
				PreConfig: func() { clock.advance(20 * time.Hour); warned.reset() },
				Config:    csrKeystoreConfig(e, ksPath, renewalPath, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectEmptyPlan(),
						warned.expect("mailstack_keystore", `Certificate Due for Renewal: The certificate of alias "james" in `+
							regexp.QuoteMeta(ksPath)+` ends on .*csr_pem`),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("mailstack_keystore.mx", tfjsonpath.New("ready_for_renewal"), knownvalue.Bool(true)),
				},
			},
		},
	})
}

// Bad CA replies go through terraform: each is refused with an error that
// names the file, the alias and what is wrong, and the keystore file keeps
// every byte. A good reply with its intermediate then installs.
func TestAccKeystore_csrBadReplies(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	caDir := t.TempDir()
	root := newRootCA(t, caDir, "root", "Test Root CA")
	inter := root.intermediate("int", "Test Intermediate CA")
	ksPath := e.Path("james.keystore")
	reply := func(name string) string { return filepath.Join(caDir, name+".pem") }
	snap := newSnapshot(t)

	// atPlan: plan refuses the reply (PlanOnly proves it is not apply);
	// otherwise plan only warns (the root may still come from a
	// mailstack_certificate_import) and apply refuses it.
	bad := func(name, what string, atPlan bool) resource.TestStep {
		return resource.TestStep{
			PreConfig:   snap.Unchanged,
			Config:      csrKeystoreConfig(e, ksPath, reply(name), ""),
			PlanOnly:    atPlan,
			ExpectError: errorNaming(what, ksPath, "james"),
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{
			{
				Config: csrKeystoreConfig(e, ksPath, "", ""),
				Check: func(s *terraform.State) error {
					csrPEM, err := stateAttr(s, "mailstack_keystore.mx", "csr_pem")
					if err != nil {
						return err
					}
					leaf := inter.sign(csrPEM)
					writeTestFile(t, reply("good"), []byte(leaf+inter.CertPEM+root.CertPEM))
					writeTestFile(t, reply("missing-intermediate"), []byte(leaf+root.CertPEM))
					writeTestFile(t, reply("expired"), []byte(inter.signExpired(csrPEM)+inter.CertPEM+root.CertPEM))
					writeTestFile(t, reply("other-key"), []byte(inter.sign(otherKeyCSR(t, caDir))+inter.CertPEM+root.CertPEM))
					writeTestFile(t, reply("not-pem"), []byte("this is not a certificate\n"))
					snap.Take(ksPath)
					return nil
				},
			},
			bad("other-key", "certificate does not match the private key", true),
			bad("missing-intermediate", "does not reach a trusted or self-signed root", false),
			bad("expired", "certificate expired or not yet valid", true),
			{
				PreConfig:   snap.Unchanged,
				Config:      csrKeystoreConfig(e, ksPath, reply("not-pem"), ""),
				ExpectError: regexp.MustCompile(`(?s)Invalid CA Reply.*no CERTIFICATE block found`),
			},
			{
				PreConfig: snap.Unchanged,
				Config:    csrKeystoreConfig(e, ksPath, reply("good"), ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: func(*terraform.State) error {
					out := keytoolList(t, ksPath, "storepass1")
					for _, want := range []string{"Certificate chain length: 3", "Issuer: CN=Test Intermediate CA, O=Example",
						"Owner: CN=Test Intermediate CA, O=Example", "Owner: CN=Test Root CA, O=Example"} {
						if !strings.Contains(out, want) {
							return fmt.Errorf("keytool -list -v does not show %q:\n%s", want, out)
						}
					}
					return nil
				},
			},
			{
				// A reply cannot be installed into a key being created.
				Config: csrKeystoreConfig(e, e.Path("new.keystore"), reply("good"), ""),
				ExpectError: regexp.MustCompile(`(?s)CA Reply Before Key.*certificate_chain_pem is set while the key of\s+alias\s+"james"\s+in\s+` +
					regexp.QuoteMeta(e.Path("new.keystore"))),
			},
		},
	})
}
