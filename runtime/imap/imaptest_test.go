package imap

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
)

// imaptestBinary builds Dovecot's imaptest from third_party/imaptest into
// .tools/imaptest (once; later runs reuse it) and returns the binary and
// its scripted tests. Without its build dependencies the test is skipped,
// except in CI (CI set), whose .ci/run installs them.
func imaptestBinary(t testing.TB) (bin, tests string) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(filepath.Join(root, "third_party/imaptest/build"))
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("imaptest cannot be built here: %v\n%s", err, stderr.String())
		}
		t.Fatalf("building imaptest: %v\n%s", err, stderr.String())
	}
	bin = strings.TrimSpace(string(out))
	return bin, filepath.Join(filepath.Dir(bin), "tests")
}

// imaptestSummary is the closing summary of imaptest's scripted tests.
type imaptestSummary struct {
	groups, failedGroups, skippedGroups int
	baseFailed, baseTotal               int
	extFailed, extTotal                 int
}

var (
	imaptestGroupsRe = regexp.MustCompile(`(?m)^(\d+) test groups: (\d+) failed, (\d+) skipped`)
	imaptestBaseRe   = regexp.MustCompile(`(?m)^base protocol: (\d+)/(\d+) individual commands failed`)
	imaptestExtRe    = regexp.MustCompile(`(?m)^extensions: (\d+)/(\d+) individual commands failed`)
)

func parseImaptestSummary(out string) (imaptestSummary, bool) {
	var s imaptestSummary
	g, b, e := imaptestGroupsRe.FindStringSubmatch(out), imaptestBaseRe.FindStringSubmatch(out), imaptestExtRe.FindStringSubmatch(out)
	if g == nil || b == nil || e == nil {
		return s, false
	}
	n := func(v string) int { i, _ := strconv.Atoi(v); return i }
	s.groups, s.failedGroups, s.skippedGroups = n(g[1]), n(g[2]), n(g[3])
	s.baseFailed, s.baseTotal = n(b[1]), n(b[2])
	s.extFailed, s.extTotal = n(e[1]), n(e[2])
	return s, true
}

// dovecotExtCommands is how many extension commands imaptest's scripted
// tests ran against Dovecot 2.3.19 from Debian 12 on this machine: the
// floor TestImaptest holds the server to when it cannot run Dovecot.
const dovecotExtCommands = 330

// TestImaptest runs Dovecot's imaptest compliance suite (its scripted
// tests) against the server over implicit TLS and over STARTTLS: no test
// group may fail, and imaptest must run at least as many extension
// commands as against Dovecot, run live beside them when it is installed
// (a script whose capabilities a server does not advertise is left out of
// its count). imaptest speaks no STARTTLS itself, so a relay on loopback
// upgrades its connection first and hands it the rest.
func TestImaptest(t *testing.T) {
	if testing.Short() {
		t.Skip("imaptest takes about a minute")
	}
	bin, tests := imaptestBinary(t)
	dovecot := dovecotImaptest(t, bin, tests)
	ext := map[string]int{}
	for _, mode := range []string{"implicit", "starttls"} {
		t.Run(mode, func(t *testing.T) {
			env := newEnv(t, "")
			var port string
			tlsArgs := []string{"ssl=any-cert"}
			if mode == "implicit" {
				_, port, _ = net.SplitHostPort(env.tlsAddr)
			} else {
				_, port, _ = net.SplitHostPort(startTLSRelay(t, env.addr, env.tls.ClientConfig(testServerName)))
				tlsArgs = nil
			}
			sum, out, err := runImaptestScripts(bin, tests, port, tlsArgs...)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("imaptest over %s: %d groups, %d failed, %d skipped; base %d/%d commands failed, extensions %d/%d",
				mode, sum.groups, sum.failedGroups, sum.skippedGroups, sum.baseFailed, sum.baseTotal, sum.extFailed, sum.extTotal)
			if sum.failedGroups != 0 || sum.baseFailed != 0 || sum.extFailed != 0 {
				t.Fatalf("imaptest found failures over %s:\n%s", mode, out)
			}
			ext[mode] = sum.extTotal
		})
	}
	floor := <-dovecot
	for mode, n := range ext {
		if n < floor {
			t.Errorf("imaptest ran %d extension commands over %s, fewer than the %d it runs against Dovecot", n, mode, floor)
		}
	}
}

// runImaptestScripts runs imaptest's scripted tests as testUser against
// 127.0.0.1:port and returns its summary and output.
func runImaptestScripts(bin, tests, port string, extra ...string) (imaptestSummary, []byte, error) {
	args := append([]string{"user=" + testUser, "pass=" + testPass, "test=" + tests, "host=127.0.0.1", "port=" + port}, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH=/usr/lib/dovecot")
	out, err := cmd.CombinedOutput()
	sum, ok := parseImaptestSummary(string(out))
	if !ok {
		return sum, out, fmt.Errorf("imaptest printed no summary (%v):\n%s", err, out)
	}
	return sum, out, nil
}

// dovecotImaptest starts imaptest's scripted tests against Dovecot from
// Debian (started as BenchmarkImaptestStress starts it) and returns a
// channel that yields the extension commands they ran. Without Dovecot's
// IMAP server it yields dovecotExtCommands, except in CI, whose .ci/run
// installs it. Dovecot takes longer than mailstack: it runs beside.
func dovecotImaptest(t *testing.T, bin, tests string) <-chan int {
	t.Helper()
	res := make(chan int, 1)
	dovecot, err := exec.LookPath("dovecot")
	if err == nil {
		_, err = os.Stat("/usr/lib/dovecot/imap")
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Dovecot's IMAP server (dovecot-core, dovecot-imapd) is not installed: %v", err)
		}
		t.Logf("Dovecot's IMAP server is not installed (%v): comparing with its recorded %d extension commands", err, dovecotExtCommands)
		res <- dovecotExtCommands
		return res
	}
	env := newEnv(t, "")
	_, port, _ := net.SplitHostPort(startDovecot(t, dovecot, env, testUser, argon2PHC(testPass, store.DefaultArgon2)))
	done := make(chan struct{})
	t.Cleanup(func() { <-done }) // before Dovecot stops
	go func() {
		defer close(done)
		sum, out, err := runImaptestScripts(bin, tests, port, "ssl=any-cert")
		if err != nil || sum.groups == 0 {
			t.Errorf("imaptest against Dovecot: %v\n%s", err, out)
		}
		t.Logf("imaptest against Dovecot: %d groups, %d failed; extensions %d/%d failed", sum.groups, sum.failedGroups, sum.extFailed, sum.extTotal)
		res <- sum.extTotal
	}()
	return res
}

// startTLSRelay listens on loopback and, for each connection, dials the
// STARTTLS listener at addr, upgrades with STARTTLS and relays the client
// over the TLS connection. The client gets a greeting without capabilities,
// so that it asks the server for them after TLS.
func startTLSRelay(t *testing.T, addr string, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if err := relayStartTLS(c, addr, cfg); err != nil {
					t.Logf("STARTTLS relay: %v", err)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// relayStartTLS connects client c to the STARTTLS listener at addr through
// a TLS connection made with STARTTLS.
func relayStartTLS(c net.Conn, addr string, cfg *tls.Config) error {
	sc, err := net.DialTimeout("tcp", addr, testutil.HangGuard)
	if err != nil {
		return err
	}
	defer sc.Close()
	sc.SetDeadline(time.Now().Add(testutil.HangGuard))
	r := bufio.NewReader(sc)
	if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "* OK") {
		return fmt.Errorf("greeting %q: %v", l, err)
	}
	if _, err := io.WriteString(sc, "r STARTTLS\r\n"); err != nil {
		return err
	}
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if strings.HasPrefix(l, "r ") {
			if !strings.HasPrefix(l, "r OK") {
				return fmt.Errorf("STARTTLS answered %q", l)
			}
			break
		}
	}
	up := tls.Client(sc, cfg)
	if err := up.Handshake(); err != nil {
		return err
	}
	sc.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "* OK relayed over STARTTLS\r\n"); err != nil {
		return err
	}
	go func() {
		io.Copy(up, c)
		up.CloseWrite()
	}()
	_, err = io.Copy(c, up)
	return err
}
