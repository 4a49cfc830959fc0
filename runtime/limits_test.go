package runtime_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/runtime/authlimit"
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
	imapFail := func() {
		c := dialText(t, addr("imaps"), clientTLS)
		c.line()
		if got := c.imap("a", "LOGIN alice@example.com wrong"); !strings.HasPrefix(got, "a NO") {
			t.Fatalf("IMAP LOGIN with a wrong password: %q", got)
		}
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
	imapFail() // the 4th: from now on attempts are a second apart
	failed := time.Now()

	s2 := dialText(t, addr("submissions"), clientTLS)
	s2.line()
	s2.smtp("250", "EHLO client.example")
	s2.smtp("235", "AUTH PLAIN %s", plain("alice@example.com", alicePassword))
	if took := time.Since(failed); took < 900*time.Millisecond {
		t.Errorf("the login after the 4th failure came %v after it; want it paced at 1 s", took)
	}
}
