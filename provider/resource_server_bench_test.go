package provider

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/internal/probe"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
	"github.com/mailstack/terraform-provider-mailstack/runtime/supervise"
)

// BenchmarkTerraform times the real terraform CLI driving this provider,
// built as a plugin (dev_overrides, no registry):
//
//   - quickstart-apply: `terraform apply` of examples/quickstart from
//     nothing until all seven ports serve TLS (apply returns when they do;
//     the benchmark checks every port before it stops the clock);
//   - rotate-certificate-apply: re-apply with a new certificate (the
//     validity changes), until every port serves it;
//   - plan-50-listeners: `terraform plan` (with refresh) of a server with
//     50 TLS listeners.
//
// Servers bind 127.0.0.2 and 127.0.0.3, so a `make demo` on 127.0.0.1 does
// not get in the way. Results are recorded in docs/benchmarks.md.
func BenchmarkTerraform(b *testing.B) {
	tf, rc, quickstart := benchTerraform(b)
	ports := quickstartPorts

	b.Run("quickstart-apply", func(b *testing.B) {
		w := newTFWorkdir(b, tf, rc, quickstart, "-var", "address=127.0.0.2")
		for i := 0; i < b.N; i++ {
			b.StartTimer()
			w.run("apply", "-auto-approve")
			if err := serveTLS("127.0.0.2", ports...); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			w.run("destroy", "-auto-approve")
		}
	})

	b.Run("rotate-certificate-apply", func(b *testing.B) {
		w := newTFWorkdir(b, tf, rc, quickstart, "-var", "address=127.0.0.2")
		w.run("apply", "-auto-approve")
		for i := 0; i < b.N; i++ {
			days := fmt.Sprintf("validity_days=%d", 364-i)
			b.StartTimer()
			w.run("apply", "-auto-approve", "-var", days)
			b.StopTimer()
			want := strings.TrimSpace(w.run("output", "-raw", "certificate_fingerprint_sha256"))
			if err := serveFingerprint("127.0.0.2", want, ports...); err != nil {
				b.Fatalf("after the rotation apply returned: %v", err)
			}
		}
	})

	b.Run("plan-50-listeners", func(b *testing.B) {
		w := newTFWorkdir(b, tf, rc, []byte(fiftyListeners))
		w.run("apply", "-auto-approve")
		for i := 0; i < b.N; i++ {
			b.StartTimer()
			w.run("plan", "-detailed-exitcode") // exit code 2 (changes) fails
			b.StopTimer()
		}
	})
}

// benchTerraform finds the terraform CLI, builds this provider as a plugin
// with a CLI config that points terraform at it (dev_overrides, nothing
// downloaded), and reads examples/quickstart.
func benchTerraform(b *testing.B) (tf, cliConfig string, quickstart []byte) {
	tf = terraformCLI(b)
	plugins := b.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version=0.1.0",
		"-o", filepath.Join(plugins, "terraform-provider-mailstack"), "..")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building the provider: %v\n%s", err, out)
	}
	cliConfig = filepath.Join(plugins, "terraformrc")
	rcText := fmt.Sprintf("provider_installation {\n  dev_overrides {\n    %q = %q\n  }\n  direct {}\n}\n", "mailstack/mailstack", plugins)
	if err := os.WriteFile(cliConfig, []byte(rcText), 0o600); err != nil {
		b.Fatal(err)
	}
	quickstart, err := os.ReadFile("../examples/quickstart/main.tf")
	if err != nil {
		b.Fatal(err)
	}
	return tf, cliConfig, quickstart
}

// fiftyListeners is a keystore, a server and 50 listeners on 127.0.0.3.
var fiftyListeners = `
terraform {
  required_providers {
    mailstack = { source = "mailstack/mailstack" }
  }
}

provider "mailstack" {
  state_dir = "${path.module}/.state"
}

resource "mailstack_keystore" "mx" {
  path     = "${path.module}/.state/mx.jks"
  password = "changeit"
  alias    = "james"
  key {
    algorithm   = "ECDSA"
    ecdsa_curve = "P256"
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

resource "mailstack_listener" "l" {
  count     = 50
  server_id = mailstack_server.mx.id
  protocol  = ["smtp", "submission", "imap", "pop3"][count.index % 4]
  address   = "127.0.0.3"
  port      = 20000 + count.index
  tls {
    mode                        = count.index % 2 == 0 ? "implicit" : "starttls"
    keystore_path               = mailstack_keystore.mx.path
    keystore_password           = "changeit"
    expected_fingerprint_sha256 = mailstack_keystore.mx.fingerprint_sha256
  }
}
`

// terraformCLI finds terraform (TF_ACC_TERRAFORM_PATH, terraform, tofu).
func terraformCLI(b *testing.B) string {
	if p := os.Getenv("TF_ACC_TERRAFORM_PATH"); p != "" {
		return p
	}
	for _, name := range []string{"terraform", "tofu"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	b.Skip("neither terraform nor tofu is on PATH")
	return ""
}

// tfWorkdir is a folder with one configuration, run by the terraform CLI.
type tfWorkdir struct {
	b         *testing.B
	dir, tf   string
	cliConfig string
	vars      []string // -var arguments for every apply, plan and destroy
}

func newTFWorkdir(b *testing.B, tf, cliConfig string, config []byte, vars ...string) *tfWorkdir {
	b.StopTimer()
	w := &tfWorkdir{b: b, dir: b.TempDir(), tf: tf, cliConfig: cliConfig, vars: vars}
	if err := os.WriteFile(filepath.Join(w.dir, "main.tf"), config, 0o600); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if _, err := os.Stat(filepath.Join(w.dir, "terraform.tfstate")); err == nil {
			_, _ = w.exec("destroy", "-auto-approve")
		}
		stopAllUnder(filepath.Join(w.dir, ".state"))
	})
	return w
}

// run runs one terraform command and returns its output; a failure ends
// the benchmark.
func (w *tfWorkdir) run(args ...string) string {
	w.b.Helper()
	out, err := w.exec(args...)
	if err != nil {
		w.b.Fatalf("terraform %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (w *tfWorkdir) exec(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	full := append([]string{args[0], "-no-color"}, args[1:]...)
	if args[0] != "output" && args[0] != "get" {
		full = append(append(full, "-input=false"), w.vars...)
	}
	cmd := exec.CommandContext(ctx, w.tf, full...)
	cmd.Dir, cmd.Env = w.dir, append(os.Environ(), "TF_CLI_CONFIG_FILE="+w.cliConfig, "TF_IN_AUTOMATION=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// probeStartTLS returns the fingerprint a STARTTLS port serves.
func probeStartTLS(addr, protocol string) (string, error) {
	res, err := probe.Probe(context.Background(), probe.Options{Address: addr, Protocol: protocol, Mode: probe.StartTLS})
	if err != nil {
		return "", fmt.Errorf("%s: %w", addr, err)
	}
	return keystore.Fingerprint(res.Chain[0]), nil
}

// serveTLS checks that every port on host completes a TLS handshake,
// implicitly or after the protocol's STARTTLS.
func serveTLS(host string, ports ...int) error {
	return serveFingerprint(host, "", ports...)
}

// serveFingerprint checks that every port serves the certificate with
// fingerprint want ("" accepts any).
func serveFingerprint(host, want string, ports ...int) error {
	starttls := map[int]string{2525: "smtp", 2587: "smtp", 2143: "imap", 2110: "pop3"}
	for _, p := range ports {
		addr := net.JoinHostPort(host, fmt.Sprint(p))
		var fp string
		if proto, ok := starttls[p]; ok {
			res, err := probeStartTLS(addr, proto)
			if err != nil {
				return err
			}
			fp = res
		} else {
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				return fmt.Errorf("%s: %w", addr, err)
			}
			fp = keystore.Fingerprint(c.ConnectionState().PeerCertificates[0])
			c.Close()
		}
		if want != "" && fp != want {
			return fmt.Errorf("%s serves %s, want %s", addr, fp, want)
		}
	}
	return nil
}

// stopAllUnder stops supervisors, then runtimes, whose pid files are in
// the server folders under stateDir.
func stopAllUnder(stateDir string) {
	for _, name := range []string{supervise.PIDFile, statedir.PIDFile} {
		files, _ := filepath.Glob(filepath.Join(stateDir, "*", name))
		for _, f := range files {
			if pid, err := hostLocal.ReadPID(f); err == nil && pid > 0 && hostLocal.Runs(pid, "--state-dir", filepath.Dir(f)) {
				_ = hostLocal.Stop(pid, 10*time.Second)
			}
		}
	}
}
