package runtime_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil/netns"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

// cleartextClient is what Python's smtplib, imaplib and poplib see of the
// submission, IMAP and POP3 listeners at host (ports in argv): whether
// each offers a login in clear and what a login with the right password
// gets. Over submission AUTH PLAIN is sent even when it is not offered.
const cleartextClient = `
import base64, imaplib, poplib, smtplib, sys
host, sub, imp, pop, user, pw = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
s = smtplib.SMTP(host, sub, timeout=10)
s.ehlo()
print("submission offered", s.has_extn("auth"))
code, _ = s.docmd("AUTH", "PLAIN " + base64.b64encode(("\0%s\0%s" % (user, pw)).encode()).decode())
print("submission login", code)
s.quit()
m = imaplib.IMAP4(host, imp, timeout=10)
print("imap offered", "AUTH=PLAIN" in m.capabilities and "LOGINDISABLED" not in m.capabilities)
try:
    m.login(user, pw)
    print("imap login OK")
except imaplib.IMAP4.error as e:
    print("imap login", e)
m.logout()
p = poplib.POP3(host, pop, timeout=10)
print("pop3 offered", "USER" in p.capa())
try:
    p.user(user)
    p.pass_(pw)
    print("pop3 login OK")
except poplib.error_proto as e:
    print("pop3 login", e)
p.quit()
`

// TestClearTextLoginOnlyFromLoopback: on listeners with tls.mode "none" a
// password may cross in clear only from loopback (Dovecot's
// disable_plaintext_auth rule). Clients in a network namespace of their
// own, reaching the runtime on a veth address, are offered no AUTH, USER
// or AUTH=PLAIN (IMAP says LOGINDISABLED) and their right password is
// refused; the same clients on 127.0.0.1 log in. The password is in no
// log line.
func TestClearTextLoginOnlyFromLoopback(t *testing.T) {
	python := lookTool(t, "python3")
	rh := netns.New(t)
	h := start(t, t.TempDir(), time.Second)
	h.putUser("alice@example.com", alicePassword)

	type ports struct{ submission, imap, pop3 int }
	listen := func(addr string) ports {
		p := testutil.FreePorts(t, 3)
		for i, proto := range []string{config.ProtocolSubmission, config.ProtocolIMAP, config.ProtocolPOP3} {
			id := fmt.Sprintf("%s-%s", proto, strings.ReplaceAll(addr, ".", "-"))
			h.putListener(id, config.Listener{Protocol: proto, Address: addr, Port: p[i], TLS: config.TLS{Mode: config.TLSNone}})
		}
		return ports{p[0], p[1], p[2]}
	}
	args := func(addr string, p ports) []string {
		return []string{"-c", cleartextClient, addr, fmt.Sprint(p.submission), fmt.Sprint(p.imap), fmt.Sprint(p.pop3), "alice@example.com", alicePassword}
	}

	network := listen(rh.LocalIP)
	out, err := rh.Exec(python, args(rh.LocalIP, network)...)
	if err != nil {
		t.Fatalf("clients from %s: %v\n%s", rh.IP, err, out)
	}
	for _, want := range []string{
		"submission offered False", "submission login 523",
		"imap offered False", "imap login b'[PRIVACYREQUIRED]",
		"pop3 offered False", "pop3 login b'-ERR [AUTH]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("clients from %s (not loopback): no %q in\n%s", rh.IP, want, out)
		}
	}

	loopback := listen("127.0.0.1")
	out, err = runTool(t, "", nil, python, args("127.0.0.1", loopback)...)
	if err != nil {
		t.Fatalf("clients on loopback: %v\n%s", err, out)
	}
	for _, want := range []string{
		"submission offered True", "submission login 235",
		"imap offered True", "imap login OK",
		"pop3 offered True", "pop3 login OK",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("clients on loopback: no %q in\n%s", want, out)
		}
	}

	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "clear-text AUTH refused") || !strings.Contains(logs, rh.IP) {
		t.Errorf("the refused submission login from %s is not logged:\n%s", rh.IP, logs)
	}
	if strings.Contains(logs, alicePassword) {
		t.Error("the password is in the runtime's log")
	}
}
