package provider

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

// writePEMCertificate makes a self-signed ECDSA certificate for name and
// writes it and its key as PEM files, as certbot would; it returns the
// certificate's fingerprint.
func writePEMCertificate(t *testing.T, certFile, keyFile, name string) string {
	t.Helper()
	key, err := keystore.GenerateKey(keystore.KeySpec{Algorithm: "ECDSA"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := keystore.SelfSign(key, keystore.CertificateRequest{Subject: keystore.Subject{CommonName: name}, DNSNames: []string{name}})
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	writeTestFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	return keystore.Fingerprint(cert)
}

// One port serving three certificates by SNI - an RSA keystore (the
// default), an ECDSA keystore for the same name and a PEM pair for
// another name - checked by TLS probes with server_name; session tickets
// off on the MX port and a short lifetime on the other; and an import
// that plans nothing.
func TestAccListener_severalCertificates(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	ports := []int{e.FreePort(), e.FreePort()}
	certFile, keyFile := e.Path("other.pem"), e.Path("other.key")
	pemFP := writePEMCertificate(t, certFile, keyFile, "mail.other.test")
	config := e.SourcedProviderBlock() + fmt.Sprintf(`
resource "mailstack_keystore" "rsa" {
  path     = %[1]q
  password = "changeit"
  alias    = "rsa"
  self_signed {
    subject {
      common_name = "mail.example.test"
    }
    dns_names = ["mail.example.test"]
  }
}

resource "mailstack_keystore" "ec" {
  path     = %[2]q
  type     = "PKCS12"
  password = "changeit"
  alias    = "ec"
  key {
    algorithm = "ECDSA"
  }
  self_signed {
    subject {
      common_name = "mail.example.test"
    }
    dns_names = ["mail.example.test"]
  }
}

resource "mailstack_server" "mx" {
  hostname = "mail.example.test"
}

resource "mailstack_listener" "imaps" {
  server_id = mailstack_server.mx.id
  protocol  = "imap"
  address   = "127.0.0.1"
  port      = %[3]d
  tls {
    mode                    = "implicit"
    keystore_path           = mailstack_keystore.rsa.path
    keystore_password       = "changeit"
    session_ticket_lifetime = "2h"

    certificate {
      keystore_path     = mailstack_keystore.ec.path
      keystore_password = "changeit"
    }
    certificate {
      certificate_file = %[5]q
      private_key_file = %[6]q
    }
  }
}

resource "mailstack_listener" "mx" {
  server_id = mailstack_server.mx.id
  protocol  = "smtp"
  address   = "127.0.0.1"
  port      = %[4]d
  tls {
    mode              = "starttls"
    keystore_path     = mailstack_keystore.rsa.path
    keystore_password = "changeit"
    session_tickets   = false
    ocsp_stapling     = false
  }
}

data "mailstack_tls_probe" "example" {
  address             = "127.0.0.1:${mailstack_listener.imaps.port}"
  protocol            = "imap"
  mode                = "implicit"
  server_name         = "mail.example.test"
  ca_certificates_pem = mailstack_keystore.ec.certificate_pem
}

data "mailstack_tls_probe" "other" {
  address             = "127.0.0.1:${mailstack_listener.imaps.port}"
  protocol            = "imap"
  mode                = "implicit"
  server_name         = "mail.other.test"
  ca_certificates_pem = file(%[5]q)
}

data "mailstack_tls_probe" "unknown_name" {
  address     = "127.0.0.1:${mailstack_listener.imaps.port}"
  protocol    = "imap"
  mode        = "implicit"
  server_name = "nothing.example.test"
}
`, e.Path("rsa.jks"), e.Path("ec.p12"), ports[0], ports[1], certFile, keyFile)

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{
			{
				// A certificate block naming both kinds of source is
				// refused at plan, with the block named.
				Config: e.ProviderBlock() + `
resource "mailstack_listener" "bad" {
  server_id = "default"
  protocol  = "imap"
  port      = 1
  tls {
    mode = "implicit"
    certificate {
      keystore_path    = "/x.p12"
      certificate_file = "/x.pem"
    }
  }
}`,
				ExpectError: regexp.MustCompile(`tls.certificate\[0\] names a keystore \(keystore_path\) or PEM files`),
			},
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					// A client that supports ECDSA gets the ECDSA certificate for the shared name...
					statecheck.CompareValuePairs("data.mailstack_tls_probe.example", tfjsonpath.New("fingerprint_sha256"),
						"mailstack_keystore.ec", tfjsonpath.New("fingerprint_sha256"), compare.ValuesSame()),
					statecheck.ExpectKnownValue("data.mailstack_tls_probe.example", tfjsonpath.New("verified"), knownvalue.Bool(true)),
					// ...the PEM pair for its name, and the default for a name nothing serves.
					statecheck.ExpectKnownValue("data.mailstack_tls_probe.other", tfjsonpath.New("fingerprint_sha256"), knownvalue.StringExact(pemFP)),
					statecheck.ExpectKnownValue("data.mailstack_tls_probe.other", tfjsonpath.New("verified"), knownvalue.Bool(true)),
					statecheck.CompareValuePairs("data.mailstack_tls_probe.unknown_name", tfjsonpath.New("fingerprint_sha256"),
						"mailstack_keystore.rsa", tfjsonpath.New("fingerprint_sha256"), compare.ValuesSame()),
					statecheck.CompareValuePairs("mailstack_listener.imaps", tfjsonpath.New("served_fingerprint_sha256"),
						"mailstack_keystore.rsa", tfjsonpath.New("fingerprint_sha256"), compare.ValuesSame()),
				},
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: func(s *terraform.State) error {
					rsaFP, _ := stateAttr(s, "mailstack_keystore.rsa", "fingerprint_sha256")
					// A client that only does RSA still gets the RSA certificate for the shared name.
					if fp, err := handshakeFingerprint(fmt.Sprintf("127.0.0.1:%d", ports[0]), &tls.Config{
						ServerName: "mail.example.test", MaxVersion: tls.VersionTLS12,
						CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}); err != nil || fp != rsaFP {
						return fmt.Errorf("RSA-only client: %s, %v; want %s", fp, err, rsaFP)
					}
					cache := tls.NewLRUClientSessionCache(4)
					if resumed(fmt.Sprintf("127.0.0.1:%d", ports[0]), cache) || !resumed(fmt.Sprintf("127.0.0.1:%d", ports[0]), cache) {
						return fmt.Errorf("the IMAP port does not resume sessions")
					}
					return nil
				},
			},
			{
				Config: config, ResourceName: "mailstack_listener.imaps", ImportState: true, ImportStateVerify: true,
			},
		},
	})
}

// handshakeFingerprint connects with implicit TLS and returns the leaf's
// fingerprint.
func handshakeFingerprint(addr string, cfg *tls.Config) (string, error) {
	cfg.InsecureSkipVerify = true
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: testutil.HangGuard}, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return keystore.Fingerprint(c.ConnectionState().PeerCertificates[0]), nil
}

// resumed connects with cache, reads the greeting (after which a TLS 1.3
// ticket has arrived) and reports whether the session was resumed.
func resumed(addr string, cache tls.ClientSessionCache) bool {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: testutil.HangGuard}, "tcp", addr,
		&tls.Config{ServerName: "mail.example.test", InsecureSkipVerify: true, ClientSessionCache: cache})
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testutil.HangGuard))
	c.Read(make([]byte, 512))
	return c.ConnectionState().DidResume
}
