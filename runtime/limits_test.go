package runtime_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/runtime/authlimit"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

// Failed logins count per client address across protocols and
// connections: after authlimit.DefaultPolicy's free failures, spread over
// IMAP, POP3 and submission, the next login on yet another connection and
// protocol waits its turn, and then succeeds with the right password.
func TestAuthLimiterSharedAcrossProtocols(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := start(t, dir, 5*time.Second)
	ks := newKeystore(t, dir)
	ls := configure(t, h, ks)
	addr := func(id string) string { l := ls[id]; return l.Addr() }
	clientTLS := ks.clientConfig()

	plain := func(user, pass string) string {
		return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	}
	// imapFail fails a LOGIN and returns when it sent it: the limiter
	// records the failure between that and the reply, so pacing counted
	// from it is a sound lower bound however late the test reads the
	// reply.
	imapFail := func() (sent time.Time) {
		c := dialText(t, addr("imaps"), clientTLS)
		c.line()
		sent = time.Now()
		if got := c.imap("a", "LOGIN alice@example.com wrong"); !strings.HasPrefix(got, "a NO") {
			t.Fatalf("IMAP LOGIN with a wrong password: %q", got)
		}
		return sent
	}
	imapFail()
	c := dialText(t, addr("pop3s"), clientTLS)
	c.line()
	c.send("USER alice@example.com")
	c.line()
	c.send("PASS wrong")
	if got := c.line(); !strings.HasPrefix(got, "-ERR [AUTH]") {
		t.Fatalf("POP3 PASS with a wrong password: %q", got)
	}
	s := dialText(t, addr("submissions"), clientTLS)
	s.line()
	s.smtp("250", "EHLO client.example")
	s.smtp("535", "AUTH PLAIN %s", plain("alice@example.com", "wrong"))
	if authlimit.DefaultPolicy.Free != 3 {
		t.Fatalf("the test assumes 3 free failures, the policy has %d", authlimit.DefaultPolicy.Free)
	}
	failed := imapFail() // the 4th: from now on attempts are a second apart

	s2 := dialText(t, addr("submissions"), clientTLS)
	s2.line()
	s2.smtp("250", "EHLO client.example")
	s2.smtp("235", "AUTH PLAIN %s", plain("alice@example.com", alicePassword))
	if took := time.Since(failed); took < 900*time.Millisecond {
		t.Errorf("the login after the 4th failure came %v after it; want it paced at 1 s", took)
	}
}

// A client over a connection limit hears the protocol's refusal, over TLS
// on implicit-TLS ports, and is hung up on; the session already open keeps
// working.
func TestConnectionLimitReplies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := start(t, dir, 5*time.Second)
	ks := newKeystore(t, dir)
	ls := configure(t, h, ks)
	limited := testServer
	limited.MaxConnections = 1
	if _, err := h.client.SetServer(context.Background(), limited); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		config.ProtocolSMTP:       "421 4.7.0 mail.example.com Too many connections",
		config.ProtocolSubmission: "421 4.7.0 mail.example.com Too many connections",
		config.ProtocolIMAP:       "* BYE [UNAVAILABLE] Too many connections",
		config.ProtocolPOP3:       "-ERR [SYS/TEMP] too many connections",
	}
	for _, s := range stack {
		t.Run(s.id, func(t *testing.T) {
			l := ls[s.id]
			var cfg *tls.Config
			if s.mode == config.TLSImplicit {
				cfg = ks.clientConfig()
			}
			first := dialText(t, l.Addr(), cfg)
			greeting := first.line()
			second := dialText(t, l.Addr(), cfg)
			if got := second.line(); !strings.HasPrefix(got, want[s.protocol]) {
				t.Errorf("refused client got %q, want %q", got, want[s.protocol])
			}
			if rest := readAllQuiet(second.nc); rest != "" {
				t.Errorf("after the refusal: %q", rest)
			}
			if strings.HasPrefix(greeting, want[s.protocol]) {
				t.Errorf("the first client was refused: %q", greeting)
			}
			first.nc.Close()
		})
	}
}
