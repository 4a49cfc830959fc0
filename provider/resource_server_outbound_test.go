package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/smtp"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	msgdkim "github.com/emersion/go-msgauth/dkim"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
)

// outboundConfig is two servers: "a" sends mail for other domains through
// a relay block to the submission port of "b" (AUTH with a write-only
// password, its certificate pinned by a tls_policy), and signs it with a
// DKIM key. relayPort is where a's relay points.
func outboundConfig(e *accEnv, relayPort, subA, subB int) string {
	return e.SourcedProviderBlock() + fmt.Sprintf(`
%[1]s
resource "mailstack_server" "a" {
  name          = "a"
  hostname      = "mail.a.test"
  domains       = ["a.test"]
  dns_resolvers = ["127.0.0.1:9"]
  relay {
    address             = "127.0.0.1:%[2]d"
    mode                = "starttls"
    username            = "alice@a.test"
    password_wo         = "relay-secret"
    password_wo_version = 1
  }
  tls_policy {
    domain              = "127.0.0.1"
    fingerprints_sha256 = [mailstack_keystore.ks.fingerprint_sha256]
  }
  queue {
    retry_min = "1m"
  }
}

resource "mailstack_server" "b" {
  name     = "b"
  hostname = "mail.b.test"
  domains  = ["remote.test"]
}

%[3]s
%[4]s
resource "mailstack_user" "alice_a" {
  server_id = mailstack_server.a.id
  address   = "alice@a.test"
  password  = "alice-secret"
}

# alice's account at the relay.
resource "mailstack_user" "alice_b" {
  server_id           = mailstack_server.b.id
  address             = "alice@a.test"
  password_wo         = "relay-secret"
  password_wo_version = 1
}

resource "mailstack_user" "bob" {
  server_id = mailstack_server.b.id
  address   = "bob@remote.test"
  password  = "bob-secret"
}

resource "mailstack_dkim_key" "rsa" {
  server_id = mailstack_server.a.id
  domain    = "a.test"
  selector  = "s2026"
}

resource "mailstack_dkim_key" "ed" {
  server_id = mailstack_server.a.id
  domain    = "a.test"
  selector  = "s2026e"
  algorithm = "Ed25519"
}

output "dkim_record" {
  value = "${mailstack_dkim_key.rsa.dns_name} TXT ${mailstack_dkim_key.rsa.dns_txt_value}"
}
`, mailTestKeystoreHCL(e.Path("ks.p12")), relayPort,
		ksListenerHCL("sub_a", "a", "submission", subA, "starttls"),
		ksListenerHCL("sub_b", "b", "submission", subB, "starttls"))
}

// submit sends one message as alice over a's submission port (STARTTLS,
// AUTH PLAIN) to rcpt.
func submit(st *terraform.State, port int, rcpt, subject string) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(st.RootModule().Resources["mailstack_keystore.ks"].Primary.Attributes["certificate_pem"]))
	c, err := smtp.Dial(fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.StartTLS(&tls.Config{ServerName: "mail.test", RootCAs: pool}); err != nil {
		return err
	}
	if err := c.Auth(smtp.PlainAuth("", "alice@a.test", "alice-secret", "127.0.0.1")); err != nil {
		return err
	}
	if err := c.Mail("alice@a.test"); err != nil {
		return err
	}
	if err := c.Rcpt(rcpt); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "From: Alice <alice@a.test>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@a.test>\r\n\r\nHello through the relay.\r\n", rcpt, subject, subject)
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// inMaildir waits until a file under b's Maildir for bob holds subject,
// and returns it.
func inMaildir(e *accEnv, subject string) (string, error) {
	var found string
	err := waitFor(testutil.HangGuard, func() error {
		files, _ := filepath.Glob(e.Path("b/mail/mail/remote.test/bob/new/*"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			if strings.Contains(string(b), "Subject: "+subject) {
				found = string(b)
				return nil
			}
		}
		return fmt.Errorf("no message %q in bob's Maildir (%d files)", subject, len(files))
	})
	return found, err
}

// dkimSigned checks that msg carries one DKIM signature of a.test per
// key of outboundConfig, each verified (go-msgauth) with the TXT record
// that key has in state.
func dkimSigned(st *terraform.State, msg string) error {
	txt := map[string]string{}
	for _, k := range []string{"mailstack_dkim_key.rsa", "mailstack_dkim_key.ed"} {
		a := st.RootModule().Resources[k].Primary.Attributes
		txt[a["dns_name"]] = a["dns_txt_value"]
	}
	vs, err := msgdkim.VerifyWithOptions(strings.NewReader(msg), &msgdkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) { return []string{txt[name]}, nil },
	})
	if err != nil || len(vs) != len(txt) {
		return fmt.Errorf("%d DKIM signatures (%v), want %d:\n%s", len(vs), err, len(txt), msg)
	}
	for _, v := range vs {
		if v.Err != nil || v.Domain != "a.test" {
			return fmt.Errorf("DKIM signature of %s: %v", v.Domain, v.Err)
		}
	}
	return nil
}

// TestAccOutbound_relayDKIMQueue: mail submitted to a for another domain
// goes through the relay block to b (AUTH, pinned certificate), signed
// with a's DKIM keys, whose records are in state and outputs; with the
// relay unreachable, the message waits in a's queue, and queue_length and
// queue_oldest_seconds show it in state.
func TestAccOutbound_relayDKIMQueue(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	subA, subB := e.FreePort(), e.FreePort()
	closed := e.FreePort()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{
			{
				Config: outboundConfig(e, subB, subA, subB),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("mailstack_dkim_key.rsa", tfjsonpath.New("dns_name"), knownvalue.StringExact("s2026._domainkey.a.test")),
					statecheck.ExpectKnownValue("mailstack_dkim_key.rsa", tfjsonpath.New("dns_txt_value"), knownvalue.StringRegexp(regexp.MustCompile(`^v=DKIM1; k=rsa; p=MIIBIjAN[A-Za-z0-9+/=]+$`))),
					statecheck.ExpectKnownValue("mailstack_dkim_key.ed", tfjsonpath.New("dns_txt_value"), knownvalue.StringRegexp(regexp.MustCompile(`^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$`))),
					statecheck.ExpectKnownOutputValue("dkim_record", knownvalue.StringRegexp(regexp.MustCompile(`^s2026\._domainkey\.a\.test TXT v=DKIM1; k=rsa; p=`))),
					statecheck.ExpectKnownValue("mailstack_server.a", tfjsonpath.New("queue_length"), knownvalue.Int64Exact(0)),
					statecheck.ExpectKnownValue("mailstack_server.a", tfjsonpath.New("relay").AtMapKey("password_wo"), knownvalue.Null()),
				},
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check: func(st *terraform.State) error {
					if err := submit(st, subA, "bob@remote.test", "relayed-1"); err != nil {
						return fmt.Errorf("submitting to a: %w", err)
					}
					msg, err := inMaildir(e, "relayed-1")
					if err != nil {
						return err
					}
					if !strings.Contains(msg, "by mail.b.test with ESMTPSA (TLS 1.3") {
						return fmt.Errorf("the message did not reach b over TLS with AUTH:\n%s", msg)
					}
					// Both signatures verify with the TXT records in state.
					if err := dkimSigned(st, msg); err != nil {
						return err
					}
					// No DKIM secret in the state: only public parts.
					for _, r := range st.RootModule().Resources {
						for k, v := range r.Primary.Attributes {
							if strings.Contains(v, "PRIVATE KEY") || strings.Contains(v, "relay-secret") {
								return fmt.Errorf("%s.%s holds a secret", r.Type, k)
							}
						}
					}
					return nil
				},
			},
			{
				// The relay moves to a closed port: the next message waits.
				Config: outboundConfig(e, closed, subA, subB),
				Check: func(st *terraform.State) error {
					return submit(st, subA, "bob@remote.test", "queued-1")
				},
			},
			{
				RefreshState: true,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("mailstack_server.a", "queue_length", "1"),
					resource.TestMatchResourceAttr("mailstack_server.a", "queue_oldest_seconds", regexp.MustCompile(`^[0-9]+$`)),
					func(st *terraform.State) error {
						l, err := statedir.Local(e.Path("a")).Client().Queue(context.Background())
						if err != nil {
							return err
						}
						if len(l.Messages) != 1 || !strings.Contains(l.Messages[0].Recipients[0].LastError, "connection refused") {
							return fmt.Errorf("the queue holds %+v", l.Messages)
						}
						return nil
					},
				),
			},
			{
				// Back to the relay: retry now delivers the waiting message.
				Config: outboundConfig(e, subB, subA, subB),
				Check: func(st *terraform.State) error {
					c := statedir.Local(e.Path("a")).Client()
					l, err := c.Queue(context.Background())
					if err != nil || len(l.Messages) != 1 {
						return fmt.Errorf("queue: %+v, %v", l, err)
					}
					if err := c.RetryQueued(context.Background(), l.Messages[0].ID); err != nil {
						return err
					}
					_, err = inMaildir(e, "queued-1")
					return err
				},
			},
		},
	})
}

// TestAccDKIMKey_importAndReplace imports a key by its id, replaces it
// when its algorithm changes (a new key, a new record) and removes its
// file from the host on destroy.
func TestAccDKIMKey_importAndReplace(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	cfg := func(alg string) string {
		return e.SourcedProviderBlock() + fmt.Sprintf(`
resource "mailstack_server" "mx" {
  hostname = "mail.example.test"
}

resource "mailstack_dkim_key" "k" {
  server_id = mailstack_server.mx.id
  domain    = "Example.test"
  selector  = "s1"
  algorithm = %q
}
`, alg)
	}
	keyFile := e.Path("default/dkim/s1._domainkey.example.test.key")
	var firstTXT string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		CheckDestroy: func(*terraform.State) error {
			if _, err := os.Stat(keyFile); !os.IsNotExist(err) {
				return fmt.Errorf("the key file %s outlived destroy: %v", keyFile, err)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config: cfg("Ed25519"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("mailstack_dkim_key.k", tfjsonpath.New("id"), knownvalue.StringExact("default/s1._domainkey.example.test")),
				},
				Check: func(st *terraform.State) error {
					firstTXT = st.RootModule().Resources["mailstack_dkim_key.k"].Primary.Attributes["dns_txt_value"]
					fi, err := os.Stat(keyFile)
					if err != nil || fi.Mode().Perm() != 0o600 {
						return fmt.Errorf("key file %s: %v %v", keyFile, fi, err)
					}
					return nil
				},
			},
			{
				ResourceName:      "mailstack_dkim_key.k",
				ImportState:       true,
				ImportStateVerify: true,
				ImportStateId:     "default/s1._domainkey.example.test",
				// The runtime keeps the domain as configured.
				ImportStateVerifyIgnore: []string{"domain"},
			},
			{
				Config: cfg("RSA"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("mailstack_dkim_key.k", plancheck.ResourceActionDestroyBeforeCreate),
				}},
				Check: func(st *terraform.State) error {
					txt := st.RootModule().Resources["mailstack_dkim_key.k"].Primary.Attributes["dns_txt_value"]
					if txt == firstTXT || !strings.HasPrefix(txt, "v=DKIM1; k=rsa; ") {
						return fmt.Errorf("after the replacement the record is %q", txt)
					}
					return nil
				},
			},
		},
	})
}
