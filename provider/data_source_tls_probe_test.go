package provider

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

func TestCertPool(t *testing.T) {
	key, err := keystore.GenerateKey(keystore.KeySpec{Algorithm: "ECDSA", ECDSACurve: "P256"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := keystore.SelfSign(key, keystore.CertificateRequest{
		Subject: keystore.Subject{CommonName: "ca.test"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	keyPEM := "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
	cases := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"one certificate", certPEM, ""},
		{"other blocks are skipped", keyPEM + certPEM, ""},
		{"no certificate", keyPEM, "no PEM CERTIFICATE block"},
		{"not PEM", "hello", "no PEM CERTIFICATE block"},
		{"broken certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "certificate 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pool, err := certPool(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: pool}); err != nil {
				t.Errorf("the pool does not hold the certificate: %v", err)
			}
		})
	}
}

// TestAccTLSProbe_errors: a port that does not answer is an error (a
// warning inside a check block); bad input is caught before connecting.
func TestAccTLSProbe_errors(t *testing.T) {
	e := newAccEnv(t)
	closed := e.FreePort()
	probe := func(body string) string {
		return e.ProviderBlock() + fmt.Sprintf("data \"mailstack_tls_probe\" \"p\" {\n%s\n}\n", body)
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{
			{
				Config:      probe(fmt.Sprintf(`address = "127.0.0.1:%d"`+"\n"+`protocol = "smtp"`+"\n"+`mode = "starttls"`, closed)),
				ExpectError: regexp.MustCompile(`Unable to Probe 127\.0\.0\.1:` + fmt.Sprint(closed) + `(.|\n)*dial`),
			},
			{
				Config:      probe(`address = "127.0.0.1:1"` + "\n" + `protocol = "http"` + "\n" + `mode = "implicit"`),
				ExpectError: regexp.MustCompile(`protocol(.|\n)*value must be one of`),
			},
			{
				Config: probe(`address = "127.0.0.1:1"` + "\n" + `protocol = "smtp"` + "\n" + `mode = "implicit"` +
					"\n" + `ca_certificates_pem = "not a certificate"`),
				ExpectError: regexp.MustCompile(`Invalid CA Certificates`),
			},
		},
	})
}
