package smtp

import (
	"strings"
	"testing"
)

func TestGreetingEHLOSTARTTLSQUIT(t *testing.T) {
	ts := startServer(t, modeStartTLS, Options{})
	c := dial(t, ts.addr, false)
	if got := c.reply(); got != "220 "+testHostname+" ESMTP Service Ready" {
		t.Fatalf("greeting %q", got)
	}
	if got := c.cmd("EHLO client.example"); !strings.Contains(got, "STARTTLS") {
		t.Fatalf("EHLO %q", got)
	}
	if got := c.cmd("STARTTLS"); !strings.HasPrefix(got, "220 ") {
		t.Fatalf("STARTTLS %q", got)
	}
	c.startTLS()
	if got := c.cmd("EHLO client.example"); strings.Contains(got, "STARTTLS") || !strings.HasPrefix(got, "250-") {
		t.Fatalf("EHLO after TLS %q", got)
	}
	if got := c.cmd("QUIT"); !strings.HasPrefix(got, "221 ") {
		t.Fatalf("QUIT %q", got)
	}
}
