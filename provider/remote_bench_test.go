package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil/netns"
)

// BenchmarkRemote times the real terraform CLI driving this provider (a
// plugin build) against remote hosts: real sshd in network namespaces,
// state on a tmpfs only the host sees.
//
//   - quickstart-apply: `terraform apply` of examples/quickstart on one
//     remote host from nothing (runtime executable copied over SFTP
//     included) until all seven ports serve TLS;
//   - noop-plan-2x7: `terraform plan` (with refresh) of two hosts with a
//     keystore, a server and seven listeners each, nothing to change.
//
// Each is followed by its -local twin: the same terraform commands and
// configuration on this machine (127.0.0.2 and .3, no SSH), so that the
// two are measured side by side under the same load and their ratio is
// what SSH costs. The remote ones report the SSH logins sshd accepted per
// operation: one per host and terraform run, not one per resource.
// Figures are in docs/benchmarks.md.
func BenchmarkRemote(b *testing.B) {
	tf, rc, quickstart := benchTerraform(b)

	b.Run("quickstart-apply", func(b *testing.B) {
		rh := netns.New(b)
		w := newTFWorkdir(b, tf, rc, remoteQuickstart(b, quickstart, rh), "-var", "address="+rh.IP)
		logins := applyFromNothing(b, w, rh.IP, rh.Logins)
		b.ReportMetric(logins, "ssh-logins/op")
		fmt.Printf("quickstart-apply to one remote host: %.0f SSH logins per apply\n", logins)
	})
	b.Run("quickstart-apply-local", func(b *testing.B) {
		w := newTFWorkdir(b, tf, rc, quickstart, "-var", "address=127.0.0.2")
		applyFromNothing(b, w, "127.0.0.2", func() int { return 0 })
	})

	b.Run("noop-plan-2x7", func(b *testing.B) {
		h1, h2 := netns.New(b), netns.New(b)
		w := newTFWorkdir(b, tf, rc, nil)
		logins := noopPlan(b, w, twoHostQuickstart(b, quickstart, w.dir, [2]hostConfig{
			{"h1", sshProvider(h1, "h1"), h1.IP, h1.Path("james.keystore")},
			{"h2", sshProvider(h2, "h2"), h2.IP, h2.Path("james.keystore")},
		}), func() int { return h1.Logins() + h2.Logins() })
		b.ReportMetric(logins, "ssh-logins/op")
		fmt.Printf("no-op plan of 2 hosts x 7 listeners: %.0f SSH logins per plan\n", logins)
	})
	b.Run("noop-plan-2x7-local", func(b *testing.B) {
		w := newTFWorkdir(b, tf, rc, nil)
		local := func(alias, addr string) hostConfig {
			state := filepath.Join(w.dir, ".state", alias)
			return hostConfig{alias, fmt.Sprintf("provider \"mailstack\" {\n  alias     = %q\n  state_dir = %q\n}\n", alias, state), addr, filepath.Join(state, "james.keystore")}
		}
		noopPlan(b, w, twoHostQuickstart(b, quickstart, w.dir, [2]hostConfig{local("h1", "127.0.0.2"), local("h2", "127.0.0.3")}),
			func() int { return 0 })
	})
}

// quickstartPorts are the ports examples/quickstart listens on.
var quickstartPorts = []int{2525, 2465, 2587, 2143, 2993, 2110, 2995}

// applyFromNothing times `terraform apply` in w until all quickstart ports
// of addr serve TLS, destroying after each (untimed), and returns the
// logins counted per apply.
func applyFromNothing(b *testing.B, w *tfWorkdir, addr string, logins func() int) float64 {
	n := 0
	for i := 0; i < b.N; i++ {
		before := logins()
		b.StartTimer()
		w.run("apply", "-auto-approve")
		if err := serveTLS(addr, quickstartPorts...); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		n += logins() - before
		w.run("destroy", "-auto-approve")
	}
	return float64(n) / float64(b.N)
}

// noopPlan applies root in w (untimed), then times `terraform plan` with
// nothing to change, and returns the logins counted per plan.
func noopPlan(b *testing.B, w *tfWorkdir, root []byte, logins func() int) float64 {
	if err := os.WriteFile(filepath.Join(w.dir, "main.tf"), root, 0o600); err != nil {
		b.Fatal(err)
	}
	w.run("get") // the modules; the provider is the dev override
	w.run("apply", "-auto-approve")
	n := 0
	for i := 0; i < b.N; i++ {
		before := logins()
		b.StartTimer()
		w.run("plan", "-detailed-exitcode") // exit code 2 (changes) fails
		b.StopTimer()
		n += logins() - before
	}
	return float64(n) / float64(b.N)
}

// remoteQuickstart turns examples/quickstart into a configuration for
// host rh: its provider block reaches rh over SSH and the keystore is on
// rh.
func remoteQuickstart(b *testing.B, quickstart []byte, rh *netns.Host) []byte {
	s := strings.Replace(string(quickstart), quickstartProvider, sshProvider(rh, ""), 1)
	if !strings.Contains(string(quickstart), quickstartProvider) {
		b.Fatal("examples/quickstart/main.tf no longer has the provider block this benchmark replaces")
	}
	return []byte(strings.ReplaceAll(s, quickstartKeystore, fmt.Sprintf("%q", rh.Path("james.keystore"))))
}

const (
	quickstartProvider = "provider \"mailstack\" {\n  state_dir = \"${path.module}/.state\"\n}"
	quickstartKeystore = `"${path.module}/.state/james.keystore"`
)

// sshProvider is a provider block for rh, aliased when alias is set.
func sshProvider(rh *netns.Host, alias string) string {
	a := ""
	if alias != "" {
		a = fmt.Sprintf("  alias     = %q\n", alias)
	}
	return fmt.Sprintf("provider \"mailstack\" {\n%s  state_dir = %q\n  ssh {\n    address     = %q\n    user        = %q\n    private_key = %q\n    host_key    = %q\n  }\n}\n",
		a, rh.Path("state"), rh.Addr, rh.User, string(rh.ClientKey), rh.HostKey)
}

// hostConfig is one host of twoHostQuickstart: a provider configuration
// with alias, the address the quickstart listens on and its keystore.
type hostConfig struct{ alias, provider, address, keystore string }

// twoHostQuickstart is a root configuration with one quickstart module per
// host (the module is written into dir/host), each with its own provider
// configuration, as the Remote hosts guide shows.
func twoHostQuickstart(b *testing.B, quickstart []byte, dir string, hosts [2]hostConfig) []byte {
	module := strings.Replace(string(quickstart), quickstartProvider, "", 1)
	module = strings.ReplaceAll(module, quickstartKeystore, "var.keystore_path")
	module += "\nvariable \"keystore_path\" {\n  type = string\n}\n"
	if err := os.MkdirAll(filepath.Join(dir, "host"), 0o700); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "host", "main.tf"), []byte(module), 0o600); err != nil {
		b.Fatal(err)
	}
	root := "terraform {\n  required_providers {\n    mailstack = { source = \"mailstack/mailstack\" }\n  }\n}\n\n"
	for _, h := range hosts {
		root += h.provider + fmt.Sprintf(`
module %[1]q {
  source        = "./host"
  providers     = { mailstack = mailstack.%[1]s }
  address       = %[2]q
  keystore_path = %[3]q
}

`, h.alias, h.address, h.keystore)
	}
	return []byte(root)
}
