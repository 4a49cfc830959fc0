package provider

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
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

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/acme"
	"github.com/mailstack/terraform-provider-mailstack/runtime/acme/pebbletest"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
)

// The acme source against a real ACME CA: Pebble, with
// pebble-challtestsrv resolving every name to 127.0.0.1, validating the
// challenges on the runtime's challenge listener (package pebbletest).

// acmeStack is a server, a PKCS#12 keystore holding an entry of its own
// ("other"), the ACME entry "james" in the same file, and an implicit-TLS
// SMTP listener serving it.
type acmeStack struct {
	e      *accEnv
	p      *pebbletest.Pebble
	ksPath string
	smtps  int
	// password is the keystore's; keyAlgorithm the ACME entry's key.
	password, keyAlgorithm string
}

// acmeSettings are the acme block's variable part.
type acmeSettings struct {
	domains          string // HCL list
	directoryURL     string
	challenge        string
	challengeAddress string
	extra            string // more lines in the acme block
}

func (s *acmeStack) http01() acmeSettings {
	return acmeSettings{domains: `["mail.example.test"]`, directoryURL: s.p.DirectoryURL, challenge: acme.ChallengeHTTP01,
		challengeAddress: pebbletest.Addr(s.p.HTTPPort)}
}

// config renders the stack; expectFingerprint makes the listener wait for
// the keystore's certificate (off when renewals may race the test).
func (s *acmeStack) config(a acmeSettings, expectFingerprint bool, more string) string {
	expected := ""
	password, keyAlgorithm := cmpOr(s.password, "changeit"), cmpOr(s.keyAlgorithm, "ECDSA")
	if expectFingerprint {
		expected = "expected_fingerprint_sha256 = mailstack_keystore.mx.fingerprint_sha256"
	}
	return s.e.ProviderBlock() + fmt.Sprintf(`
resource "mailstack_server" "mx" {
  hostname = "mail.example.test"
  domains  = ["example.test"]
}

resource "mailstack_keystore" "other" {
  path     = %[1]q
  password = %[11]q
  type     = "PKCS12"
  alias    = "other"
  self_signed {
    subject {
      common_name = "other.example.test"
    }
  }
}

resource "mailstack_keystore" "mx" {
  path     = mailstack_keystore.other.path
  password = %[11]q
  type     = "PKCS12"
  alias    = "james"
  key {
    algorithm = %[12]q
  }
  acme {
    server_id           = mailstack_server.mx.id
    domains             = %[2]s
    email               = "postmaster@example.test"
    directory_url       = %[3]q
    ca_certificates_pem = %[4]q
    challenge           = %[5]q
    challenge_address   = %[6]q
    %[9]s
  }
}

resource "mailstack_listener" "smtps" {
  server_id = mailstack_server.mx.id
  protocol  = "smtp"
  address   = "127.0.0.1"
  port      = %[7]d
  tls {
    mode              = "implicit"
    keystore_path     = mailstack_keystore.mx.path
    keystore_password = %[11]q
    alias             = "james"
    %[8]s
  }
}
%[10]s`, s.ksPath, a.domains, a.directoryURL, s.p.HTTPSRootPEM, a.challenge, a.challengeAddress, s.smtps, expected, a.extra, more,
		password, keyAlgorithm)
}

// badKeystore is a second ACME entry in the same file, for the error
// cases: the runtime must refuse it and leave the file as it was.
func (s *acmeStack) badKeystore(a acmeSettings) string {
	return fmt.Sprintf(`
resource "mailstack_keystore" "bad" {
  path     = mailstack_keystore.mx.path
  password = mailstack_keystore.mx.password
  type     = "PKCS12"
  alias    = "bad"
  acme {
    server_id           = mailstack_server.mx.id
    domains             = %s
    directory_url       = %q
    ca_certificates_pem = %q
    challenge           = %q
    challenge_address   = %q
  }
}
`, a.domains, a.directoryURL, s.p.HTTPSRootPEM, a.challenge, a.challengeAddress)
}

// served returns the certificate chain the listener serves for name,
// verified against the Pebble root.
func (s *acmeStack) served(name string, roots *x509.CertPool) ([]*x509.Certificate, error) {
	c, err := tls.Dial("tcp", pebbletest.Addr(s.smtps), &tls.Config{ServerName: name, RootCAs: roots})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates, nil
}

func TestAccKeystore_acme(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	p := pebbletest.Start(t, pebbletest.Options{Blocklist: []string{"blocked.example.test"}})
	s := &acmeStack{e: e, p: p, ksPath: e.Path("mail.p12"), smtps: e.FreePort()}
	roots, rootPEM := p.IssuerRoots(t)
	rootFile := e.Path("pebble-root.pem")
	writeTestFile(t, rootFile, rootPEM)
	closed := e.FreePort()

	httpCfg := s.http01()
	alpnCfg := acmeSettings{domains: `["mail.example.test", "smtp.example.test"]`, directoryURL: p.DirectoryURL,
		challenge: acme.ChallengeTLSALPN01, challengeAddress: pebbletest.Addr(p.TLSPort)}
	var first string // fingerprint issued over http-01
	snap := newSnapshot(t)
	runtimeID := acme.IDFor(s.ksPath, "james")
	moved := *s
	moved.password, moved.keyAlgorithm = "n3w-secret", "RSA"

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{
			{
				// Plan-time errors: the runtime's own rules, before
				// anything exists.
				Config:      s.config(acmeSettings{domains: `["*.example.test"]`, directoryURL: p.DirectoryURL, challenge: "http-01", challengeAddress: ":80"}, true, ""),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid ACME Settings.*wildcard names need the dns-01\s+challenge`),
			},
			{
				Config:      strings.Replace(s.config(httpCfg, true, ""), `alias    = "james"`, "alias = \"james\"\n  key_password = \"other\"", 1),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`Key Password Not Supported With ACME`),
			},
			{
				// Issuance over http-01, into a PKCS#12 file that holds
				// another entry.
				Config: s.config(httpCfg, true, ""),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("mailstack_keystore.mx", tfjsonpath.New("acme").AtSliceIndex(0).AtMapKey("renewing"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue("mailstack_keystore.mx", tfjsonpath.New("key").AtMapKey("algorithm"), knownvalue.StringExact("ECDSA")),
					statecheck.CompareValuePairs("mailstack_listener.smtps", tfjsonpath.New("served_fingerprint_sha256"),
						"mailstack_keystore.mx", tfjsonpath.New("fingerprint_sha256"), compare.ValuesSame()),
				},
				Check: func(st *terraform.State) error {
					ks := st.RootModule().Resources["mailstack_keystore.mx"].Primary.Attributes
					first = ks["fingerprint_sha256"]
					out := runTool(t, "keytool", "-list", "-v", "-keystore", s.ksPath, "-storetype", "PKCS12", "-storepass", "changeit")
					for _, want := range []string{"Alias name: james", "Alias name: other", "DNSName: mail.example.test",
						"Issuer: CN=Pebble Intermediate CA", "Certificate chain length: 2", "SHA256: " + first} {
						if !strings.Contains(out, want) {
							return fmt.Errorf("keytool -list -v does not show %q:\n%s", want, out)
						}
					}
					// A mail client no one here wrote verifies the served
					// chain against Pebble's root.
					sc := runToolInput(t, "QUIT\r\n", "openssl", "s_client", "-ign_eof", "-connect", pebbletest.Addr(s.smtps), "-servername", "mail.example.test",
						"-CAfile", rootFile, "-verify_return_error", "-verify_hostname", "mail.example.test")
					if !strings.Contains(sc, "Verify return code: 0 (ok)") || !strings.Contains(sc, "220 mail.example.test ESMTP") {
						return fmt.Errorf("openssl s_client does not verify the ACME certificate and get the greeting:\n%s", sc)
					}
					if !strings.Contains(sc, strings.TrimSpace(ks["certificate_pem"])[len("-----BEGIN CERTIFICATE-----"):][:64]) {
						return fmt.Errorf("openssl s_client shows another certificate than the keystore's:\n%s", sc)
					}
					return nil
				},
			},
			{
				// tls-alpn-01 and one more name: a new certificate, in place.
				Config: s.config(alpnCfg, true, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("mailstack_keystore.mx", plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue("mailstack_keystore.mx", tfjsonpath.New("fingerprint_sha256")),
				}},
				Check: func(st *terraform.State) error {
					fp := st.RootModule().Resources["mailstack_keystore.mx"].Primary.Attributes["fingerprint_sha256"]
					if fp == first {
						return fmt.Errorf("the certificate was not renewed for the new domains")
					}
					for _, name := range []string{"mail.example.test", "smtp.example.test"} {
						chain, err := s.served(name, roots)
						if err != nil {
							return fmt.Errorf("%s: %v", name, err)
						}
						if got := keystore.Fingerprint(chain[0]); got != fp {
							return fmt.Errorf("%s: served %s, want %s", name, got, fp)
						}
					}
					snap.Take(s.ksPath)
					return nil
				},
			},
			{
				// The runtime forgot the keystore behind Terraform's back:
				// plan shows the repair, apply puts it back without a new
				// certificate (the runtime's cached one is current).
				PreConfig: func() {
					if err := e.client().DeleteACME(context.Background(), runtimeID); err != nil {
						t.Fatal(err)
					}
				},
				Config: s.config(alpnCfg, true, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("mailstack_keystore.mx", plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue("mailstack_keystore.mx", tfjsonpath.New("acme").AtSliceIndex(0).AtMapKey("renewing"), knownvalue.Bool(true)),
				}},
				Check: func(*terraform.State) error {
					obj, err := e.client().ACME(context.Background(), runtimeID)
					if err != nil {
						return fmt.Errorf("the runtime does not keep the keystore again: %v", err)
					}
					if obj.Status.NextRenewal.IsZero() || obj.Status.LastError != "" {
						return fmt.Errorf("status after the repair: %+v", obj.Status)
					}
					snap.Take(s.ksPath)
					return nil
				},
			},
			{
				// A new store password and key kind, in place: the file is
				// re-encoded with the password, then the runtime orders a
				// certificate for an RSA key and keeps renewing.
				Config: moved.config(alpnCfg, true, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("mailstack_keystore.mx", plancheck.ResourceActionUpdate),
					plancheck.ExpectResourceAction("mailstack_keystore.other", plancheck.ResourceActionUpdate),
				}},
				Check: func(*terraform.State) error {
					out := runTool(t, "keytool", "-list", "-v", "-keystore", s.ksPath, "-storetype", "PKCS12", "-storepass", moved.password, "-alias", "james")
					if !strings.Contains(out, "Subject Public Key Algorithm: 2048-bit RSA key") {
						return fmt.Errorf("keytool does not show an RSA key for james:\n%s", out)
					}
					chain, err := s.served("smtp.example.test", roots)
					if err != nil {
						return err
					}
					if _, ok := chain[0].PublicKey.(*rsa.PublicKey); !ok {
						return fmt.Errorf("the listener serves a %T key", chain[0].PublicKey)
					}
					obj, err := e.client().ACME(context.Background(), runtimeID)
					if err != nil || obj.Status.LastError != "" {
						return fmt.Errorf("runtime after the password change: %+v, %v", obj.Status, err)
					}
					snap.Take(s.ksPath)
					return nil
				},
			},
			// What the CA or the network refuses fails the apply with
			// the reason and leaves the keystore file byte for byte.
			{
				PreConfig: snap.Unchanged,
				Config: moved.config(alpnCfg, true, moved.badKeystore(acmeSettings{domains: `["mail.example.test"]`,
					directoryURL: "https://" + pebbletest.Addr(closed) + "/dir", challenge: "http-01", challengeAddress: pebbletest.Addr(p.HTTPPort)})),
				ExpectError: errorNaming("ACME directory https://"+pebbletest.Addr(closed)+"/dir:", s.ksPath, "bad"),
			},
			{
				PreConfig: snap.Unchanged,
				Config: moved.config(alpnCfg, true, moved.badKeystore(acmeSettings{domains: `["mail.example.test"]`,
					directoryURL: p.DirectoryURL, challenge: "http-01", challengeAddress: pebbletest.Addr(closed)})),
				ExpectError: errorNaming("urn:ietf:params:acme:error:connection", s.ksPath, "bad"),
			},
			{
				PreConfig: snap.Unchanged,
				Config: moved.config(alpnCfg, true, moved.badKeystore(acmeSettings{domains: `["blocked.example.test"]`,
					directoryURL: p.DirectoryURL, challenge: "http-01", challengeAddress: pebbletest.Addr(p.HTTPPort)})),
				ExpectError: errorNaming("urn:ietf:params:acme:error:rejectedIdentifier", s.ksPath, "bad"),
			},
			{
				// A server whose runtime does not exist.
				PreConfig: snap.Unchanged,
				Config: moved.config(alpnCfg, true, strings.Replace(moved.badKeystore(httpCfg),
					"mailstack_server.mx.id", `"nosuch"`, 1)),
				ExpectError: regexp.MustCompile(`(?s)Mail Runtime Not Answering.*Keystore file:.*Alias: bad.*mailstack_server\s+"nosuch"`),
			},
			{
				PreConfig: snap.Unchanged,
				Config:    moved.config(alpnCfg, true, ""),
				PlanOnly:  true,
			},
		},
		CheckDestroy: func(*terraform.State) error {
			if _, err := os.Stat(s.ksPath); !os.IsNotExist(err) {
				return fmt.Errorf("keystore file after destroy: %v", err)
			}
			if _, err := os.Stat(filepath.Join(e.Path("default"), acme.Dir, runtimeID)); !os.IsNotExist(err) {
				return fmt.Errorf("ACME state after destroy: %v", err)
			}
			return nil
		},
	})
}

// A certificate the runtime renews behind Terraform's back reaches the
// listener with no restart and no dropped session, refreshes into the
// state, and leaves the plan empty.
func TestAccKeystore_acmeRenewal(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	p := pebbletest.Start(t, pebbletest.Options{Validity: 30 * time.Second})
	s := &acmeStack{e: e, p: p, ksPath: e.Path("mail.p12"), smtps: e.FreePort()}
	roots, _ := p.IssuerRoots(t)
	cfg := s.http01()
	cfg.extra = "renew_before_days = 1" // longer than the lifetime: renewed a third into it
	runtimeID := acme.IDFor(s.ksPath, "james")
	var first string
	var servePID int
	var session *tls.Conn

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{
			{
				Config: s.config(cfg, false, ""),
				Check: func(st *terraform.State) error {
					first = st.RootModule().Resources["mailstack_keystore.mx"].Primary.Attributes["fingerprint_sha256"]
					status, err := e.client().Status(context.Background())
					if err != nil {
						return err
					}
					servePID = status.PID
					session, err = tls.Dial("tcp", pebbletest.Addr(s.smtps), &tls.Config{ServerName: "mail.example.test", RootCAs: roots})
					if err != nil {
						return err
					}
					return smtpExchange(session, "", "220 ")
				},
			},
			{
				PreConfig: func() {
					// The renewal is the runtime's own event, at the time
					// it schedules (status next_renewal, later after a
					// failed attempt): wait for its status to show it,
					// HangGuard past that time at most, then for the
					// listener to serve it. No fixed window: the first
					// step may end before or after the renewal, and a
					// loaded machine slows both.
					ctx := context.Background()
					var st acme.Status
					for {
						obj, err := e.client().ACME(ctx, runtimeID)
						if err != nil {
							t.Fatalf("the runtime's ACME status: %v", err)
						}
						if st = obj.Status; st.Fingerprint != first {
							break
						}
						if due := st.NextRenewal.Add(testutil.HangGuard); time.Now().After(due) {
							t.Fatalf("no renewal by %s (next_renewal + %s): %+v", due.Format(time.RFC3339), testutil.HangGuard, st)
						}
						time.Sleep(50 * time.Millisecond)
					}
					err := waitFor(testutil.HangGuard, func() error {
						chain, err := s.served("mail.example.test", roots)
						if err != nil {
							return err
						}
						if keystore.Fingerprint(chain[0]) == first {
							return fmt.Errorf("the listener still serves %s; the runtime renewed: %+v", first, st)
						}
						return nil
					})
					if err != nil {
						t.Fatalf("the renewal did not reach the listener: %v", err)
					}
				},
				// Refresh brings the renewed certificate into the state
				// with nothing to do.
				Config:           s.config(cfg, false, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check: func(st *terraform.State) error {
					defer session.Close()
					if fp := st.RootModule().Resources["mailstack_keystore.mx"].Primary.Attributes["fingerprint_sha256"]; fp == first {
						return fmt.Errorf("state still has the first certificate %s", first)
					}
					if err := smtpExchange(session, "NOOP\r\n", "250 "); err != nil {
						return fmt.Errorf("the session opened before the renewal: %v", err)
					}
					status, err := e.client().Status(context.Background())
					if err != nil {
						return err
					}
					if status.PID != servePID {
						return fmt.Errorf("the runtime restarted (pid %d, was %d)", status.PID, servePID)
					}
					return nil
				},
			},
		},
	})
}

// client is the control API of the test's default server.
func (e *accEnv) client() *control.Client { return statedir.Local(e.Path("default")).Client() }

// smtpExchange writes cmd (if any) and reads one reply line, which must
// start with want.
func smtpExchange(c *tls.Conn, cmd, want string) error {
	if err := c.SetDeadline(time.Now().Add(testutil.HangGuard)); err != nil {
		return err
	}
	if cmd != "" {
		if _, err := c.Write([]byte(cmd)); err != nil {
			return err
		}
	}
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if line := string(buf[:n]); !strings.HasPrefix(line, want) {
		return fmt.Errorf("got %q, want %q...", line, want)
	}
	return nil
}

// TestAccKeystore_acmeRepairsLostConfig: the runtime loses config.json
// and is killed, then also its ACME record (acme/<id>/: saved settings,
// account key, cached certificate). Each time plan shows the keystore
// repaired in place with the certificate it has, and apply has the
// runtime keep renewing it without asking the CA for another one while
// the keystore holds a current certificate for the settings. Destroy
// works from the broken host.
func TestAccKeystore_acmeRepairsLostConfig(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	p := pebbletest.Start(t, pebbletest.Options{})
	s := &acmeStack{e: e, p: p, ksPath: e.Path("mail.p12"), smtps: e.FreePort()}
	roots, _ := p.IssuerRoots(t)
	cfg := s.config(s.http01(), true, "")
	runtimeID := acme.IDFor(s.ksPath, "james")
	fingerprint := tfjsonpath.New("fingerprint_sha256")
	renewing := tfjsonpath.New("acme").AtSliceIndex(0).AtMapKey("renewing")
	sameCertificate := statecheck.CompareValue(compare.ValuesSame())
	var issued acme.Status // the runtime's status after the first issuance
	repairPlan := resource.ConfigPlanChecks{
		PreApply: []plancheck.PlanCheck{
			plancheck.ExpectResourceAction("mailstack_server.mx", plancheck.ResourceActionUpdate),
			plancheck.ExpectResourceAction("mailstack_keystore.mx", plancheck.ResourceActionUpdate),
			plancheck.ExpectKnownValue("mailstack_keystore.mx", renewing, knownvalue.Bool(true)),
			plancheck.ExpectKnownValue("mailstack_keystore.mx", fingerprint, knownvalue.StringRegexp(regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`))),
		},
		PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
	}
	// renewsWithoutOrder checks that the runtime keeps the keystore again,
	// with the certificate it had and no order placed since: lastAttempt
	// is when it last asked the CA (zero once its record was lost).
	renewsWithoutOrder := func(lastAttempt *time.Time) resource.TestCheckFunc {
		return func(st *terraform.State) error {
			obj, err := e.client().ACME(context.Background(), runtimeID)
			if err != nil {
				return fmt.Errorf("the runtime does not keep the keystore again: %v", err)
			}
			if obj.Status.Fingerprint != issued.Fingerprint || !obj.Status.LastAttempt.Equal(*lastAttempt) ||
				obj.Status.LastError != "" || !obj.Status.NextRenewal.Equal(issued.NextRenewal) {
				return fmt.Errorf("status after the repair: %+v; want the certificate %s, renewed at %s, and no order since %s",
					obj.Status, issued.Fingerprint, issued.NextRenewal, *lastAttempt)
			}
			chain, err := s.served("mail.example.test", roots)
			if err != nil {
				return err
			}
			if got := keystore.Fingerprint(chain[0]); got != issued.Fingerprint {
				return fmt.Errorf("the listener serves %s, want %s", got, issued.Fingerprint)
			}
			return nil
		}
	}
	var never time.Time

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{
			{
				Config:            cfg,
				ConfigStateChecks: []statecheck.StateCheck{sameCertificate.AddStateValue("mailstack_keystore.mx", fingerprint)},
				Check: func(*terraform.State) error {
					obj, err := e.client().ACME(context.Background(), runtimeID)
					issued = obj.Status
					return err
				},
			},
			{
				// config.json lost, the ACME record intact.
				PreConfig:         func() { breakConfig(t, e.Path("default")) },
				Config:            cfg,
				ConfigPlanChecks:  repairPlan,
				ConfigStateChecks: []statecheck.StateCheck{sameCertificate.AddStateValue("mailstack_keystore.mx", fingerprint)},
				Check:             func(st *terraform.State) error { return renewsWithoutOrder(&issued.LastAttempt)(st) },
			},
			{
				// The ACME record lost as well; the keystore intact.
				PreConfig: func() {
					breakConfig(t, e.Path("default"))
					if err := os.RemoveAll(filepath.Join(e.Path("default"), acme.Dir, runtimeID)); err != nil {
						t.Fatal(err)
					}
				},
				Config:            cfg,
				ConfigPlanChecks:  repairPlan,
				ConfigStateChecks: []statecheck.StateCheck{sameCertificate.AddStateValue("mailstack_keystore.mx", fingerprint)},
				Check:             renewsWithoutOrder(&never),
			},
			{
				// Broken again and left so: destroy works from there.
				PreConfig:          func() { breakConfig(t, e.Path("default")) },
				Config:             cfg,
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
		},
		CheckDestroy: func(*terraform.State) error {
			if _, err := os.Stat(filepath.Join(e.Path("default"), acme.Dir, runtimeID)); !os.IsNotExist(err) {
				return fmt.Errorf("ACME record after destroy: %v", err)
			}
			return portsClosed(s.smtps, p.HTTPPort)
		},
	})
}
