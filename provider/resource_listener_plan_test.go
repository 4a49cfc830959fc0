package provider

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"net"
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
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

// listenersConfig is a keystore for common name cn, a server, an implicit
// TLS SMTP listener (keystore password and alias as given), a STARTTLS
// IMAP listener and a plain SMTP listener without a tls block; extra is
// appended.
func listenersConfig(e *accEnv, ksPath, cn, password, alias string, ports [3]int, extra string) string {
	if alias != "" {
		alias = fmt.Sprintf("alias = %q", alias)
	}
	return e.SourcedProviderBlock() + fmt.Sprintf(`
resource "mailstack_keystore" "mx" {
  path     = %[1]q
  password = "changeit"
  alias    = "james"
  self_signed {
    subject {
      common_name = %[2]q
    }
  }
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
    mode              = "implicit"
    keystore_path     = mailstack_keystore.mx.path
    keystore_password = %[3]q
    %[4]s
  }
}

resource "mailstack_listener" "imap" {
  server_id = mailstack_server.mx.id
  protocol  = "imap"
  address   = "127.0.0.1"
  port      = %[6]d
  tls {
    mode              = "starttls"
    keystore_path     = mailstack_keystore.mx.path
    keystore_password = "changeit"
    min_version       = "1.3"
  }
}

resource "mailstack_listener" "plain" {
  server_id = mailstack_server.mx.id
  protocol  = "smtp"
  address   = "127.0.0.1"
  port      = %[7]d
}
%[8]s`, ksPath, cn, password, alias, ports[0], ports[1], ports[2], extra)
}

// jamesTLS is the part of James's <tls> block the tests read back.
type jamesTLS struct {
	SocketTLS    bool     `xml:"socketTLS,attr"`
	StartTLS     bool     `xml:"startTLS,attr"`
	Keystore     string   `xml:"keystore"`
	KeystoreType string   `xml:"keystoreType"`
	Secret       string   `xml:"secret"`
	Protocols    []string `xml:"supportedProtocols>protocol"`
	CipherSuites []string `xml:"supportedCipherSuites>cipherSuite"`
}

// Listener plans: the keystore is checked at plan time with errors on the
// attribute to fix; james_tls_xml is the <tls> block James needs; a
// listener without a tls block serves in plain text; a probe in the wrong
// mode says which one to use; the served fingerprint is unknown in a plan
// that repairs a stopped runtime after a rotation (it used to abort apply
// with "inconsistent result"); a listener imports by address and port.
func TestAccListener_planChecksJamesXMLAndImport(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	ksPath := e.Path("mx.jks")
	ports := [3]int{e.FreePort(), e.FreePort(), e.FreePort()}
	config := func(cn, password, alias, extra string) string {
		return listenersConfig(e, ksPath, cn, password, alias, ports, extra)
	}
	good := config("mail.example.test", "changeit", "", "")
	probe := func(port int, protocol, mode string) string {
		return config("mail.example.test", "changeit", "", fmt.Sprintf(`
data "mailstack_tls_probe" "p" {
  address  = "127.0.0.1:%d"
  protocol = %q
  mode     = %q
}`, port, protocol, mode))
	}
	// Keystores keytool made that the runtime can serve but James could
	// not: two private keys; a key password other than the store's.
	twoKeys, ownKeyPassword := e.Path("two-keys.jks"), e.Path("key-password.jks")
	keytoolGenkeypair(t, twoKeys, "JKS", "changeit", "james", "EC")
	keytoolGenkeypair(t, twoKeys, "JKS", "changeit", "other", "EC")
	keytoolGenkeypair(t, ownKeyPassword, "JKS", "changeit", "james", "EC", "-keypass", "keypass")
	notForJames := config("mail.example.test", "changeit", "", fmt.Sprintf(`
resource "mailstack_listener" "two_keys" {
  server_id = mailstack_server.mx.id
  protocol  = "pop3"
  address   = "127.0.0.1"
  port      = %[1]d
  tls {
    mode              = "implicit"
    keystore_path     = %[2]q
    keystore_password = "changeit"
    alias             = "other"
  }
}

resource "mailstack_listener" "key_password" {
  server_id = mailstack_server.mx.id
  protocol  = "pop3"
  address   = "127.0.0.1"
  port      = %[3]d
  tls {
    mode              = "starttls"
    keystore_path     = %[4]q
    keystore_password = "changeit"
    key_password      = "keypass"
  }
}`, e.FreePort(), twoKeys, e.FreePort(), ownKeyPassword))
	warned := &warnings{}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: warned.wrap(providerFactories),
		Steps: []resource.TestStep{
			{
				Config: good,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("mailstack_listener.plain", tfjsonpath.New("tls"), knownvalue.Null()),
					statecheck.ExpectKnownValue("mailstack_listener.plain", tfjsonpath.New("james_tls_xml"),
						knownvalue.StringExact("<tls socketTLS=\"false\" startTLS=\"false\"/>\n")),
				},
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check: resource.ComposeTestCheckFunc(
					checkJamesXML("mailstack_listener.smtps", jamesTLS{SocketTLS: true, Keystore: "file://" + ksPath, KeystoreType: "JKS",
						Secret: jamesSecretPlaceholder, Protocols: []string{"TLSv1.2", "TLSv1.3"}}),
					checkJamesXML("mailstack_listener.imap", jamesTLS{StartTLS: true, Keystore: "file://" + ksPath, KeystoreType: "JKS",
						Secret: jamesSecretPlaceholder, Protocols: []string{"TLSv1.3"}}),
					func(*terraform.State) error { return plainGreeting(fmt.Sprintf("127.0.0.1:%d", ports[2])) },
				),
			},
			{
				// A new listener with a password that does not open the
				// keystore: refused at plan, on the attribute.
				Config: config("mail.example.test", "changeit", "", fmt.Sprintf(`
resource "mailstack_listener" "pop3s" {
  server_id = mailstack_server.mx.id
  protocol  = "pop3"
  address   = "127.0.0.1"
  port      = %d
  tls {
    mode              = "implicit"
    keystore_path     = mailstack_keystore.mx.path
    keystore_password = "not-the-password"
  }
}`, e.FreePort())),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Wrong Keystore Password.*keystore_password.*wrong keystore password.*Keystore file:\s+` + regexp.QuoteMeta(ksPath)),
			},
			{
				// Several private keys and no alias: the runtime could not choose.
				PreConfig:   func() { keytoolGenkeypair(t, ksPath, "JKS", "changeit", "other", "EC") },
				Config:      config("mail.example.test", "changeit", "", ""),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)No Such Private Key Entry.*found\s+2\s+private\s+key\s+entries\s+\(james,\s+other\).*Set\s+tls.alias`),
			},
			{
				PreConfig: func() { keytool(t, "-delete", "-alias", "other", "-keystore", ksPath, "-storepass", "changeit") },
				Config:    good,
				PlanOnly:  true,
			},
			{
				// James guards: the runtime serves these keystores, James
				// (one <secret>, no alias) could not; plan warns.
				PreConfig:          warned.reset,
				Config:             notForJames,
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PostApplyPreRefresh: []plancheck.PlanCheck{
						warned.expect("mailstack_listener", `Several Private Keys for Apache James: `+regexp.QuoteMeta(twoKeys)+
							` holds 2 private key entries \(james, other\)\. This listener serves "other"`),
						warned.expect("mailstack_listener", `Key Password Differs From Store Password: The key "james" in `+
							regexp.QuoteMeta(ownKeyPassword)+` has its own password.*one <secret>`),
					},
				},
			},
			{
				Config:      probe(ports[1], "imap", "implicit"),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`Try\s+mode\s+=\s+"starttls"`),
			},
			{
				Config:      probe(ports[0], "smtp", "starttls"),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`Try\s+mode\s+=\s+"implicit"`),
			},
			{
				// A new certificate; the listeners are not in the plan.
				Config: config("mx2.example.test", "changeit", "", ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("mailstack_listener.smtps", plancheck.ResourceActionNoop)},
				},
			},
			{
				// The runtime stopped: the plan repairs it, and what the port
				// will serve is unknown, not the fingerprint state had.
				PreConfig: e.stopRuntimes,
				Config:    config("mx2.example.test", "changeit", "", ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("mailstack_listener.smtps", plancheck.ResourceActionUpdate),
						plancheck.ExpectUnknownValue("mailstack_listener.smtps", tfjsonpath.New("served_fingerprint_sha256")),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: func(s *terraform.State) error {
					fp, _ := stateAttr(s, "mailstack_keystore.mx", "fingerprint_sha256")
					served, _ := stateAttr(s, "mailstack_listener.smtps", "served_fingerprint_sha256")
					if served != fp {
						return fmt.Errorf("served %s, keystore %s", served, fp)
					}
					return checkTLSGreeting(fmt.Sprintf("127.0.0.1:%d", ports[0]), "220 mail.example.test", fp)
				},
			},
			{
				Config:            config("mx2.example.test", "changeit", "", ""),
				ResourceName:      "mailstack_listener.smtps",
				ImportState:       true,
				ImportStateId:     fmt.Sprintf("default/127.0.0.1:%d", ports[0]),
				ImportStateVerify: true,
			},
			{
				Config:        config("mx2.example.test", "changeit", "", ""),
				ResourceName:  "mailstack_listener.smtps",
				ImportState:   true,
				ImportStateId: "default/[::1]:1",
				ExpectError:   regexp.MustCompile(`(?s)server "default" has no listener on \[::1\]:1; it has: 127\.0\.0\.1:`),
			},
		},
	})
}

// checkJamesXML parses a listener's james_tls_xml and compares it with
// want; cipher suites are only checked to hold TLS 1.3's and 1.2's.
func checkJamesXML(name string, want jamesTLS) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		text, err := stateAttr(s, name, "james_tls_xml")
		if err != nil {
			return err
		}
		var got jamesTLS
		if err := xml.Unmarshal([]byte(text), &got); err != nil {
			return fmt.Errorf("%s: james_tls_xml is not XML (%v):\n%s", name, err, text)
		}
		suites := strings.Join(got.CipherSuites, " ")
		if !strings.Contains(suites, "TLS_AES_128_GCM_SHA256") || !strings.Contains(suites, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256") {
			return fmt.Errorf("%s: cipher suites %v", name, got.CipherSuites)
		}
		got.CipherSuites = nil
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("%s: james_tls_xml says %+v, want %+v:\n%s", name, got, want, text)
		}
		return nil
	}
}

// plainGreeting checks that a port greets in plain text.
func plainGreeting(addr string) error {
	c, err := net.DialTimeout("tcp", addr, testutil.HangGuard)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(testutil.HangGuard))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "220 mail.example.test") {
		return fmt.Errorf("plain listener %s greets %q (%v)", addr, line, err)
	}
	return nil
}
