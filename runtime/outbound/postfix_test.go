package outbound

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil/dnstest"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil/postfixtest"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/tlsrpt"
)

// TestPostfixPeer delivers to Debian's Postfix as the destination MX: every
// message arrives once, Postfix finds nothing improper in our pipelining,
// and its own log shows the STARTTLS session
// with its TLS version and cipher; with require_tls and Postfix's
// certificate pinned, delivery is verified too.
func TestPostfixPeer(t *testing.T) {
	pf := postfixtest.Start(t, postfixtest.Options{
		Addr: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)), Hostname: "mx.dest.test", Domain: "dest.test",
	})
	zones := dnstest.Start(t, dnstest.Zone{Origin: "test.", Records: []string{
		"dest.test. 60 IN MX 10 mx.dest.test.",
		"mx.dest.test. 60 IN A 127.0.0.1",
	}})
	fp := fmt.Sprintf("%X", sha256Sum(pf.Cert.TLS.Leaf.Raw))
	h := newHarness(t, port(t, pf.Addr), config.Server{
		DNSResolvers: []string{zones.Addr},
		TLSPolicies:  []config.TLSPolicy{{Domain: "dest.test", RequireTLS: true, FingerprintsSHA256: []string{fp}}},
	})
	const n = 5
	// Queued together, so that a connection may send the next message's
	// commands behind the end of data of the one before (RFC 2920).
	var queued []string
	for i := range n {
		queued = append(queued, h.submit("alice@ours.test", fmt.Sprintf("user%d@dest.test", i)).ID)
	}
	for _, id := range queued {
		h.waitGone(id)
	}
	var msgs []string
	testutil.Eventually(t, "Postfix to deliver every message", func() bool {
		msgs, _ = pf.Maildir()
		return len(msgs) >= n
	})
	ids := map[string]int{}
	for _, m := range msgs {
		id := regexp.MustCompile(`(?m)^Message-ID: <([^>]+)>`).FindStringSubmatch(m)
		if id == nil {
			t.Fatalf("a message without our Message-ID arrived:\n%s", m)
		}
		ids[id[1]]++
	}
	if len(ids) != n || len(msgs) != n {
		t.Errorf("%d messages with %d distinct ids arrived, want %d once each", len(msgs), len(ids), n)
	}
	// Postfix logs through postlogd, after the maildir file is written:
	// wait for its log to catch up before reading it.
	testutil.Eventually(t, "Postfix to log every delivery", func() bool {
		return pf.Count("status=sent (delivered to maildir)") >= n
	})
	log := pf.Log()
	tlsLine := regexp.MustCompile(`TLS connection established from localhost\[127\.0\.0\.1\]: (TLSv1\.[23]) with cipher (\S+)`).FindStringSubmatch(log)
	if tlsLine == nil {
		t.Fatalf("Postfix's log shows no TLS session from us:\n%s", log)
	}
	t.Logf("Postfix saw %s with %s", tlsLine[1], tlsLine[2])
	if strings.Contains(log, "improper command pipelining") {
		t.Errorf("Postfix found our pipelining improper:\n%s", log)
	}
	if c := strings.Count(log, "status=sent (delivered to maildir)"); c != n {
		t.Errorf("Postfix delivered %d messages, want %d", c, n)
	}
	if !strings.Contains(h.logs.String(), `remote=mx.dest.test[127.0.0.1]`) {
		t.Error("our log does not name Postfix as the remote")
	}
	// The TLS report counts a success for each TLS session Postfix saw
	// (the pin is the operator's policy, not the domain's: no-policy-found).
	sessions := int64(strings.Count(log, "TLS connection established from localhost[127.0.0.1]"))
	h.checkReport("dest.test", reportWant{typ: tlsrpt.PolicyNotFound, ok: sessions})
}
