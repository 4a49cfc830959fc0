package provider

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/internal/probe"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	mailruntime "github.com/mailstack/terraform-provider-mailstack/runtime"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
	"github.com/mailstack/terraform-provider-mailstack/runtime/supervise"
)

// stack is the full-stack test's world: ports and the files it watches.
type stack struct {
	e                                   *accEnv
	ksPath                              string
	smtp, submission, imap, pop3, smtps int
	supervisorPIDs, servePIDs           []int
	sent                                []string
}

func newStack(e *accEnv) *stack {
	return &stack{e: e, ksPath: e.Path("mx.jks"),
		smtp: e.FreePort(), submission: e.FreePort(), imap: e.FreePort(), pop3: e.FreePort(), smtps: e.FreePort()}
}

func (s *stack) ports() []int { return []int{s.smtp, s.submission, s.imap, s.pop3, s.smtps} }
func (s *stack) dir() string  { return s.e.Path("default") }

// config is a keystore, a server, listeners for all four protocols (IMAP
// in imapMode), a user, and a TLS probe of the IMAP port checked in a
// check block.
func (s *stack) config(imapMode, extra string) string {
	return s.e.SourcedProviderBlock() + fmt.Sprintf(`
resource "mailstack_keystore" "mx" {
  path     = %[1]q
  password = "changeit"
  alias    = "james"
  key {
    algorithm   = "ECDSA"
    ecdsa_curve = "P256"
  }
  self_signed {
    subject {
      common_name  = "mail.example.test"
      organization = "Example"
      country      = "US"
    }
    dns_names     = ["mail.example.test"]
    validity_days = 90
  }
}

resource "mailstack_server" "mx" {
  hostname = "mail.example.test"
  domains  = ["example.test"]
}

%[9]s
# Without expected_fingerprint_sha256: imported in the test.
resource "mailstack_listener" "pop3" {
  server_id = mailstack_server.mx.id
  protocol  = "pop3"
  address   = "127.0.0.1"
  port      = %[7]d
  tls {
    mode              = "starttls"
    keystore_path     = mailstack_keystore.mx.path
    keystore_password = "changeit"
  }
}

resource "mailstack_user" "alice" {
  server_id   = mailstack_server.mx.id
  address     = "alice@example.test"
  password    = "alice-secret-1"
  quota_bytes = 10485760
}

data "mailstack_tls_probe" "imap" {
  address             = "127.0.0.1:${mailstack_listener.imap.port}"
  protocol            = "imap"
  mode                = mailstack_listener.imap.tls.mode
  server_name         = "mail.example.test"
  ca_certificates_pem = mailstack_keystore.mx.certificate_pem
}

check "imap_serves_the_keystore_certificate" {
  assert {
    condition     = data.mailstack_tls_probe.imap.verified && data.mailstack_tls_probe.imap.fingerprint_sha256 == mailstack_keystore.mx.fingerprint_sha256
    error_message = "IMAP serves ${data.mailstack_tls_probe.imap.fingerprint_sha256}: ${data.mailstack_tls_probe.imap.verify_error}"
  }
}
%[8]s`, s.ksPath, s.smtp, s.submission, imapMode, s.imap, s.smtps, s.pop3, extra, s.listeners(imapMode))
}

// listeners renders the listeners that expect the keystore's certificate
// (one resource each: the test harness's state shim cannot index for_each).
func (s *stack) listeners(imapMode string) string {
	var b strings.Builder
	for _, l := range []struct {
		name, protocol, mode string
		port                 int
	}{
		{"smtp", "smtp", "starttls", s.smtp},
		{"submission", "submission", "starttls", s.submission},
		{"imap", "imap", imapMode, s.imap},
		{"smtps", "smtp", "implicit", s.smtps},
	} {
		fmt.Fprintf(&b, `
resource "mailstack_listener" %[1]q {
  server_id = mailstack_server.mx.id
  protocol  = %[2]q
  address   = "127.0.0.1"
  port      = %[4]d
  tls {
    mode                        = %[3]q
    keystore_path               = mailstack_keystore.mx.path
    keystore_password           = "changeit"
    expected_fingerprint_sha256 = mailstack_keystore.mx.fingerprint_sha256
  }
}
`, l.name, l.protocol, l.mode, l.port)
	}
	return b.String()
}

// pids records the live supervisor and runtime, for the destroy check.
func (s *stack) pids() (sup, serve int, err error) {
	if sup, err = hostLocal.ReadPID(filepath.Join(s.dir(), supervise.PIDFile)); err != nil {
		return
	}
	if serve, err = hostLocal.ReadPID(filepath.Join(s.dir(), statedir.PIDFile)); err != nil {
		return
	}
	if !hostLocal.Alive(sup) || !hostLocal.Alive(serve) {
		err = fmt.Errorf("supervisor %d or runtime %d is not running", sup, serve)
	}
	s.supervisorPIDs, s.servePIDs = append(s.supervisorPIDs, sup), append(s.servePIDs, serve)
	return
}

// mailRoundTrip sends a message with smtplib over the STARTTLS SMTP port
// and reads it back with imaplib and poplib.
func (s *stack) mailRoundTrip(st *terraform.State, imap bool) error {
	ca := st.RootModule().Resources["mailstack_keystore.mx"].Primary.Attributes["certificate_pem"]
	token := fmt.Sprintf("token-%d", time.Now().UnixNano())
	if _, err := s.e.mailClient("send", s.smtp, ca, "alice@example.test", "", token); err != nil {
		return err
	}
	s.sent = append(s.sent, token)
	if imap {
		out, err := s.e.mailClient("imap", s.imap, ca, "alice@example.test", "alice-secret-1", token)
		if err != nil {
			return err
		}
		if !strings.Contains(out, "hello from smtplib "+token) {
			return fmt.Errorf("imaplib fetched something else:\n%s", out)
		}
	}
	out, err := s.e.mailClient("pop3", s.pop3, ca, "alice@example.test", "alice-secret-1", token)
	if err != nil {
		return err
	}
	if !strings.Contains(out, "hello from smtplib "+token) {
		return fmt.Errorf("poplib retrieved something else:\n%s", out)
	}
	return nil
}

func (s *stack) client() *control.Client { return s.e.client() }

// servesAgain waits until the runtime answers with a pid other than old
// and every port accepts connections.
func (s *stack) servesAgain(old int) error {
	return waitFor(testutil.HangGuard, func() error {
		st, err := s.client().Status(context.Background())
		if err != nil {
			return err
		}
		if st.PID == old {
			return fmt.Errorf("runtime %d still answers", old)
		}
		for _, p := range s.ports() {
			if err := portsClosed(p); err == nil {
				return fmt.Errorf("port %d does not accept connections", p)
			}
		}
		return nil
	})
}

func TestAccStack_fullLifecycle(t *testing.T) {
	e := newAccEnv(t)
	s := newStack(e)
	stateChecks := []statecheck.StateCheck{
		statecheck.ExpectKnownValue("mailstack_server.mx", tfjsonpath.New("running"), knownvalue.Bool(true)),
		statecheck.ExpectKnownValue("mailstack_server.mx", tfjsonpath.New("supervisor"), knownvalue.StringExact("auto")),
		statecheck.ExpectKnownValue("mailstack_listener.pop3", tfjsonpath.New("bound"), knownvalue.Bool(true)),
		statecheck.CompareValuePairs("mailstack_listener.smtps", tfjsonpath.New("served_fingerprint_sha256"),
			"mailstack_keystore.mx", tfjsonpath.New("fingerprint_sha256"), compare.ValuesSame()),
		statecheck.CompareValuePairs("data.mailstack_tls_probe.imap", tfjsonpath.New("fingerprint_sha256"),
			"mailstack_keystore.mx", tfjsonpath.New("fingerprint_sha256"), compare.ValuesSame()),
		statecheck.ExpectKnownValue("data.mailstack_tls_probe.imap", tfjsonpath.New("verified"), knownvalue.Bool(true)),
		statecheck.ExpectKnownValue("mailstack_user.alice", tfjsonpath.New("id"), knownvalue.StringExact("default/alice@example.test")),
	}
	emptyAfterApply := resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}
	var killedServe int
	var ksFingerprintOnDisk string

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		CheckDestroy: func(*terraform.State) error {
			if err := portsClosed(s.ports()...); err != nil {
				return fmt.Errorf("after destroy: %w", err)
			}
			for _, pid := range append(s.supervisorPIDs, s.servePIDs...) {
				if hostLocal.Alive(pid) {
					return fmt.Errorf("after destroy, pid %d still runs", pid)
				}
			}
			if pids := processesUnder(e.StateDir); len(pids) > 0 {
				return fmt.Errorf("after destroy, processes %v still run in %s", pids, e.StateDir)
			}
			if _, err := os.Stat(filepath.Join(s.dir(), mailruntime.StoreDir)); err != nil {
				return fmt.Errorf("destroy deleted the mail (delete_mail_on_destroy is false): %v", err)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				// Full stack; mail goes in over SMTP STARTTLS and comes out
				// over IMAP and POP3.
				Config: s.config("starttls", ""),
				ConfigStateChecks: append(stateChecks,
					statecheck.ExpectKnownValue("data.mailstack_tls_probe.imap", tfjsonpath.New("greeting"), knownvalue.StringRegexp(regexp.MustCompile(`^\* OK`))),
					// Without expected_fingerprint_sha256 too, create waits
					// for the keystore's certificate.
					statecheck.CompareValuePairs("mailstack_listener.pop3", tfjsonpath.New("served_fingerprint_sha256"),
						"mailstack_keystore.mx", tfjsonpath.New("fingerprint_sha256"), compare.ValuesSame())),
				ConfigPlanChecks: emptyAfterApply,
				Check: func(st *terraform.State) error {
					exe, err := host.FileSHA256(runtimeExe)
					if err != nil {
						return err
					}
					if got := st.RootModule().Resources["mailstack_server.mx"].Primary.Attributes["executable_sha256"]; got != exe {
						return fmt.Errorf("executable_sha256 = %s, want the runtime build's %s", got, exe)
					}
					if _, _, err := s.pids(); err != nil {
						return err
					}
					return s.mailRoundTrip(st, true)
				},
			},
			{
				// kill -9 of the runtime: the supervisor brings it back, and
				// nothing is left for Terraform to do.
				PreConfig: func() {
					_, serve, err := s.pids()
					if err != nil {
						t.Fatal(err)
					}
					killedServe = serve
					if err := syscall.Kill(serve, syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
					if err := s.servesAgain(serve); err != nil {
						t.Fatalf("the supervisor did not bring the runtime back after kill -9: %v", err)
					}
				},
				Config: s.config("starttls", ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: func(st *terraform.State) error {
					status, err := s.client().Status(context.Background())
					if err != nil {
						return err
					}
					sup := status.Supervisor
					if sup == nil || sup.Restarts != 1 || sup.LastExit == nil || sup.LastExit.Signal != "killed" {
						return fmt.Errorf("status after kill -9 of %d: supervisor %+v, want one restart after signal killed", killedServe, sup)
					}
					if _, _, err := s.pids(); err != nil {
						return err
					}
					return s.mailRoundTrip(st, true)
				},
			},
			{
				// STARTTLS -> implicit TLS on IMAP: in place, live when apply
				// returns (the probe in the same apply sees it).
				Config: s.config("implicit", ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(`mailstack_listener.imap`, plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: append(stateChecks,
					statecheck.ExpectKnownValue("data.mailstack_tls_probe.imap", tfjsonpath.New("tls_version"), knownvalue.StringExact("TLS 1.3"))),
				Check: func(st *terraform.State) error {
					addr := fmt.Sprintf("127.0.0.1:%d", s.imap)
					if err := checkNoPlainGreeting(addr); err != nil {
						return err
					}
					res, err := probe.Probe(context.Background(), probe.Options{Address: addr, Protocol: probe.IMAP, Mode: probe.Implicit, Roots: x509.NewCertPool()})
					if err != nil {
						return err
					}
					if !strings.HasPrefix(res.Greeting, "* OK") {
						return fmt.Errorf("implicit-TLS IMAP greeting %q", res.Greeting)
					}
					return nil
				},
			},
			{
				// The runtime stopped behind Terraform's back (supervisor and
				// runtime killed): plan shows it, apply repairs it.
				PreConfig: func() {
					sup, serve, err := s.pids()
					if err != nil {
						t.Fatal(err)
					}
					syscall.Kill(sup, syscall.SIGKILL)
					syscall.Kill(serve, syscall.SIGKILL)
					if err := waitFor(testutil.HangGuard, func() error { return portsClosed(s.ports()...) }); err != nil {
						t.Fatal(err)
					}
				},
				Config: s.config("implicit", ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("mailstack_server.mx", plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue("mailstack_server.mx", tfjsonpath.New("running"), knownvalue.Bool(true)),
						plancheck.ExpectResourceAction("mailstack_listener.pop3", plancheck.ResourceActionUpdate),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: stateChecks,
				Check: func(st *terraform.State) error {
					if _, _, err := s.pids(); err != nil {
						return err
					}
					if err := s.mailRoundTrip(st, false); err != nil {
						return err
					}
					// Mail accepted before the crash is still there.
					ca := st.RootModule().Resources["mailstack_keystore.mx"].Primary.Attributes["certificate_pem"]
					_, err := s.e.mailClient("pop3", s.pop3, ca, "alice@example.test", "alice-secret-1", s.sent[0])
					return err
				},
			},
			{
				// A listener deleted through the control API and a user
				// deleted at the runtime: plan re-creates both.
				PreConfig: func() {
					ctx := context.Background()
					id := s.pop3ID(t)
					if err := s.client().DeleteListener(ctx, id); err != nil {
						t.Fatal(err)
					}
					if err := s.client().DeleteUser(ctx, "alice@example.test"); err != nil {
						t.Fatal(err)
					}
				},
				Config: s.config("implicit", ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("mailstack_listener.pop3", plancheck.ResourceActionCreate),
						plancheck.ExpectResourceAction("mailstack_user.alice", plancheck.ResourceActionCreate),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: stateChecks,
				Check:             func(st *terraform.State) error { return s.mailRoundTrip(st, false) },
			},
			{
				// A keystore replaced on disk: the runtime serves the new
				// certificate by itself, plan shows the drift, and
				// apply puts Terraform's certificate back on every port.
				PreConfig: func() {
					ksFingerprintOnDisk = replaceKeystore(t, s.ksPath)
					err := waitFor(testutil.HangGuard, func() error {
						obj, err := s.client().Listener(context.Background(), s.pop3ID(t))
						if err != nil {
							return err
						}
						if obj.Status.CertificateFingerprint != ksFingerprintOnDisk {
							return fmt.Errorf("pop3 serves %s, not the keystore now on disk (%s)", obj.Status.CertificateFingerprint, ksFingerprintOnDisk)
						}
						return nil
					})
					if err != nil {
						t.Fatal(err)
					}
				},
				Config: s.config("implicit", ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						// How the keystore resource repairs its entry (reissue
						// or replace) is its own business; the listeners follow.
						plancheck.ExpectNonEmptyPlan(),
						plancheck.ExpectResourceAction("mailstack_listener.smtps", plancheck.ResourceActionUpdate),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: stateChecks,
				Check: func(st *terraform.State) error {
					fp := st.RootModule().Resources["mailstack_keystore.mx"].Primary.Attributes["fingerprint_sha256"]
					if fp == ksFingerprintOnDisk {
						return fmt.Errorf("apply kept the certificate put on disk behind Terraform's back")
					}
					return checkTLSGreeting(fmt.Sprintf("127.0.0.1:%d", s.smtps), "220 mail.example.test", fp)
				},
			},
			{
				// Another listener of the server on a port in use: refused
				// at plan time, naming both listeners and the address.
				Config: s.config("implicit", fmt.Sprintf(`
resource "mailstack_listener" "clash" {
  server_id = mailstack_server.mx.id
  protocol  = "imap"
  address   = "0.0.0.0"
  port      = %d
  tls {
    mode = "none"
  }
}`, s.pop3)),
				ExpectError: regexp.MustCompile(`Port Clash(.|\n)*0\.0\.0\.0:` + fmt.Sprint(s.pop3) + `(.|\n)*listener\s+"default/l-[0-9a-f]+"(.|\n)*127\.0\.0\.1:` + fmt.Sprint(s.pop3)),
			},
			{
				// The refused plan left nothing to do (and this apply
				// records what a refresh reads, which the failed plan did
				// not, for the imports below).
				Config:           s.config("implicit", ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			// Import each runtime object by its id; plan after import is empty.
			{
				Config:            s.config("implicit", ""),
				ResourceName:      "mailstack_server.mx",
				ImportState:       true,
				ImportStateVerify: true,
				ImportStateId:     "default",
			},
			{
				Config:          s.config("implicit", ""),
				ResourceName:    "mailstack_server.mx",
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithID,
				ImportStateId:   "default",
			},
			{
				Config:            s.config("implicit", ""),
				ResourceName:      "mailstack_listener.pop3",
				ImportState:       true,
				ImportStateVerify: true,
			},
			{
				Config:          s.config("implicit", ""),
				ResourceName:    "mailstack_listener.pop3",
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithID,
			},
			{
				// The runtime keeps only a hash: the password is not imported.
				Config:                  s.config("implicit", ""),
				ResourceName:            "mailstack_user.alice",
				ImportState:             true,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"password"},
			},
		},
	})
}

// pop3ID is the runtime's id of the POP3 listener, from its config.json.
func (s *stack) pop3ID(t *testing.T) string {
	t.Helper()
	doc, err := statedir.Local(s.dir()).LoadConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for id, l := range doc.Listeners {
		if l.Port == s.pop3 {
			return id
		}
	}
	t.Fatalf("the runtime has no listener on port %d", s.pop3)
	return ""
}

// replaceKeystore writes a new key and certificate under the same alias,
// as an operator running keytool would, and returns its fingerprint.
func replaceKeystore(t *testing.T, path string) string {
	t.Helper()
	key, err := keystore.GenerateKey(keystore.KeySpec{Algorithm: "ECDSA", ECDSACurve: "P256"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := keystore.SelfSign(key, keystore.CertificateRequest{
		Subject:   keystore.Subject{CommonName: "mail.example.test", Organization: "Example", Country: "US"},
		DNSNames:  []string{"mail.example.test"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(30 * 24 * time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	ks := keystore.New(keystore.JKS)
	if err := ks.SetPrivateKeyEntry("james", key, []*x509.Certificate{cert}, nil); err != nil {
		t.Fatal(err)
	}
	data, err := ks.Encode([]byte("changeit"))
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return keystore.Fingerprint(cert)
}

// TestAccServer_upgradeInPlace: a newer provider build (another executable
// SHA-256) is planned as an in-place update of the server, which restarts
// the runtime on the new executable; mail accepted before is kept.
func TestAccServer_upgradeInPlace(t *testing.T) {
	t.Parallel()
	var env testEnv
	e := newAccEnv(t)
	port := e.FreePort()
	newer := e.Path("terraform-provider-mailstack-newer")
	config := e.ProviderBlock() + fmt.Sprintf(`
resource "mailstack_server" "mx" {
  hostname = "mail.example.test"
  domains  = ["example.test"]
}

resource "mailstack_listener" "smtp" {
  server_id = mailstack_server.mx.id
  protocol  = "smtp"
  address   = "127.0.0.1"
  port      = %d
  tls {
    mode = "none"
  }
}

resource "mailstack_user" "alice" {
  server_id = mailstack_server.mx.id
  address   = "alice@example.test"
  password  = "alice-secret-1"
}
`, port)
	dir := e.Path("default")
	client := statedir.Local(dir).Client()
	var before control.Status
	var newerSHA string
	var watch func() time.Duration

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: env.factories(),
		Steps: []resource.TestStep{
			{
				Config: config,
				Check: func(*terraform.State) error {
					var err error
					if before, err = client.Status(context.Background()); err != nil {
						return err
					}
					return sendPlain(port, "alice@example.test")
				},
			},
			{
				// A different build: the same program with bytes appended,
				// which changes its SHA-256 and nothing else.
				PreConfig: func() {
					b, err := os.ReadFile(runtimeExe)
					if err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(newer, append(b, []byte("\nnewer build\n")...), 0o755); err != nil {
						t.Fatal(err)
					}
					if newerSHA, err = host.FileSHA256(newer); err != nil {
						t.Fatal(err)
					}
					env.Set(RuntimeExecutableEnv, newer)
					watch = watchDowntime(fmt.Sprintf("127.0.0.1:%d", port))
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("mailstack_server.mx", plancheck.ResourceActionUpdate),
						plancheck.ExpectUnknownValue("mailstack_server.mx", tfjsonpath.New("version")),
						plancheck.ExpectResourceAction("mailstack_listener.smtp", plancheck.ResourceActionNoop),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: func(st *terraform.State) error {
					after, err := client.Status(context.Background())
					if err != nil {
						return err
					}
					if after.ExecutableSHA256 != newerSHA || after.PID == before.PID {
						return fmt.Errorf("after the upgrade the runtime (pid %d, was %d) runs %s, want %s", after.PID, before.PID, after.ExecutableSHA256, newerSHA)
					}
					if after.Supervisor == nil || after.Supervisor.PID == before.Supervisor.PID {
						return fmt.Errorf("the supervisor was not restarted on the new executable: %+v", after.Supervisor)
					}
					if got := st.RootModule().Resources["mailstack_server.mx"].Primary.Attributes["executable_sha256"]; got != newerSHA {
						return fmt.Errorf("state executable_sha256 = %s, want %s", got, newerSHA)
					}
					if hostLocal.Alive(before.PID) || hostLocal.Alive(before.Supervisor.PID) {
						return fmt.Errorf("the old runtime %d or supervisor %d still runs", before.PID, before.Supervisor.PID)
					}
					t.Logf("SMTP port unavailable for %s during the upgrade", watch())
					u, err := client.User(context.Background(), "alice@example.test")
					if err != nil {
						return err
					}
					if u.UsedBytes == 0 {
						return fmt.Errorf("the message accepted before the upgrade is gone")
					}
					return sendPlain(port, "alice@example.test")
				},
			},
		},
	})
}

// sendPlain delivers a short message over plain SMTP (a tls "none" port).
func sendPlain(port int, rcpt string) error {
	msg := "From: bob@remote.test\r\nTo: " + rcpt + "\r\nSubject: upgrade\r\n\r\nkept across upgrades\r\n"
	return smtp.SendMail(fmt.Sprintf("127.0.0.1:%d", port), nil, "bob@remote.test", []string{rcpt}, []byte(msg))
}

// TestAccServer_systemdSupervisorNeedsSystemd: on a host where systemd is
// not PID 1 (these test machines), supervisor = "systemd" fails at plan;
// "auto" picks the builtin supervisor (the other tests).
func TestAccServer_systemdSupervisorNeedsSystemd(t *testing.T) {
	e := newAccEnv(t)
	if _, ok, _ := host.DetectSystemd(context.Background(), hostLocal); ok {
		t.Skip("systemd runs here; this test covers hosts without it")
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{{
			Config: e.ProviderBlock() + `
resource "mailstack_server" "mx" {
  hostname   = "mail.example.test"
  supervisor = "systemd"
}`,
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(`Supervisor Not Available(.|\n)*systemd(.|\n)*PID\s+1`),
		}},
	})
}

// watchDowntime dials addr every 5ms until the returned function is
// called, which reports the longest stretch in which it refused.
func watchDowntime(addr string) func() time.Duration {
	stop := make(chan struct{})
	result := make(chan time.Duration)
	go func() {
		var longest time.Duration
		var downSince time.Time
		for {
			select {
			case <-stop:
				result <- longest
				return
			case <-time.After(5 * time.Millisecond):
			}
			c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
			now := time.Now()
			switch {
			case err != nil && downSince.IsZero():
				downSince = now
			case err == nil:
				c.Close()
				if !downSince.IsZero() {
					longest = max(longest, now.Sub(downSince))
					downSince = time.Time{}
				}
			}
		}
	}()
	return func() time.Duration { close(stop); return <-result }
}

// TestAccServer_metricsAddress: metrics_address makes the runtime serve
// Prometheus metrics there, drift in it is read back, and removing it
// frees the port.
func TestAccServer_metricsAddress(t *testing.T) {
	e := newAccEnv(t)
	addr := fmt.Sprintf("127.0.0.1:%d", e.FreePort())
	config := func(metrics string) string {
		return e.ProviderBlock() + fmt.Sprintf(`
resource "mailstack_server" "mx" {
  hostname        = "mail.example.test"
  metrics_address = %s
}`, metrics)
	}
	scrape := func() (string, error) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("GET /metrics: %s", resp.Status)
		}
		return string(b), err
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{
			{
				Config: config(strconv.Quote(addr)),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("mailstack_server.mx", tfjsonpath.New("metrics_address"), knownvalue.StringExact(addr)),
				},
				Check: func(*terraform.State) error {
					text, err := scrape()
					if err != nil {
						return err
					}
					if !strings.Contains(text, "# TYPE mailstack_deliveries_total counter") || !strings.Contains(text, "go_goroutines") {
						return fmt.Errorf("no mailstack metrics at %s:\n%s", addr, text)
					}
					return nil
				},
			},
			{
				// Cleared on the host behind Terraform's back: a planned repair.
				PreConfig: func() {
					c := e.client()
					s, err := c.Server(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					s.MetricsAddress = ""
					if _, err := c.SetServer(context.Background(), s); err != nil {
						t.Fatal(err)
					}
				},
				Config:             config(strconv.Quote(addr)),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				Config: config("null"),
				Check: func(*terraform.State) error {
					if _, err := scrape(); err == nil {
						return fmt.Errorf("metrics still served at %s", addr)
					}
					return nil
				},
			},
		},
	})
}

// TestAccServer_severalInOneApply: servers created in one apply, with
// nothing ordering them, install and start their runtimes concurrently;
// none fails with "text file busy" (one server's runtime started while
// another's executable is being written), and every runtime runs the
// installed executable under its supervisor.
func TestAccServer_severalInOneApply(t *testing.T) {
	e := newAccEnv(t)
	const servers = 4
	want, err := host.FileSHA256(runtimeExe)
	if err != nil {
		t.Fatal(err)
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{{
			Config: e.ProviderBlock() + fmt.Sprintf(`
resource "mailstack_server" "mx" {
  count    = %d
  name     = "mx${count.index}"
  hostname = "mx${count.index}.example.test"
  domains  = ["example.test"]
}`, servers),
			Check: func(*terraform.State) error {
				for i := range servers {
					dir := e.Path(fmt.Sprintf("mx%d", i))
					st, err := statedir.Local(dir).Client().Status(context.Background())
					if err != nil {
						return fmt.Errorf("server mx%d: %w", i, err)
					}
					if st.Supervisor == nil || st.ExecutableSHA256 != want {
						return fmt.Errorf("server mx%d runs %s (supervisor %+v), want %s under its supervisor", i, st.ExecutableSHA256, st.Supervisor, want)
					}
				}
				return nil
			},
			ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
		}},
	})
}
