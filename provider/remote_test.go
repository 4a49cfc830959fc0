package provider

import (
	"fmt"
	"os"
	"path"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"golang.org/x/crypto/ssh"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil/netns"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
	"github.com/mailstack/terraform-provider-mailstack/runtime/supervise"
)

// Remote hosts: each is a real sshd in a network namespace of its own,
// whose work folder is a tmpfs the test process (and so the provider)
// cannot see. A test passes only if everything went over SSH.

// remoteProvider configures the provider aliased alias for host rh;
// extra goes into the ssh block.
func remoteProvider(alias string, rh *netns.Host, extra string) string {
	return fmt.Sprintf(`provider "mailstack" {
  alias     = %[1]q
  state_dir = %[2]q
  ssh {
    address     = %[3]q
    user        = %[4]q
    private_key = %[5]q
%[6]s  }
}
`, alias, rh.Path("state"), rh.Addr, rh.User, string(rh.ClientKey), extra)
}

// hostKey is an ssh block line pinning key.
func hostKey(key string) string { return fmt.Sprintf("    host_key    = %q\n", key) }

// remoteStack is a keystore, a server, SMTP (mode smtpMode on 2525 and
// implicit TLS on 2465) and IMAP STARTTLS (2143) listeners and a user on
// host rh through provider alias, and a TLS probe of its implicit port
// from where terraform runs.
func remoteStack(alias string, rh *netns.Host, smtpMode string) string {
	return remoteStackProbed(alias, rh, smtpMode, true)
}

// remoteStackProbed is remoteStack, without the probe unless probe: a
// probe of a port that is down fails the plan, not only the check.
func remoteStackProbed(alias string, rh *netns.Host, smtpMode string, probe bool) string {
	// One resource each: the legacy state checks of terraform-plugin-testing
	// do not take for_each.
	listeners := ""
	for _, l := range []struct{ name, protocol, mode, port string }{
		{"smtp", "smtp", smtpMode, "2525"}, {"smtps", "smtp", "implicit", "2465"}, {"imap", "imap", "starttls", "2143"},
	} {
		listeners += fmt.Sprintf(`
resource "mailstack_listener" "%[1]s_%[2]s" {
  provider  = mailstack.%[1]s
  server_id = mailstack_server.%[1]s.id
  protocol  = %[3]q
  address   = "0.0.0.0"
  port      = %[5]s
  tls {
    mode                        = %[4]q
    keystore_path               = mailstack_keystore.%[1]s.path
    keystore_password           = "changeit"
    expected_fingerprint_sha256 = mailstack_keystore.%[1]s.fingerprint_sha256
  }
}
`, alias, l.name, l.protocol, l.mode, l.port)
	}
	probeBlock := ""
	if probe {
		probeBlock = fmt.Sprintf(`
data "mailstack_tls_probe" %[1]q {
  provider   = mailstack.%[1]s
  address    = "%[2]s:2465"
  protocol   = "smtp"
  mode       = "implicit"
  depends_on = [mailstack_listener.%[1]s_smtps]
}
`, alias, rh.IP)
	}
	return fmt.Sprintf(`
resource "mailstack_keystore" %[1]q {
  provider = mailstack.%[1]s
  path     = %[2]q
  password = "changeit"
  alias    = "james"
  key {
    algorithm   = "ECDSA"
    ecdsa_curve = "P256"
  }
  self_signed {
    subject {
      common_name = "mail.%[1]s.test"
    }
    dns_names = ["mail.%[1]s.test"]
  }
}

resource "mailstack_server" %[1]q {
  provider   = mailstack.%[1]s
  hostname   = "mail.%[1]s.test"
  domains    = ["example.test"]
  supervisor = "builtin"
}

%[5]s
resource "mailstack_user" %[1]q {
  provider  = mailstack.%[1]s
  server_id = mailstack_server.%[1]s.id
  address   = "alice@example.test"
  password  = "alice-password"
}

%[6]s`, alias, rh.Path("james.keystore"), smtpMode, rh.IP, listeners, probeBlock)
}

// externalProvider has terraform run the provider executable TestMain
// built, one plugin process per provider configuration, as in real use:
// a filesystem mirror holds it, as `make install` makes one. (In-process
// providers serve every configuration from one instance, where the last
// configuration would win: two hosts need real plugins.)
func externalProvider(t *testing.T) map[string]resource.ExternalProvider {
	t.Helper()
	const version = "0.0.1"
	mirror := t.TempDir()
	for _, registry := range []string{"registry.terraform.io", "registry.opentofu.org"} {
		dir := path.Join(mirror, registry, "mailstack", "mailstack", version, runtime.GOOS+"_"+runtime.GOARCH)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(runtimeExe, path.Join(dir, "terraform-provider-mailstack_v"+version)); err != nil {
			t.Fatal(err)
		}
	}
	rc := path.Join(t.TempDir(), "terraformrc")
	text := fmt.Sprintf("provider_installation {\n  filesystem_mirror {\n    path    = %[1]q\n    include = [%[2]s]\n  }\n  direct {\n    exclude = [%[2]s]\n  }\n}\n", mirror,
		`"registry.terraform.io/mailstack/mailstack", "registry.opentofu.org/mailstack/mailstack"`)
	if err := os.WriteFile(rc, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TF_CLI_CONFIG_FILE", rc)
	return map[string]resource.ExternalProvider{"mailstack": {Source: "mailstack/mailstack", VersionConstraint: version}}
}

// TestAccRemote_twoHosts: two hosts from one configuration, each with its
// own keystore, server, listeners and user, all made over SSH.
func TestAccRemote_twoHosts(t *testing.T) {
	e := newAccEnv(t)
	h1, h2 := netns.New(t), netns.New(t)
	configProbed := func(smtpMode string, probe bool) string {
		return "terraform {\n  required_providers {\n    mailstack = { source = \"mailstack/mailstack\" }\n  }\n}\n" +
			remoteProvider("h1", h1, hostKey(h1.HostKey)) + remoteProvider("h2", h2, hostKey(h2.HostKey)) +
			remoteStackProbed("h1", h1, smtpMode, probe) + remoteStack("h2", h2, "starttls")
	}
	config := func(smtpMode string) string { return configProbed(smtpMode, true) }
	var certPEM, cert2PEM string
	resource.Test(t, resource.TestCase{
		ExternalProviders: externalProvider(t),
		Steps: []resource.TestStep{
			{
				Config: config("starttls"),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttrPair("data.mailstack_tls_probe.h1", "fingerprint_sha256", "mailstack_keystore.h1", "fingerprint_sha256"),
					resource.TestCheckResourceAttrPair("data.mailstack_tls_probe.h2", "fingerprint_sha256", "mailstack_keystore.h2", "fingerprint_sha256"),
					resource.TestCheckResourceAttr("mailstack_server.h1", "running", "true"),
					resource.TestCheckResourceAttr("mailstack_server.h1", "state_dir", h1.Path("state", "default")),
					func(s *terraform.State) error {
						certPEM = s.RootModule().Resources["mailstack_keystore.h1"].Primary.Attributes["certificate_pem"]
						cert2PEM = s.RootModule().Resources["mailstack_keystore.h2"].Primary.Attributes["certificate_pem"]
						return nil
					},
					func(*terraform.State) error {
						return onlyOnHost(h1, h1.Path("james.keystore"), h1.Path("state", "default", statedir.ConfigFile))
					},
					func(*terraform.State) error {
						return onlyOnHost(h2, h2.Path("james.keystore"), h2.Path("state", "default", statedir.ConfigFile))
					},
					func(*terraform.State) error {
						// Mail to host 1, from this namespace: on host 1, not on host 2.
						return e.mailOnlyAt(mailHost{h1.IP, 2525, 2143, certPEM}, mailHost{h2.IP, 2525, 2143, cert2PEM})
					},
				),
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			// kill -9 of host 1's runtime and its supervisor is drift...
			{
				PreConfig:          func() { killRuntime(t, h1) },
				Config:             configProbed("starttls", false),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			// ...that apply repairs.
			{
				Config: configProbed("starttls", false),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("mailstack_server.h1", "running", "true"),
					func(*terraform.State) error { return serveTLS(h1.IP, 2525, 2465, 2143) },
				),
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			// A TLS mode change is made in place.
			{
				Config: config("implicit"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction("mailstack_listener.h1_smtp", plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.TestCheckResourceAttr("mailstack_listener.h1_smtp", "tls.mode", "implicit"),
			},
			// Import by an id that names the host.
			{
				Config:            config("implicit"),
				ResourceName:      "mailstack_server.h1",
				ImportState:       true,
				ImportStateVerify: true,
				ImportStateId:     "ssh://root@" + h1.Addr + "/default",
				// An imported server reads as supervisor "auto", as locally.
				ImportStateVerifyIgnore: []string{"supervisor"},
				// Both servers are "default": tell them apart by folder.
				ImportStateVerifyIdentifierAttribute: "state_dir",
			},
			{
				Config:        config("implicit"),
				ResourceName:  "mailstack_server.h1",
				ImportState:   true,
				ImportStateId: "ssh://" + h2.Addr + "/default",
				ExpectError:   regexp.MustCompile(`Import ID Names Another Host(.|\n)*` + regexp.QuoteMeta(h2.Addr) + `(.|\n)*` + regexp.QuoteMeta(h1.Addr)),
			},
		},
	})
	expectOnlySSHD(t, h1, h2)
}

// expectOnlySSHD checks, after a destroy, that nothing but sshd runs on
// the hosts: no runtime, no supervisor.
func expectOnlySSHD(t *testing.T, hosts ...*netns.Host) {
	t.Helper()
	for _, rh := range hosts {
		// An in-process provider of this test binary (a step run with
		// providerFactories) keeps its connection as long as the binary
		// runs, where a provider process would have exited with it.
		host.CloseShared(rh.Addr)
		// sshd's child for the last provider's connection exits once it
		// sees the connection closed, which under load takes a moment.
		deadline := time.Now().Add(testutil.HangGuard)
		procs := rh.Processes()
		for len(procs) > 1 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			procs = rh.Processes()
		}
		if len(procs) > 1 {
			var names []string
			for _, pid := range procs {
				cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				names = append(names, strings.ReplaceAll(strings.TrimRight(string(cmd), "\x00"), "\x00", " "))
			}
			t.Errorf("%v after destroy, %d processes run on %s besides sshd: %q", testutil.HangGuard, len(procs)-1, rh.Name, names)
		}
	}
}

// TestAccRemote_localAndRemote: the default provider configuration
// manages the machine terraform runs on and an aliased one a host over
// SSH, in one configuration, each with a server named "default" and its
// listeners. Mail sent to either is read there and not on the other.
// In-process, where one provider would serve both configurations and
// act on whichever came last, it is refused and nothing changes.
func TestAccRemote_localAndRemote(t *testing.T) {
	e := newAccEnv(t)
	rh := netns.New(t)
	smtp, imap := e.FreePort(), e.FreePort()
	config := "terraform {\n  required_providers {\n    mailstack = { source = \"mailstack/mailstack\" }\n  }\n}\n" +
		e.ProviderBlock() + remoteProvider("h1", rh, hostKey(rh.HostKey)) +
		mailTestKeystoreHCL(e.Path("local.keystore")) + fmt.Sprintf(`
resource "mailstack_server" "local" {
  hostname   = "mail.local.test"
  domains    = ["example.test"]
  supervisor = "builtin"
}

resource "mailstack_user" "local" {
  server_id = mailstack_server.local.id
  address   = "alice@example.test"
  password  = "alice-password"
}

data "mailstack_tls_probe" "local" {
  address    = "127.0.0.1:%[1]d"
  protocol   = "smtp"
  mode       = "starttls"
  depends_on = [mailstack_listener.local_smtp]
}
`, smtp) + ksListenerHCL("local_smtp", "local", "smtp", smtp, "starttls") + ksListenerHCL("local_imap", "local", "imap", imap, "starttls") +
		remoteStack("h1", rh, "starttls")
	var localPEM, remotePEM string
	// supervisors are the pid files of both servers' supervisors.
	supervisors := func() (string, error) {
		local, err := os.ReadFile(e.Path(path.Join("default", supervise.PIDFile)))
		if err != nil {
			return "", err
		}
		remote, err := rh.ReadFile(rh.Path("state", "default", supervise.PIDFile))
		return string(local) + "/" + string(remote), err
	}
	var before string
	external := externalProvider(t)
	resource.Test(t, resource.TestCase{
		CheckDestroy: func(*terraform.State) error {
			if pids := processesUnder(e.StateDir); len(pids) > 0 {
				return fmt.Errorf("processes of %s outlived destroy: %v", e.StateDir, pids)
			}
			return portsClosed(smtp, imap)
		},
		Steps: []resource.TestStep{
			{
				ExternalProviders: external,
				Config:            config,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("mailstack_server.local", "running", "true"),
					resource.TestCheckResourceAttr("mailstack_server.local", "state_dir", e.Path("default")),
					resource.TestCheckResourceAttr("mailstack_server.h1", "running", "true"),
					resource.TestCheckResourceAttr("mailstack_server.h1", "state_dir", rh.Path("state", "default")),
					resource.TestCheckResourceAttrPair("data.mailstack_tls_probe.local", "fingerprint_sha256", "mailstack_keystore.ks", "fingerprint_sha256"),
					resource.TestCheckResourceAttrPair("data.mailstack_tls_probe.h1", "fingerprint_sha256", "mailstack_keystore.h1", "fingerprint_sha256"),
					func(s *terraform.State) error {
						localPEM = s.RootModule().Resources["mailstack_keystore.ks"].Primary.Attributes["certificate_pem"]
						remotePEM = s.RootModule().Resources["mailstack_keystore.h1"].Primary.Attributes["certificate_pem"]
						return nil
					},
					func(*terraform.State) error {
						return onlyOnHost(rh, rh.Path("james.keystore"), rh.Path("state", "default", statedir.ConfigFile))
					},
					func(*terraform.State) error {
						return e.mailOnlyAt(mailHost{"127.0.0.1", smtp, imap, localPEM}, mailHost{rh.IP, 2525, 2143, remotePEM})
					},
					func(*terraform.State) error {
						return e.mailOnlyAt(mailHost{rh.IP, 2525, 2143, remotePEM}, mailHost{"127.0.0.1", smtp, imap, localPEM})
					},
					func(*terraform.State) (err error) {
						before, err = supervisors()
						return err
					},
				),
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				ProtoV6ProviderFactories: providerFactories,
				Config:                   config,
				PlanOnly:                 true,
				ExpectError:              regexp.MustCompile(`Several Provider Configurations in One Provider Process`),
			},
			{
				ExternalProviders: external,
				Config:            config,
				Check: resource.ComposeAggregateTestCheckFunc(
					func(*terraform.State) error {
						if after, err := supervisors(); err != nil || after != before {
							return fmt.Errorf("the refused configuration changed the supervisors (pids %q, now %q): %v", before, after, err)
						}
						return nil
					},
					func(*terraform.State) error { return serveTLS(rh.IP, 2525, 2465, 2143) },
				),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
		},
	})
	expectOnlySSHD(t, rh)
}

// mailHost is a server's mail ports on ip, with TLS certificates caPEM
// verifies, and a user alice@example.test (password alice-password).
type mailHost struct {
	ip         string
	smtp, imap int
	caPEM      string
}

// mailOnlyAt sends a message to alice at host to, from where the test
// runs, and finds it there over IMAP but not at host other.
func (e *accEnv) mailOnlyAt(to, other mailHost) error {
	token := fmt.Sprintf("remote-%d-%s", os.Getpid(), to.ip)
	if _, err := e.mailClientAt("send", to.ip, to.smtp, to.caPEM, "alice@example.test", "", token); err != nil {
		return err
	}
	if out, err := e.mailClientAt("imap", to.ip, to.imap, to.caPEM, "alice@example.test", "alice-password", token); err != nil || !strings.Contains(out, token) {
		return fmt.Errorf("IMAP on %s: %v\n%s", to.ip, err, out)
	}
	out, err := e.mailClientAt("imap", other.ip, other.imap, other.caPEM, "alice@example.test", "alice-password", token)
	if err == nil || !strings.Contains(out, "no message with subject "+token) {
		return fmt.Errorf("IMAP on %s should log in and find no message sent to %s: %v\n%s", other.ip, to.ip, err, out)
	}
	return nil
}

// onlyOnHost checks that files are on host rh and not where terraform
// runs.
func onlyOnHost(rh *netns.Host, files ...string) error {
	for _, f := range files {
		if _, err := rh.ReadFile(f); err != nil {
			return fmt.Errorf("%s on %s: %v", f, rh.Name, err)
		}
		if _, err := os.Stat(f); err == nil {
			return fmt.Errorf("%s exists where terraform runs: it was not written over SSH", f)
		}
	}
	return nil
}

// killRuntime kills host rh's supervisor and runtime with SIGKILL.
func killRuntime(t *testing.T, rh *netns.Host) {
	t.Helper()
	for _, f := range []string{supervise.PIDFile, statedir.PIDFile} {
		b, err := rh.ReadFile(rh.Path("state", "default", f))
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if pid <= 0 {
			t.Fatalf("%s: %q", f, b)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
		deadline := time.Now().Add(testutil.HangGuard)
		for syscall.Kill(pid, 0) == nil {
			if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && strings.Contains(string(stat), ") Z ") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("pid %d outlived SIGKILL", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestAccRemote_failures: what goes wrong with a host is an error that
// names it, and nothing changes on it.
func TestAccRemote_failures(t *testing.T) {
	t.Parallel()
	newAccEnv(t)
	rh, other := netns.New(t), netns.New(t)
	keystoreOnly := func(provider string) string { return provider + remoteKeystore("h", rh.Path("ks", "james.keystore")) }
	wrongUser := strings.Replace(remoteProvider("h", rh, hostKey(rh.HostKey)), `user        = "root"`, `user        = "nobody-here"`, 1)
	wrongKey := strings.Replace(remoteProvider("h", rh, hostKey(rh.HostKey)), fmt.Sprintf("%q", rh.ClientKey), fmt.Sprintf("%q", other.ClientKey), 1)
	addr := regexp.QuoteMeta(rh.Addr)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{
			{
				Config:      keystoreOnly(remoteProvider("h", rh, hostKey(other.HostKey))),
				ExpectError: regexp.MustCompile(addr + `(.|\n)*verification\s+failed(.|\n)*` + regexp.QuoteMeta(fingerprintOf(t, rh.HostKey))),
			},
			{
				Config:      keystoreOnly(remoteProvider("h", rh, "    known_hosts = \"/dev/null\"\n")),
				ExpectError: regexp.MustCompile(addr + `(.|\n)*verification\s+failed(.|\n)*not\s+listed`),
			},
			{
				PreConfig:   func() { rh.SetUnreachable(true) },
				Config:      keystoreOnly(remoteProvider("h", rh, hostKey(rh.HostKey))),
				ExpectError: regexp.MustCompile(addr + `(.|\n)*cannot\s+connect\s+\(waited\s+at\s+most\s+10s\)`),
			},
			{
				PreConfig:   func() { rh.SetUnreachable(false) },
				Config:      keystoreOnly(wrongUser),
				ExpectError: regexp.MustCompile(addr + `(.|\n)*"nobody-here"\s+was\s+refused`),
			},
			{
				Config:      keystoreOnly(wrongKey),
				ExpectError: regexp.MustCompile(addr + `(.|\n)*was\s+refused`),
			},
			{
				PreConfig: func() {
					if out, _ := rh.Exec("ls", "-A", rh.Root); strings.TrimSpace(out) != "root" {
						t.Errorf("after the failed logins the host holds %q, want nothing new", out)
					}
					rh.SetReadOnly(true)
				},
				Config:      keystoreOnly(remoteProvider("h", rh, hostKey(rh.HostKey))),
				ExpectError: regexp.MustCompile(`(?i)` + addr + `(.|\n)*read-only`),
			},
			{
				PreConfig: func() {
					rh.SetReadOnly(false)
					if _, err := rh.ReadFile(rh.Path("ks", "james.keystore")); err == nil {
						t.Error("a keystore was written on the read-only host")
					}
				},
				Config: keystoreOnly(remoteProvider("h", rh, hostKey(rh.HostKey))),
				Check:  func(*terraform.State) error { return onlyOnHost(rh, rh.Path("ks", "james.keystore")) },
			},
		},
	})
}

// TestAccRemote_agentAndPassphrase: one host through two provider
// configurations, one logging in with the keys of a real ssh-agent
// (agent = true), the other with a key ssh-keygen encrypted
// (private_key_passphrase); each makes a keystore there, from a plugin
// process of its own. A wrong passphrase fails before anything reaches
// the host, naming it.
func TestAccRemote_agentAndPassphrase(t *testing.T) {
	newAccEnv(t)
	rh := netns.New(t)
	agent := netns.StartAgent(t, rh.ClientKey)
	t.Setenv("SSH_AUTH_SOCK", agent.Sock)
	const passphrase = "s3cret passphrase"
	key := rh.KeyWithPassphrase(netns.KeyOpenSSH, passphrase)
	config := func(usedPassphrase string) string {
		return fmt.Sprintf(`
provider "mailstack" {
  alias     = "agent"
  state_dir = %[1]q
  ssh {
    address  = %[2]q
    user     = %[3]q
    agent    = true
    host_key = %[4]q
  }
}

provider "mailstack" {
  alias     = "passphrase"
  state_dir = %[1]q
  ssh {
    address                = %[2]q
    user                   = %[3]q
    private_key            = %[5]q
    private_key_passphrase = %[6]q
    host_key               = %[4]q
  }
}
`, rh.Path("state"), rh.Addr, rh.User, rh.HostKey, string(key), usedPassphrase) +
			remoteKeystore("agent", rh.Path("agent.keystore")) + remoteKeystore("passphrase", rh.Path("passphrase.keystore"))
	}
	resource.Test(t, resource.TestCase{
		ExternalProviders: externalProvider(t),
		Steps: []resource.TestStep{
			{
				Config:      config("not the passphrase"),
				ExpectError: regexp.MustCompile(`Invalid SSH Settings(.|\n)*` + regexp.QuoteMeta(rh.Addr) + `(.|\n)*passphrase\s+does\s+not\s+decrypt`),
			},
			{
				PreConfig: func() {
					if out, _ := rh.Exec("ls", "-A", rh.Root); strings.TrimSpace(out) != "root" {
						t.Errorf("after the refused passphrase the host holds %q, want nothing new", out)
					}
				},
				Config: config(passphrase),
				Check: func(*terraform.State) error {
					return onlyOnHost(rh, rh.Path("agent.keystore"), rh.Path("passphrase.keystore"))
				},
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
		},
	})
}

// remoteKeystore is a self-signed keystore at p made through provider
// alias.
func remoteKeystore(alias, p string) string {
	return fmt.Sprintf(`
resource "mailstack_keystore" %[1]q {
  provider = mailstack.%[1]s
  path     = %[2]q
  password = "changeit"
  key {
    algorithm   = "ECDSA"
    ecdsa_curve = "P256"
  }
  self_signed {
    subject {
      common_name = "mail.example.test"
    }
  }
}
`, alias, p)
}

// TestAccRemote_sshdKilledMidApply: sshd and every session it serves die
// while an apply copies the runtime to the host; the apply fails naming
// the host, and the next apply converges.
func TestAccRemote_sshdKilledMidApply(t *testing.T) {
	t.Parallel()
	newAccEnv(t)
	rh := netns.New(t)
	config := remoteProvider("h1", rh, hostKey(rh.HostKey)) + remoteStack("h1", rh, "starttls")
	exe := rh.Path("state", "default", statedir.Executable)
	// The runtime executable's temporary file appears when its copy
	// starts; with the link slowed down the copy then takes seconds, so
	// the kill lands in the middle of it however fast the machine is.
	killed, stop := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(stop) })
	killMidCopy := func() {
		for {
			entries, _ := rh.ReadDir(path.Dir(exe))
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), "."+path.Base(exe)+".tmp-") {
					rh.KillSSHD()
					close(killed)
					return
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					rh.SetRate("100mbit")
					go killMidCopy()
				},
				Config:      config,
				ExpectError: regexp.MustCompile(regexp.QuoteMeta(rh.Addr)),
			},
			{
				PreConfig: func() {
					select {
					case <-killed:
					default:
						t.Fatal("the apply failed before the runtime executable was copied")
					}
					rh.SetRate("")
					rh.StartSSHD()
				},
				Config:           config,
				Check:            resource.TestCheckResourceAttr("mailstack_server.h1", "running", "true"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
		},
	})
}

// fingerprintOf is the SHA256 fingerprint of an authorized_keys line.
func fingerprintOf(t *testing.T, authorizedKey string) string {
	t.Helper()
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(authorizedKey))
	if err != nil {
		t.Fatal(err)
	}
	return ssh.FingerprintSHA256(k)
}
