package runtime_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/connid"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
)

// TestEndToEnd configures a whole runtime through the control API, as the
// provider does, and talks to it with mail clients no one here wrote:
// Python's smtplib, imaplib and poplib, curl and openssl s_client.
func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	ks := newKeystore(t, t.TempDir())
	h := start(t, dir, 5*time.Second)
	listeners := configure(t, h, ks)
	ports := map[string]int{}
	for id, l := range listeners {
		ports[id] = l.Port
	}

	t.Run("status", func(t *testing.T) {
		st := h.status()
		if st.Version != "e2e-test" || st.PID != os.Getpid() || st.Uptime == "" || st.StartedAt.IsZero() {
			t.Errorf("status: version %q pid %d uptime %q started %s", st.Version, st.PID, st.Uptime, st.StartedAt)
		}
		if len(st.Listeners) != len(stack) {
			t.Errorf("%d listeners in status, want %d", len(st.Listeners), len(stack))
		}
		for id, l := range listeners {
			ls := st.Listeners[id]
			if !ls.Bound || ls.Address != l.Addr() || ls.Mode != l.TLS.Mode || ls.Protocol != l.Protocol ||
				ls.CertificateFingerprint != ks.fingerprint || ls.CertificateNotAfter.Before(time.Now()) ||
				ls.LastError != "" || ls.OpenConnections != 0 {
				t.Errorf("listener %s: %+v", id, ls)
			}
		}
		obj, err := h.client.Listener(context.Background(), "imaps")
		if err != nil {
			t.Fatal(err)
		}
		if obj.Config.TLS.KeystorePassword != "" {
			t.Error("GET listener shows the keystore password")
		}
	})

	t.Run("python", func(t *testing.T) {
		python := lookTool(t, "python3")
		script, err := filepath.Abs("testdata/mailclients.py")
		if err != nil {
			t.Fatal(err)
		}
		portsJSON, _ := json.Marshal(ports)
		env := []string{"ALICE_PASSWORD=" + alicePassword, "BOB_PASSWORD=" + bobPassword}
		// imap and pop3 fetch what smtp and submission sent.
		token := "py" + strconv.FormatInt(time.Now().UnixNano(), 36)
		for _, scenario := range []string{"smtp", "submission", "imap", "pop3"} {
			mustRun(t, "", env, python, script, scenario, ks.caFile, string(portsJSON), token)
		}
	})

	t.Run("curl", func(t *testing.T) {
		curl := lookTool(t, "curl")
		msg := filepath.Join(t.TempDir(), "msg.eml")
		user := []string{"--user", "carol@example.com:" + carolPassword}
		for i, send := range []struct {
			url   string
			extra []string
		}{
			{"smtps://127.0.0.1:" + strconv.Itoa(ports["smtps"]), nil},
			{"smtp://127.0.0.1:" + strconv.Itoa(ports["smtp"]), []string{"--ssl-reqd"}},
			{"smtps://127.0.0.1:" + strconv.Itoa(ports["submissions"]), user},
			{"smtp://127.0.0.1:" + strconv.Itoa(ports["submission"]), append([]string{"--ssl-reqd"}, user...)},
		} {
			body := "From: carol@example.com\r\nTo: carol@example.com\r\nSubject: curl " + strconv.Itoa(i) + "\r\n\r\nSent by curl " + strconv.Itoa(i) + ".\r\n"
			if err := os.WriteFile(msg, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{"-sS", "--url", send.url, "--cacert", ks.caFile, "--mail-from", "carol@example.com",
				"--mail-rcpt", "carol@example.com", "--upload-file", msg}
			args = append(args, send.extra...)
			mustRun(t, "", nil, curl, args...)
		}
		for i, fetch := range []struct{ url, extra string }{
			{"imaps://127.0.0.1:" + strconv.Itoa(ports["imaps"]) + "/INBOX;UID=1", ""},
			{"imap://127.0.0.1:" + strconv.Itoa(ports["imap"]) + "/INBOX;UID=2", "--ssl-reqd"},
			{"pop3s://127.0.0.1:" + strconv.Itoa(ports["pop3s"]) + "/3", ""},
			{"pop3://127.0.0.1:" + strconv.Itoa(ports["pop3"]) + "/4", "--ssl-reqd"},
		} {
			args := append([]string{"-sS", "--url", fetch.url, "--cacert", ks.caFile}, user...)
			args = append(args, strings.Fields(fetch.extra)...)
			out := mustRun(t, "", nil, curl, args...)
			if want := "Sent by curl " + strconv.Itoa(i) + "."; !strings.Contains(out, want) {
				t.Errorf("%s: got %q, want %q", fetch.url, out, want)
			}
		}
		// Without --ssl-reqd's TLS, curl cannot log in to a STARTTLS port
		// that refuses credentials in clear.
		args := append([]string{"-sS", "--url", "imap://127.0.0.1:" + strconv.Itoa(ports["imap"]) + "/INBOX;UID=1"}, user...)
		if out, err := runTool(t, "", nil, curl, args...); err == nil {
			t.Errorf("curl logged in over plain IMAP:\n%s", out)
		}
		// The MX is no relay.
		args = []string{"-sS", "--url", "smtps://127.0.0.1:" + strconv.Itoa(ports["smtps"]), "--cacert", ks.caFile,
			"--mail-from", "a@elsewhere.example", "--mail-rcpt", "friend@other.example", "--upload-file", msg}
		if out, err := runTool(t, "", nil, curl, args...); err == nil || !strings.Contains(out, "55") {
			t.Errorf("relay through the MX: %v\n%s", err, out)
		}
	})

	t.Run("openssl s_client", func(t *testing.T) {
		openssl := lookTool(t, "openssl")
		for _, tc := range []struct {
			proto, id, input string
			want             []string
			notWant          string
		}{
			{"smtp", "smtp", "EHLO openssl.example\nQUIT\n", []string{"250-", "221 "}, "STARTTLS"},
			{"smtp", "submission", "EHLO openssl.example\nQUIT\n", []string{"AUTH PLAIN LOGIN", "221 "}, "STARTTLS"},
			{"imap", "imap", "a1 CAPABILITY\na2 LOGIN alice@example.com " + alicePassword + "\na3 LOGOUT\n", []string{"AUTH=PLAIN", "a2 OK", "a3 OK"}, "LOGINDISABLED"},
			{"pop3", "pop3", "CAPA\nUSER bob@example.com\nPASS " + bobPassword + "\nQUIT\n", []string{"USER", "+OK"}, "STLS"},
		} {
			l := listeners[tc.id]
			args := []string{"s_client", "-starttls", tc.proto, "-connect", l.Addr(), "-CAfile", ks.caFile,
				"-verify_return_error", "-quiet", "-crlf"}
			out := mustRun(t, tc.input, nil, openssl, args...)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("%s: %q missing from\n%s", tc.id, w, out)
				}
			}
			if strings.Contains(out, tc.notWant) {
				t.Errorf("%s: %q offered after STARTTLS:\n%s", tc.id, tc.notWant, out)
			}
		}
	})

	t.Run("bad changes leave everything serving", func(t *testing.T) {
		before, err := os.ReadFile(filepath.Join(dir, statedir.ConfigFile))
		if err != nil {
			t.Fatal(err)
		}
		imaps := listeners["imaps"]
		imap := dialText(t, imaps.Addr(), ks.clientConfig())
		imap.line()
		if got := imap.imap("a", "LOGIN alice@example.com "+alicePassword); !strings.Contains(got, "OK") {
			t.Fatal(got)
		}
		busy, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()

		badPassword := listeners["pop3s"]
		badPassword.TLS.KeystorePassword = "not-the-password"
		newBadPassword := badPassword
		newBadPassword.Port = testutil.FreePort(t)
		badPort := listeners["imap"]
		badPort.Port = busy.Addr().(*net.TCPAddr).Port
		badAlias := listeners["smtps"]
		badAlias.TLS.Alias = "nope"
		for _, tc := range []struct {
			name, id string
			l        config.Listener
			code     int
			mention  string
		}{
			{"new listener, bad keystore password", "new-pop3s", newBadPassword, http.StatusBadRequest, ks.path},
			{"existing listener, bad keystore password", "pop3s", badPassword, http.StatusBadRequest, ks.path},
			{"new listener, port in use", "new-imap", badPort, http.StatusConflict, busy.Addr().String()},
			{"existing listener, port in use", "imap", badPort, http.StatusConflict, busy.Addr().String()},
			{"existing listener, unknown alias", "smtps", badAlias, http.StatusBadRequest, "nope"},
		} {
			_, err := h.client.PutListener(context.Background(), tc.id, tc.l)
			var apiErr *control.Error
			if !errors.As(err, &apiErr) || apiErr.Code != tc.code || !strings.Contains(apiErr.Message, tc.mention) {
				t.Errorf("%s: %v; want %d naming %s", tc.name, err, tc.code, tc.mention)
				continue
			}
			if strings.Contains(apiErr.Message, "not-the-password") || strings.Contains(apiErr.Message, keystorePassword) {
				t.Errorf("%s: the error shows a password: %s", tc.name, apiErr.Message)
			}
		}
		after, err := os.ReadFile(filepath.Join(dir, statedir.ConfigFile))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Error("config.json changed after refused changes")
		}
		if _, err := h.client.Listener(context.Background(), "new-imap"); !control.IsNotFound(err) {
			t.Errorf("a refused listener exists: %v", err)
		}
		assertServing(t, h, listeners, ks)
		if got := imap.imap("b", "SELECT INBOX"); !strings.Contains(got, "b OK") {
			t.Errorf("IMAP session in flight: %q", got)
		}
	})

	t.Run("changing one listener keeps sessions on the others", func(t *testing.T) {
		imaps, pop3s, smtps := listeners["imaps"], listeners["pop3s"], listeners["smtps"]
		imap := dialText(t, imaps.Addr(), ks.clientConfig())
		imap.line()
		imap.imap("a", "LOGIN alice@example.com "+alicePassword)
		imap.imap("b", "SELECT INBOX")
		imap.send("i IDLE")
		if got := imap.line(); !strings.HasPrefix(got, "+ ") {
			t.Fatalf("IDLE: %q", got)
		}
		pop := dialText(t, pop3s.Addr(), ks.clientConfig())
		pop.line()
		pop.send("USER bob@example.com")
		pop.line()
		pop.send("PASS " + bobPassword)
		if got := pop.line(); !strings.HasPrefix(got, "+OK") {
			t.Fatal(got)
		}
		mx := dialText(t, smtps.Addr(), ks.clientConfig())
		mx.smtpReply()
		mx.smtp("250", "EHLO go.example")
		mx.smtp("250", "MAIL FROM:<someone@elsewhere.example>")
		mx.smtp("250", "RCPT TO:<alice@example.com>")
		mx.smtp("354", "DATA")
		mx.send("Subject: in flight\r\n\r\nstarted before the change")

		// Change the SMTP STARTTLS listener's mode there and back, move
		// submission to another port, remove pop3 and add it again.
		smtp := listeners["smtp"]
		smtp.TLS.Mode = config.TLSImplicit
		h.putListener("smtp", smtp)
		smtp.TLS.Mode = config.TLSStartTLS
		h.putListener("smtp", smtp)
		sub := listeners["submission"]
		sub.Port = testutil.FreePort(t)
		h.putListener("submission", sub)
		listeners["submission"] = sub
		if err := h.client.DeleteListener(context.Background(), "pop3"); err != nil {
			t.Fatal(err)
		}
		h.putListener("pop3", listeners["pop3"])
		h.putUser("dave@example.com", "dave-secret-5555")
		// A new domain and connection limits apply without new front ends.
		srv := testServer
		srv.Domains = []string{"example.com", "example.org"}
		srv.MaxConnections = 500
		if _, err := h.client.SetServer(context.Background(), srv); err != nil {
			t.Fatal(err)
		}
		h.putUser("erin@example.org", "erin-secret-7777")

		imap.send("DONE")
		if got := imap.imapTagged("i"); !strings.HasPrefix(got, "i OK") {
			t.Errorf("IDLE across the changes: %q", got)
		}
		if got := imap.imap("c", "NOOP"); !strings.HasPrefix(got, "c OK") {
			t.Errorf("IMAP session: %q", got)
		}
		pop.send("STAT")
		if got := pop.line(); !strings.HasPrefix(got, "+OK") {
			t.Errorf("POP3 session: %q", got)
		}
		mx.send(".")
		if got := mx.smtpReply(); !strings.HasPrefix(got, "250") {
			t.Errorf("SMTP DATA in flight: %q", got)
		}
		mx.smtp("221", "QUIT")
		mx = dialText(t, smtps.Addr(), ks.clientConfig())
		mx.smtpReply()
		mx.smtp("250", "EHLO go.example")
		mx.smtp("250", "MAIL FROM:<someone@elsewhere.example>")
		mx.smtp("250", "RCPT TO:<erin@example.org>")
		mx.smtp("221", "QUIT")
		assertServing(t, h, listeners, ks)
	})

	t.Run("logs: one line per session and delivery, no secrets", func(t *testing.T) {
		// Failed logins too: the wrong password must not be logged either.
		const wrong = "wrong-secret-3141"
		imaps, pop3s, subs := listeners["imaps"], listeners["pop3s"], listeners["submissions"]
		c := dialText(t, imaps.Addr(), ks.clientConfig())
		c.line()
		if got := c.imap("a", "LOGIN alice@example.com "+wrong); !strings.HasPrefix(got, "a NO") {
			t.Errorf("IMAP LOGIN with a wrong password: %q", got)
		}
		c = dialText(t, pop3s.Addr(), ks.clientConfig())
		c.line()
		c.send("USER alice@example.com")
		c.line()
		c.send("PASS " + wrong)
		if got := c.line(); !strings.HasPrefix(got, "-ERR") {
			t.Errorf("POP3 PASS with a wrong password: %q", got)
		}
		plain := base64.StdEncoding.EncodeToString([]byte("\x00alice@example.com\x00" + wrong))
		c = dialText(t, subs.Addr(), ks.clientConfig())
		c.smtpReply()
		c.smtp("250", "EHLO go.example")
		c.smtp("535", "AUTH PLAIN %s", plain)
		c.smtp("221", "QUIT")
		// Every line about a connection names its session, and the lines
		// of one session share the id: the submission's failed login and
		// its session line (written once QUIT is processed).
		testutil.Eventually(t, "the submission's session line", func() bool {
			for _, msgs := range logSessions(t, h.logs.String()) {
				if slices.Contains(msgs, "login failed") && slices.Contains(msgs, "session closed") {
					return true
				}
			}
			return false
		})
		logs := h.logs.String()
		for _, secret := range []string{keystorePassword, alicePassword, bobPassword, carolPassword, "dave-secret-5555", "erin-secret-7777", "not-the-password", wrong, plain} {
			if strings.Contains(logs, secret) {
				t.Errorf("the log contains the secret %q", secret)
			}
		}
		for _, want := range []string{`"msg":"message delivered"`, `"msg":"session closed"`, `"msg":"imap session"`, `"msg":"pop3 session"`} {
			if !strings.Contains(logs, want) {
				t.Errorf("no %s line in the log", want)
			}
		}
	})

	t.Run("restart comes back the same", func(t *testing.T) {
		statusBefore := h.status()
		path := filepath.Join(dir, statedir.ConfigFile)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("config.json mode %v, want 0600", fi.Mode().Perm())
		}
		doc, err := statedir.Local(dir).LoadConfig(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for id, l := range listeners {
			if got := doc.Listeners[id]; got.Addr() != l.Addr() || got.TLS.Mode != l.TLS.Mode || got.Protocol != l.Protocol {
				t.Errorf("config.json listener %s: %+v, want %+v", id, got, l)
			}
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".tmp") {
				t.Errorf("temporary file %s left in the state directory", e.Name())
			}
		}
		if err := h.stop(); err != nil {
			t.Fatalf("Serve returned %v", err)
		}
		h2 := start(t, dir, 5*time.Second)
		statusAfter := h2.status()
		for id, before := range statusBefore.Listeners {
			after := statusAfter.Listeners[id]
			if after.Address != before.Address || after.Mode != before.Mode || after.CertificateFingerprint != before.CertificateFingerprint || !after.Bound {
				t.Errorf("listener %s after restart: %+v, before: %+v", id, after, before)
			}
		}
		imaps := listeners["imaps"]
		imap := dialText(t, imaps.Addr(), ks.clientConfig())
		imap.line()
		if got := imap.imap("a", "LOGIN carol@example.com "+carolPassword); !strings.HasPrefix(got, "a OK") {
			t.Fatalf("login after restart: %q", got)
		}
		imap.send("b STATUS INBOX (MESSAGES UIDVALIDITY)")
		if got := imap.line(); !strings.Contains(got, "MESSAGES 4") {
			t.Errorf("carol's INBOX after restart: %q", got)
		}
	})
}

// assertServing checks that every listener greets over its TLS mode with
// the keystore's certificate.
func assertServing(t *testing.T, h *harness, listeners map[string]config.Listener, ks *testKeystore) {
	t.Helper()
	ids := make([]string, 0, len(listeners))
	for id := range listeners {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	st := h.status()
	for _, id := range ids {
		l := listeners[id]
		if ls := st.Listeners[id]; !ls.Bound || ls.Address != l.Addr() || ls.Mode != l.TLS.Mode || ls.CertificateFingerprint != ks.fingerprint {
			t.Errorf("%s: status %+v", id, ls)
		}
		cfg := ks.clientConfig()
		if l.TLS.Mode != config.TLSImplicit {
			cfg = nil
		}
		c := dialText(t, l.Addr(), cfg)
		greeting := c.line()
		want := map[string]string{config.ProtocolSMTP: "220 ", config.ProtocolSubmission: "220 ", config.ProtocolIMAP: "* OK", config.ProtocolPOP3: "+OK"}[l.Protocol]
		if !strings.HasPrefix(greeting, want) {
			t.Errorf("%s greets %q", id, greeting)
		}
		c.nc.Close()
	}
}

// logSessions reads a runtime's JSON log and returns the messages of the
// lines about connections by session id; a line that is not JSON, or a
// connection's line without a session id, fails the test.
func logSessions(t *testing.T, logs string) map[string][]string {
	t.Helper()
	sessions := map[string][]string{}
	for line := range strings.Lines(logs) {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		msg, _ := rec["msg"].(string)
		switch msg {
		case "message delivered", "session closed", "imap session", "pop3 session", "login failed", "imap login failed":
			id, _ := rec[connid.Key].(string)
			if len(id) != 12 {
				t.Fatalf("%q line without a session id: %s", msg, line)
			}
			sessions[id] = append(sessions[id], msg)
		}
	}
	return sessions
}
