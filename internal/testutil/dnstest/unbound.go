package dnstest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

// UnboundPath is where Debian's unbound package puts the daemon.
const UnboundPath = "/usr/sbin/unbound"

// StartUnbound runs Unbound on a free loopback port as a validating
// resolver for the zones of s (stub zones pointing at s), with a trust
// anchor for each signed one, and stops it when the test ends. It returns
// the resolver's address. Unbound never recurses beyond these zones. The
// test is skipped where Unbound is not installed (.ci/run installs it).
func StartUnbound(t testing.TB, s *Server) string {
	t.Helper()
	if _, err := os.Stat(UnboundPath); err != nil {
		t.Skipf("unbound is not installed (%s): apt-get install unbound", UnboundPath)
	}
	dir := t.TempDir()
	port := testutil.FreePort(t)
	_, dnsPort, _ := net.SplitHostPort(s.Addr)
	var b strings.Builder
	fmt.Fprintf(&b, `server:
	interface: 127.0.0.1@%d
	port: %d
	do-daemonize: no
	use-syslog: no
	logfile: %q
	verbosity: 1
	username: ""
	chroot: ""
	directory: %q
	pidfile: %q
	do-ip6: no
	do-not-query-localhost: no
	qname-minimisation: no
	harden-dnssec-stripped: yes
	val-log-level: 2
	cache-max-ttl: 1
	cache-max-negative-ttl: 1
	# The one authority is a test server on loopback: never give it up as
	# down when it is slow to answer on a busy machine.
	infra-keep-probing: yes
	# Answer however long the answer took: by default Unbound drops a
	# reply it found after more than 1.9 s, when a client that asks once
	# (as the tests' do) gets nothing; a loaded machine can take that long.
	discard-timeout: 0
	access-control: 127.0.0.0/8 allow
	module-config: "validator iterator"
	# Answer nothing that is not one of the test zones: no root priming.
	local-zone: "." refuse
`, port, port, filepath.Join(dir, "unbound.log"), dir, filepath.Join(dir, "unbound.pid"))
	for _, z := range s.zones {
		fmt.Fprintf(&b, "\tlocal-zone: %q transparent\n\tdomain-insecure: %q\n", z.origin, z.origin)
		if z.signed {
			fmt.Fprintf(&b, "\ttrust-anchor: \"%s\"\n", strings.ReplaceAll(z.key.ToDS(dns.SHA256).String(), "\t", " "))
		}
	}
	for _, z := range s.zones {
		fmt.Fprintf(&b, "stub-zone:\n\tname: %q\n\tstub-addr: 127.0.0.1@%s\n", z.origin, dnsPort)
	}
	conf := filepath.Join(dir, "unbound.conf")
	cfg := b.String()
	// A signed zone must not be declared insecure.
	for _, z := range s.zones {
		if z.signed {
			cfg = strings.Replace(cfg, fmt.Sprintf("\tdomain-insecure: %q\n", z.origin), "", 1)
		}
	}
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(UnboundPath, "-d", "-c", conf)
	out := &testutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "unbound.log"))
			t.Logf("unbound output:\n%s%s", out.String(), log)
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c := &dns.Client{Timeout: time.Second}
	m := new(dns.Msg)
	m.SetQuestion(s.zones[0].origin, dns.TypeSOA)
	exited := make(chan struct{})
	go func() { cmd.Process.Wait(); close(exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, _, err := c.Exchange(m, addr); err == nil {
			return addr
		}
		select {
		case <-exited:
			t.Fatalf("unbound exited during start-up:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "unbound.log"))
			t.Fatalf("unbound did not answer on %s within 10s:\n%s%s", addr, out.String(), log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
