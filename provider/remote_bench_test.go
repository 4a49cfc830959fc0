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
// Each reports the SSH logins sshd accepted per operation: one per host
// and terraform run, not one per resource. Figures are in
// docs/benchmarks.md.
func BenchmarkRemote(b *testing.B) {
	tf, rc, quickstart := benchTerraform(b)
	ports := []int{2525, 2465, 2587, 2143, 2993, 2110, 2995}

	b.Run("quickstart-apply", func(b *testing.B) {
		rh := netns.New(b)
		w := newTFWorkdir(b, tf, rc, remoteQuickstart(b, quickstart, rh), "-var", "address="+rh.IP)
		logins := 0
		for i := 0; i < b.N; i++ {
			before := rh.Logins()
			b.StartTimer()
			w.run("apply", "-auto-approve")
			if err := serveTLS(rh.IP, ports...); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			logins += rh.Logins() - before
			w.run("destroy", "-auto-approve")
		}
		b.ReportMetric(float64(logins)/float64(b.N), "ssh-logins/op")
		fmt.Printf("quickstart-apply to one remote host: %d SSH logins in %d applies\n", logins, b.N)
	})

	b.Run("noop-plan-2x7", func(b *testing.B) {
		h1, h2 := netns.New(b), netns.New(b)
		w := newTFWorkdir(b, tf, rc, nil)
		if err := os.WriteFile(filepath.Join(w.dir, "main.tf"), twoHostQuickstart(b, quickstart, w.dir, h1, h2), 0o600); err != nil {
			b.Fatal(err)
		}
		w.run("get") // the modules; the provider is the dev override
		w.run("apply", "-auto-approve")
		logins := 0
		for i := 0; i < b.N; i++ {
			before := h1.Logins() + h2.Logins()
			b.StartTimer()
			w.run("plan", "-detailed-exitcode") // exit code 2 (changes) fails
			b.StopTimer()
			logins += h1.Logins() + h2.Logins() - before
		}
		b.ReportMetric(float64(logins)/float64(b.N), "ssh-logins/op")
		fmt.Printf("no-op plan of 2 hosts x 7 listeners: %d SSH logins in %d plans\n", logins, b.N)
	})
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

// twoHostQuickstart is a root configuration with one quickstart module per
// host (the module is written into dir/host), each with its own provider
// configuration, as the Remote hosts guide shows.
func twoHostQuickstart(b *testing.B, quickstart []byte, dir string, h1, h2 *netns.Host) []byte {
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
	for _, h := range []struct {
		alias string
		rh    *netns.Host
	}{{"h1", h1}, {"h2", h2}} {
		root += sshProvider(h.rh, h.alias) + fmt.Sprintf(`
module %[1]q {
  source        = "./host"
  providers     = { mailstack = mailstack.%[1]s }
  address       = %[2]q
  keystore_path = %[3]q
}

`, h.alias, h.rh.IP, h.rh.Path("james.keystore"))
	}
	return []byte(root)
}
