package smtp

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

// TestLog: one line per delivery and one per session, with the fields the
// issue names; no password and no message body in any line.
func TestLog(t *testing.T) {
	var out testutil.SyncBuffer
	logger := slog.New(slog.NewJSONHandler(&out, nil))
	ts := startServer(t, modeImplicit, Options{Submission: true, Logger: logger})
	c := dial(t, ts.addr, true)
	c.reply()
	c.cmd(ehlo)
	c.cmd("AUTH PLAIN " + plain("alice@example.com", "secret-guess"))
	c.cmd(goodAuth)
	c.cmd("MAIL FROM:<alice@example.com>")
	c.cmd("RCPT TO:<bob@example.com>")
	c.cmd("DATA")
	c.cmd("From: alice@example.com\r\nSubject: private\r\n\r\nconfidential body\r\n.")
	c.cmd("QUIT")
	ts.Shutdown(t.Context())

	logged := out.String()
	for _, secret := range []string{"secret-guess", testPassword, "confidential body", "private"} {
		if strings.Contains(logged, secret) {
			t.Errorf("log contains %q:\n%s", secret, logged)
		}
	}
	lines := map[string][]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(logged), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		lines[rec["msg"].(string)] = append(lines[rec["msg"].(string)], rec)
	}
	want := map[string][]string{
		"login failed":      {"user", "remote", "failures"},
		"message delivered": {"from", "recipients", "size", "remote", "tls", "user"},
		"session closed":    {"remote", "helo", "tls", "user", "messages", "bytes", "duration"},
	}
	for msg, fields := range want {
		if len(lines[msg]) != 1 {
			t.Errorf("%d %q lines, want 1:\n%s", len(lines[msg]), msg, logged)
			continue
		}
		for _, f := range fields {
			if _, ok := lines[msg][0][f]; !ok {
				t.Errorf("%q line lacks %q: %v", msg, f, lines[msg][0])
			}
		}
	}
	if d := lines["message delivered"]; len(d) == 1 && (d[0]["tls"] != true || d[0]["recipients"] != 1.0) {
		t.Errorf("delivery line %v", d[0])
	}
}
