package provider

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"os"
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
)

// stackConfig is a keystore, a server and an implicit-TLS SMTP listener
// with attrs added to it.
func stackConfig(e *accEnv, ksPath string, port int, attrs, extra string) string {
	return e.ProviderBlock() + fmt.Sprintf(`
resource "mailstack_keystore" "mx" {
  path     = %[1]q
  password = "changeit"
  alias    = "james"
  key {
    algorithm = "RSA"
    rsa_bits  = 2048
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

resource "mailstack_listener" "smtps" {
  server_id = mailstack_server.mx.id
  protocol  = "smtp"
  address   = "127.0.0.1"
  port      = %[2]d
  %[4]s
  tls {
    mode              = "implicit"
    keystore_path     = mailstack_keystore.mx.path
    keystore_password = "changeit"
  }
}
%[3]s`, ksPath, port, extra, attrs)
}

func TestAccListener_implicitTLSGreeting(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	ksPath := e.Path("mx.jks")
	port := e.FreePort()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	var ksBefore []byte
	var runtimePID int

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		CheckDestroy: func(*terraform.State) error {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				return fmt.Errorf("%s still accepts connections after destroy", addr)
			}
			if _, err := os.Stat(ksPath); !os.IsNotExist(err) {
				return fmt.Errorf("keystore %s still exists after destroy (err %v)", ksPath, err)
			}
			if runtimePID != 0 && hostLocal.Alive(runtimePID) {
				return fmt.Errorf("runtime pid %d still runs after destroy", runtimePID)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config: stackConfig(e, ksPath, port, "", ""),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("mailstack_listener.smtps", tfjsonpath.New("bound"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue("mailstack_server.mx", tfjsonpath.New("running"), knownvalue.Bool(true)),
					statecheck.CompareValuePairs(
						"mailstack_listener.smtps", tfjsonpath.New("served_fingerprint_sha256"),
						"mailstack_keystore.mx", tfjsonpath.New("fingerprint_sha256"), compare.ValuesSame()),
				},
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: func(s *terraform.State) error {
					fp := s.RootModule().Resources["mailstack_keystore.mx"].Primary.Attributes["fingerprint_sha256"]
					if err := checkTLSGreeting(addr, "220 mail.example.test ESMTP", fp); err != nil {
						return err
					}
					if err := checkNoPlainGreeting(addr); err != nil {
						return err
					}
					if runtimePID, err = hostLocal.ReadPID(e.Path("default/runtime.pid")); err != nil || runtimePID == 0 {
						return fmt.Errorf("no runtime pid file after apply (err %v)", err)
					}
					ksBefore, err = os.ReadFile(ksPath)
					return err
				},
			},
			{
				// A port in use fails the apply with the address, and
				// leaves the keystore and the other listener as they were.
				Config: stackConfig(e, ksPath, port, "", fmt.Sprintf(`
resource "mailstack_listener" "taken" {
  server_id = mailstack_server.mx.id
  protocol  = "smtp"
  address   = "127.0.0.1"
  port      = %d
  tls {
    mode              = "implicit"
    keystore_path     = mailstack_keystore.mx.path
    keystore_password = "changeit"
  }
}`, busyPort)),
				ExpectError: regexp.MustCompile(regexp.QuoteMeta(fmt.Sprintf("127.0.0.1:%d", busyPort)) + `(.|\n)*address already in use`),
			},
			{
				// The listener's own per-client limit, changed in place: it
				// applies to loopback, which the default exempts.
				Config: stackConfig(e, ksPath, port, "max_connections_per_ip = 1", ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction("mailstack_listener.smtps", plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("mailstack_listener.smtps", tfjsonpath.New("max_connections_per_ip"), knownvalue.Int64Exact(1)),
					statecheck.ExpectKnownValue("mailstack_listener.smtps", tfjsonpath.New("max_connections"), knownvalue.Null()),
				},
				Check: func(s *terraform.State) error {
					after, err := os.ReadFile(ksPath)
					if err != nil {
						return err
					}
					if string(after) != string(ksBefore) {
						return fmt.Errorf("keystore %s changed after the failed apply", ksPath)
					}
					fp := s.RootModule().Resources["mailstack_keystore.mx"].Primary.Attributes["fingerprint_sha256"]
					held, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
					if err != nil {
						return err
					}
					defer held.Close()
					if line, err := bufio.NewReader(held).ReadString('\n'); err != nil || !strings.HasPrefix(line, "220 ") {
						return fmt.Errorf("first connection: %q, %v", line, err)
					}
					return checkTLSGreeting(addr, "421 4.7.0", fp)
				},
			},
		},
	})
}

// checkTLSGreeting connects with TLS and checks the greeting and the
// served certificate's fingerprint.
func checkTLSGreeting(addr, wantPrefix, wantFingerprint string) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: testutil.HangGuard}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return fmt.Errorf("TLS dial %s: %w", addr, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(testutil.HangGuard))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading greeting from %s: %w", addr, err)
	}
	if !strings.HasPrefix(line, wantPrefix) {
		return fmt.Errorf("greeting from %s = %q, want prefix %q", addr, line, wantPrefix)
	}
	if got := keystore.Fingerprint(conn.ConnectionState().PeerCertificates[0]); got != wantFingerprint {
		return fmt.Errorf("%s serves certificate %s, want %s", addr, got, wantFingerprint)
	}
	return nil
}

// checkNoPlainGreeting checks that a plain-text client on an implicit-TLS
// port reads nothing.
func checkNoPlainGreeting(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, testutil.HangGuard)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 64)
	if n, _ := conn.Read(buf); n > 0 {
		return fmt.Errorf("plain-text client on %s got %q; an implicit-TLS port must send nothing before the handshake", addr, buf[:n])
	}
	return nil
}

func TestAccListener_planTimeErrors(t *testing.T) {
	e := newAccEnv(t)
	listener := func(protocol, mode string, port int, password string) string {
		return e.ProviderBlock() + fmt.Sprintf(`
resource "mailstack_listener" "x" {
  server_id = "default"
  protocol  = %q
  address   = "127.0.0.1"
  port      = %d
  tls {
    mode              = %q
    keystore_path     = "/nonexistent.jks"
    keystore_password = %q
  }
}`, protocol, port, mode, password)
	}
	cases := []struct {
		name   string
		config string
		want   string
	}{
		{"unknown protocol", listener("smtpx", "implicit", 2465, "changeit"), `protocol(.|\n)*value must be one of`},
		{"unknown tls mode", listener("smtp", "socket", 2465, "changeit"), `tls.mode(.|\n)*value must be one of`},
		{"port zero", listener("smtp", "implicit", 0, "changeit"), `port(.|\n)*between 1 and 65535`},
		{"port too large", listener("smtp", "implicit", 70000, "changeit"), `port(.|\n)*between 1 and 65535`},
		{"empty password", listener("smtp", "implicit", 2465, ""), `keystore_password(.|\n)*at least 1`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: providerFactories,
				Steps: []resource.TestStep{{
					Config:      tc.config,
					PlanOnly:    true,
					ExpectError: regexp.MustCompile(tc.want),
				}},
			})
		})
	}
}

func TestUnusualPort(t *testing.T) {
	cases := []struct {
		name, protocol, mode string
		port                 int
		unusual              bool
	}{
		{"implicit on 143", "imap", "implicit", 143, true},
		{"starttls on 993", "imap", "starttls", 993, true},
		{"implicit on 993", "imap", "implicit", 993, false},
		{"starttls on 587", "submission", "starttls", 587, false},
		{"implicit on 25", "smtp", "implicit", 25, true},
		{"none on 25", "smtp", "none", 25, false},
		{"implicit on a free port", "pop3", "implicit", 2995, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := unusualPort(tc.protocol, tc.mode, tc.port)
			if (got != "") != tc.unusual {
				t.Errorf("unusualPort(%q, %q, %d) = %q, want unusual=%v", tc.protocol, tc.mode, tc.port, got, tc.unusual)
			}
		})
	}
}

func TestAddressesOverlap(t *testing.T) {
	cases := []struct {
		name string
		a, b string
		want bool
	}{
		{"same", "127.0.0.1", "127.0.0.1", true},
		{"different loopbacks", "127.0.0.1", "127.0.0.2", false},
		{"IPv4 wildcard", "0.0.0.0", "127.0.0.1", true},
		{"wildcard second", "192.0.2.1", "0.0.0.0", true},
		{"IPv6 wildcard", "::", "127.0.0.1", true},
		{"same IPv6 spelled twice", "::1", "0:0:0:0:0:0:0:1", true},
		{"IPv6 and IPv4", "::1", "127.0.0.1", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := addressesOverlap(tc.a, tc.b); got != tc.want {
				t.Errorf("addressesOverlap(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}
