package provider

import (
	"fmt"
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
)

// pemKeyAndChain makes a key with openssl (genpkey: PKCS#8; ecparam:
// SEC 1) and its certificate from inter, and writes the chain with the
// intermediate first, as bundles often come.
func pemKeyAndChain(t *testing.T, dir, name string, inter *testCA, genkey ...string) (keyFile, chainFile string) {
	t.Helper()
	keyFile, chainFile = filepath.Join(dir, name+".key"), filepath.Join(dir, name+"-chain.pem")
	csr := filepath.Join(dir, name+".csr")
	runTool(t, "openssl", append(genkey, "-out", keyFile)...)
	runTool(t, "openssl", "req", "-new", "-key", keyFile, "-out", csr, "-subj", "/CN="+name+".example.test",
		"-addext", "subjectAltName=DNS:"+name+".example.test")
	writeTestFile(t, chainFile, []byte(inter.CertPEM+inter.sign(string(readTestFile(t, csr)))))
	return keyFile, chainFile
}

// A PEM key and chain from elsewhere (openssl here; hashicorp/tls,
// cert-manager or certbot in life) become a keystore entry keytool lists,
// with the chain and issuer as outputs; a new key and chain change it in
// place; a key that does not match its chain is refused at plan.
func TestAccKeystore_pemKeyAndChain(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	dir := t.TempDir()
	root := newRootCA(t, dir, "root", "Test Root CA")
	inter := root.intermediate("int", "Test Intermediate CA")
	rsaKey, rsaChain := pemKeyAndChain(t, dir, "rsa", inter, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
	ecKey, ecChain := pemKeyAndChain(t, dir, "ec", inter, "ecparam", "-name", "prime256v1", "-genkey", "-noout")
	file := e.Path("pem.p12")
	config := func(key, chain string) string {
		return e.ProviderBlock() + fmt.Sprintf(`
resource "mailstack_keystore" "pem" {
  path     = %[1]q
  type     = "PKCS12"
  password = "changeit"
  alias    = "mail"
  pem {
    private_key_pem       = file(%[2]q)
    certificate_chain_pem = file(%[3]q)
  }
}`, file, key, chain)
	}
	var first string
	listed := func(cn string) resource.TestCheckFunc {
		return func(s *terraform.State) error {
			fp, _ := stateAttr(s, "mailstack_keystore.pem", "fingerprint_sha256")
			out := keytoolList(t, file, "changeit")
			for _, want := range []string{"Alias name: mail", "Certificate chain length: 2", "Owner: CN=" + cn,
				"Issuer: CN=Test Intermediate CA, O=Example", "SHA256: " + fp} {
				if !strings.Contains(out, want) {
					return fmt.Errorf("keytool -list -v lacks %q:\n%s", want, out)
				}
			}
			if fp == first {
				return fmt.Errorf("certificate %s not replaced", fp)
			}
			first = fp
			return nil
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{
			{
				Config: config(rsaKey, rsaChain),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("mailstack_keystore.pem", tfjsonpath.New("issuer_pem"), knownvalue.StringExact(inter.CertPEM)),
					statecheck.ExpectKnownValue("mailstack_keystore.pem", tfjsonpath.New("key"), knownvalue.Null()),
					statecheck.ExpectKnownValue("mailstack_keystore.pem", tfjsonpath.New("chain_pem"),
						knownvalue.StringRegexp(regexp.MustCompile(`(?s)^-----BEGIN CERTIFICATE-----.*`+regexp.QuoteMeta(inter.CertPEM)+`$`))),
				},
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check:            listed("rsa.example.test"),
			},
			{
				Config: config(ecKey, ecChain),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction("mailstack_keystore.pem", plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeTestCheckFunc(listed("ec.example.test"), func(*terraform.State) error {
					runTool(t, "openssl", "pkcs12", "-in", file, "-passin", "pass:changeit", "-nodes", "-noout")
					return nil
				}),
			},
			{
				Config:      config(rsaKey, ecChain),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid PEM Key or Chain.*carries\s+the\s+private\s+key's\s+public\s+key`),
			},
			{
				// Destroy uses the last step's configuration: end on a valid one.
				Config:   config(ecKey, ecChain),
				PlanOnly: true,
			},
		},
	})
}

// Keys and names beyond RSA and DNS: Ed25519 and ECDSA P-521 keys, IP
// addresses, chosen key usages, validity in hours; keytool's spellings and
// any case; a 30-day certificate, which the default renewal window used to
// refuse.
func TestAccKeystore_keyKindsNamesAndValidity(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	ed, p521 := e.Path("ed.p12"), e.Path("p521.jks")
	config := func(typ, curve, early string) string {
		return e.ProviderBlock() + fmt.Sprintf(`
resource "mailstack_keystore" "ed" {
  path     = %[1]q
  type     = %[3]q
  password = "changeit"
  alias    = "ed"
  key {
    algorithm = "eddsa"
  }
  self_signed {
    subject {
      common_name = "ed.example.test"
    }
    dns_names          = ["ed.example.test"]
    ip_addresses       = ["192.0.2.10", "2001:db8::10"]
    validity_days      = 30
    key_usage          = ["digital_signature"]
    extended_key_usage = ["serverAuth", "client_auth"]
    %[5]s
  }
}

resource "mailstack_keystore" "p521" {
  path     = %[2]q
  password = "changeit"
  alias    = "p521"
  key {
    algorithm   = "ECDSA"
    ecdsa_curve = %[4]q
  }
  self_signed {
    subject {
      common_name = "p521.example.test"
    }
    validity_hours = 12
  }
}`, ed, p521, typ, curve, early)
	}
	var fps [2]string
	sameCertificates := func(s *terraform.State) error {
		for i, name := range []string{"ed", "p521"} {
			fp, _ := stateAttr(s, "mailstack_keystore."+name, "fingerprint_sha256")
			if fps[i] != "" && fp != fps[i] {
				return fmt.Errorf("%s: a new certificate for another spelling of the same settings", name)
			}
			fps[i] = fp
		}
		return nil
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{
			{
				Config:      config("pkcs12", "P-521", "early_renewal_days = 30"),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Early Renewal Not Before Expiry.*must be shorter than the validity`),
			},
			{
				Config: config("pfx", "P-521", ""),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("mailstack_keystore.ed", tfjsonpath.New("self_signed").AtSliceIndex(0).AtMapKey("early_renewal_days"), knownvalue.Int64Exact(10)),
					statecheck.ExpectKnownValue("mailstack_keystore.p521", tfjsonpath.New("self_signed").AtSliceIndex(0).AtMapKey("early_renewal_hours"), knownvalue.Int64Exact(4)),
					statecheck.ExpectKnownValue("mailstack_keystore.p521", tfjsonpath.New("self_signed").AtSliceIndex(0).AtMapKey("validity_days"), knownvalue.Null()),
					statecheck.ExpectKnownValue("mailstack_keystore.ed", tfjsonpath.New("type"), knownvalue.StringExact("pfx")),
				},
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check: resource.ComposeTestCheckFunc(sameCertificates, func(s *terraform.State) error {
					for file, wants := range map[string][]string{
						ed: {"Ed25519 key", "IPAddress: 192.0.2.10", "IPAddress: 2001:db8:0:0:0:0:0:10", "DigitalSignature",
							"serverAuth", "clientAuth", "DNSName: ed.example.test"},
						p521: {"521-bit EC (secp521r1) key", "Keystore type: JKS"},
					} {
						out := keytoolList(t, file, "changeit")
						for _, want := range wants {
							if !strings.Contains(out, want) {
								return fmt.Errorf("keytool -list -v of %s lacks %q:\n%s", file, want, out)
							}
						}
					}
					c := mustParseCertPEM(t, mustAttr(t, s, "mailstack_keystore.p521", "certificate_pem"))
					if d := c.NotAfter.Sub(c.NotBefore); d.Hours() < 12 || d.Hours() > 12.1 {
						return fmt.Errorf("validity_hours = 12 made a certificate valid %s", d)
					}
					return nil
				}),
			},
			{
				// Other spellings of the same values change nothing on disk.
				Config: config("PKCS12", "secp521r1", ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("mailstack_keystore.ed", plancheck.ResourceActionUpdate),
						plancheck.ExpectResourceAction("mailstack_keystore.p521", plancheck.ResourceActionUpdate),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: sameCertificates,
			},
		},
	})
}

// mustAttr reads an attribute of a resource from the state.
func mustAttr(t *testing.T, s *terraform.State, name, attr string) string {
	t.Helper()
	v, err := stateAttr(s, name, attr)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
