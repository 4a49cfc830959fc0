package provider

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/smtp"
	"net/textproto"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil/pgtest"
)

// postgresConfig is two servers on one PostgreSQL database, "a" with the
// connection string in postgres_dsn, "b" with the write-only
// postgres_dsn_wo (or on the embedded store when bStore is "embedded"),
// each with a listener, and one user created through "a".
func postgresConfig(e *accEnv, dsn, bStore string, smtpB, imapA int) string {
	bSettings := fmt.Sprintf("store                   = \"postgres\"\n  postgres_dsn_wo         = %q\n  postgres_dsn_wo_version = 1", dsn)
	if bStore == "embedded" {
		bSettings = `store = "embedded"`
	}
	return e.SourcedProviderBlock() + fmt.Sprintf(`
%[1]s
resource "mailstack_server" "a" {
  name         = "a"
  hostname     = "mx1.example.test"
  domains      = ["example.test"]
  store        = "postgres"
  postgres_dsn = %[2]q
}

resource "mailstack_server" "b" {
  name     = "b"
  hostname = "mx2.example.test"
  domains  = ["example.test"]
  %[3]s
}

%[4]s
%[5]s
resource "mailstack_user" "alice" {
  server_id = mailstack_server.a.id
  address   = "alice@example.test"
  password  = "alice-secret"
}
`, mailTestKeystoreHCL(e.Path("ks.p12")), dsn, bSettings,
		ksListenerHCL("smtp_b", "b", "smtp", smtpB, "starttls"),
		ksListenerHCL("imap_a", "a", "imap", imapA, "implicit"))
}

// storeTLS trusts the test keystore's certificate for mail.test.
func storeTLS(st *terraform.State) *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(st.RootModule().Resources["mailstack_keystore.ks"].Primary.Attributes["certificate_pem"]))
	return &tls.Config{ServerName: "mail.test", RootCAs: pool}
}

// deliverSTARTTLS sends one message to rcpt over port 25-style SMTP with
// STARTTLS.
func deliverSTARTTLS(cfg *tls.Config, port int, rcpt, subject string) error {
	c, err := smtp.Dial(fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.StartTLS(cfg); err != nil {
		return err
	}
	if err := c.Mail("bob@elsewhere.test"); err != nil {
		return err
	}
	if err := c.Rcpt(rcpt); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "From: bob@elsewhere.test\r\nTo: %s\r\nSubject: %s\r\n\r\nDelivered through mx2, read through mx1.\r\n", rcpt, subject)
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// imapSubjects logs in as alice over implicit TLS and lists INBOX's
// subjects.
func imapSubjects(cfg *tls.Config, port int) ([]string, error) {
	c, err := imapclient.DialTLS(fmt.Sprintf("127.0.0.1:%d", port), &imapclient.Options{TLSConfig: cfg})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Login("alice@example.test", "alice-secret").Wait(); err != nil {
		return nil, err
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages == 0 {
		return nil, err
	}
	all := imap.SeqSet{}
	all.AddRange(1, 0)
	msgs, err := c.Fetch(all, &imap.FetchOptions{Envelope: true}).Collect()
	var out []string
	for _, m := range msgs {
		out = append(out, m.Envelope.Subject)
	}
	return out, err
}

// TestAccServer_postgresStore: two servers with store = "postgres" on one
// database and one user: mail delivered through one is read through the
// other. The connection string is in state only where postgres_dsn holds
// it; the write-only one never is. Then b moves to the embedded store in
// place, where alice does not exist.
func TestAccServer_postgresStore(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	dsn := pgtest.Start(t, pgtest.Options{}).NewDatabase(t)
	smtpB, imapA := e.FreePort(), e.FreePort()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{
			{
				Config: postgresConfig(e, dsn, "postgres", smtpB, imapA),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("mailstack_server.a", tfjsonpath.New("store"), knownvalue.StringExact("postgres")),
					statecheck.ExpectKnownValue("mailstack_server.a", tfjsonpath.New("postgres_dsn"), knownvalue.StringExact(dsn)),
					statecheck.ExpectKnownValue("mailstack_server.b", tfjsonpath.New("store"), knownvalue.StringExact("postgres")),
					statecheck.ExpectKnownValue("mailstack_server.b", tfjsonpath.New("postgres_dsn"), knownvalue.Null()),
					statecheck.ExpectKnownValue("mailstack_server.b", tfjsonpath.New("postgres_dsn_wo"), knownvalue.Null()),
					statecheck.ExpectKnownValue("mailstack_server.b", tfjsonpath.New("postgres_dsn_wo_version"), knownvalue.Int64Exact(1)),
				},
				Check: func(st *terraform.State) error {
					cfg := storeTLS(st)
					if err := deliverSTARTTLS(cfg, smtpB, "alice@example.test", "across servers"); err != nil {
						return fmt.Errorf("delivering through b to the user created through a: %w", err)
					}
					subjects, err := imapSubjects(cfg, imapA)
					if err != nil || len(subjects) != 1 || subjects[0] != "across servers" {
						return fmt.Errorf("IMAP on a shows %q, %v; want the message delivered through b", subjects, err)
					}
					return nil
				},
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				ResourceName:            "mailstack_server.a",
				ImportState:             true,
				ImportStateId:           "a",
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"postgres_dsn", "delete_mail_on_destroy", "supervisor"},
			},
			{
				Config: postgresConfig(e, dsn, "embedded", smtpB, imapA),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("mailstack_server.b", plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("mailstack_server.b", tfjsonpath.New("store"), knownvalue.StringExact("embedded")),
				},
				Check: func(st *terraform.State) error {
					err := deliverSTARTTLS(storeTLS(st), smtpB, "alice@example.test", "to the embedded store")
					var te *textproto.Error
					if !errors.As(err, &te) || te.Code != 550 {
						return fmt.Errorf("b on its embedded store: delivery to alice = %v, want 550 (no such user there)", err)
					}
					return nil
				},
			},
		},
	})
}

// TestAccServer_storeValidation: the store and its connection string go
// together, and postgres_dsn excludes postgres_dsn_wo.
func TestAccServer_storeValidation(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	server := func(body string) string {
		return e.ProviderBlock() + "resource \"mailstack_server\" \"s\" {\n  hostname = \"mx.example.test\"\n" + body + "\n}\n"
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{
			{Config: server(`  store = "postgres"`), PlanOnly: true, ExpectError: regexp.MustCompile(`needs the database's connection string`)},
			{Config: server(`  postgres_dsn = "host=db"`), PlanOnly: true, ExpectError: regexp.MustCompile(`only used with\s+store = "postgres"`)},
			{Config: server("  store = \"postgres\"\n  postgres_dsn = \"host=db\"\n  postgres_dsn_wo = \"host=db\""), PlanOnly: true, ExpectError: regexp.MustCompile(`cannot be configured together`)},
			{Config: server(`  store = "cassandra"`), PlanOnly: true, ExpectError: regexp.MustCompile(strings.ReplaceAll(`value must be one of`, " ", `\s+`))},
		},
	})
}
