package provider

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

// keytoolEntries splits keytool -list -v output into entries by alias,
// each with the fields the data source reports.
func keytoolEntries(out string) map[string]map[string]string {
	entries := map[string]map[string]string{}
	blocks := strings.Split(out, "Alias name: ")[1:]
	for _, b := range blocks {
		alias, _, _ := strings.Cut(b, "\n")
		e := map[string]string{"chain_length": "1"}
		for label, key := range map[string]string{
			"Entry type: ": "kind", "Owner: ": "subject", "Issuer: ": "issuer",
			"Serial number: ": "serial", "SHA256: ": "fingerprint_sha256", "Certificate chain length: ": "chain_length",
		} {
			if v := keytoolField(b, label); len(v) > 0 {
				e[key] = v[0] // the leaf's
			}
		}
		entries[strings.TrimSpace(alias)] = e
	}
	return entries
}

// The data source lists keytool-made keystores as keytool -list -v does:
// a JKS with an RSA key under its own -keypass, SANs and a trusted root,
// and a PKCS#12 with an EC P-384 key. Bad files and passwords are errors
// that name the file.
func TestAccDataSourceKeystore_keytoolKeystores(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	jks, p12, pemFile := e.Path("james.jks"), e.Path("mx.p12"), e.Path("root.pem")
	keytoolGenkeypair(t, jks, "JKS", "changeit", "james", "RSA", "-keypass", "keypass1",
		"-ext", "SAN=dns:james.example.test,dns:mail.example.test")
	ca := newRootCA(t, t.TempDir(), "root", "Test Root CA")
	writeTestFile(t, pemFile, []byte(ca.CertPEM))
	keytool(t, "-importcert", "-noprompt", "-alias", "root", "-file", pemFile, "-keystore", jks, "-storepass", "changeit")
	keytoolGenkeypair(t, p12, "PKCS12", "changeit", "mx", "EC", "-groupname", "secp384r1")
	snap := newSnapshot(t)
	snap.Take(jks, p12)

	config := func(file, password, typ string) string {
		extra := ""
		if typ != "" {
			extra = fmt.Sprintf("type = %q", typ)
		}
		return e.ProviderBlock() + fmt.Sprintf(`
data "mailstack_keystore" "ks" {
  path     = %[1]q
  password = %[2]q
  %[3]s
}`, file, password, extra)
	}
	matchesKeytool := func(file string) resource.TestCheckFunc {
		return func(s *terraform.State) error {
			want := keytoolEntries(keytoolList(t, file, "changeit"))
			got := s.RootModule().Resources["data.mailstack_keystore.ks"].Primary.Attributes
			if got["entries.#"] != fmt.Sprint(len(want)) {
				return fmt.Errorf("%s entries, keytool lists %d", got["entries.#"], len(want))
			}
			for i := 0; i < len(want); i++ {
				alias := got[fmt.Sprintf("entries.%d.alias", i)]
				fields, ok := want[alias]
				if !ok {
					return fmt.Errorf("entry %q not listed by keytool", alias)
				}
				for k, v := range fields {
					if g := got[fmt.Sprintf("entries.%d.%s", i, k)]; g != v {
						return fmt.Errorf("%s %s: data source %q, keytool %q", alias, k, g, v)
					}
				}
			}
			snap.Unchanged()
			return nil
		}
	}
	entry := func(i int, attr string) tfjsonpath.Path {
		return tfjsonpath.New("entries").AtSliceIndex(i).AtMapKey(attr)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{
			{
				Config: config(jks, "changeit", ""),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.mailstack_keystore.ks", tfjsonpath.New("type"), knownvalue.StringExact("JKS")),
					statecheck.ExpectKnownValue("data.mailstack_keystore.ks", entry(0, "alias"), knownvalue.StringExact("james")),
					statecheck.ExpectKnownValue("data.mailstack_keystore.ks", entry(0, "kind"), knownvalue.StringExact("PrivateKeyEntry")),
					statecheck.ExpectKnownValue("data.mailstack_keystore.ks", entry(0, "key_algorithm"), knownvalue.StringExact("RSA")),
					statecheck.ExpectKnownValue("data.mailstack_keystore.ks", entry(0, "key_size"), knownvalue.Int64Exact(2048)),
					statecheck.ExpectKnownValue("data.mailstack_keystore.ks", entry(0, "dns_names"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.StringExact("james.example.test"), knownvalue.StringExact("mail.example.test")})),
					statecheck.ExpectKnownValue("data.mailstack_keystore.ks", entry(1, "alias"), knownvalue.StringExact("root")),
					statecheck.ExpectKnownValue("data.mailstack_keystore.ks", entry(1, "kind"), knownvalue.StringExact("trustedCertEntry")),
					statecheck.ExpectKnownValue("data.mailstack_keystore.ks", entry(1, "key_algorithm"), knownvalue.StringExact("ECDSA")),
					statecheck.ExpectKnownValue("data.mailstack_keystore.ks", entry(1, "dns_names"), knownvalue.ListSizeExact(0)),
				},
				Check: matchesKeytool(jks),
			},
			{
				Config: config(p12, "changeit", "PKCS12"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.mailstack_keystore.ks", entry(0, "subject"),
						knownvalue.StringExact("CN=mx.example.test, OU=Mail, O=Example, L=Paris, ST=IDF, C=FR")),
					statecheck.ExpectKnownValue("data.mailstack_keystore.ks", entry(0, "key_algorithm"), knownvalue.StringExact("ECDSA")),
					statecheck.ExpectKnownValue("data.mailstack_keystore.ks", entry(0, "key_size"), knownvalue.Int64Exact(384)),
				},
				Check: matchesKeytool(p12),
			},
			{
				Config:      config(jks, "wrong-password", ""),
				ExpectError: errorNaming("wrong keystore password", jks, "(all entries)"),
			},
			{
				Config:      config(pemFile, "changeit", ""),
				ExpectError: errorNaming("found PEM text where a JKS or PKCS#12 keystore was expected", pemFile, "(all entries)"),
			},
			{
				Config:      config(jks, "changeit", "PKCS12"),
				ExpectError: regexp.MustCompile(`(?s)Keystore Type Mismatch.*is\s+a\s+JKS\s+keystore,\s+not\s+PKCS12`),
			},
		},
	})
	snap.Unchanged()
}
