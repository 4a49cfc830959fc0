package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
)

// SIGTERM stops the runtime gracefully: the port closes at once, a message
// in flight still gets its 250, and the process exits 0 as soon as the
// last session ends, removing its pid file and control socket.
func TestSIGTERMDrainsInFlight(t *testing.T) {
	dir, tlsSettings, clientTLS := setup(t)
	smtps := config.Listener{Protocol: config.ProtocolSMTP, Address: "127.0.0.1", Port: testutil.FreePort(t), TLS: tlsSettings}
	p := serve(t, dir)
	ctx := context.Background()
	if _, err := p.client.PutUser(ctx, user, control.UserRequest{Password: userPassword}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.client.PutListener(ctx, "smtps", smtps); err != nil {
		t.Fatal(err)
	}

	conn, err := tls.Dial("tcp", smtps.Addr(), clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	c, err := smtp.NewClient(conn, "mail.example.com")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("someone@elsewhere.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(user); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: sigterm\r\n\r\nbegun before SIGTERM,\r\n")

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(testutil.HangGuard)
	for {
		nc, err := net.Dial("tcp", smtps.Addr())
		if errors.Is(err, syscall.ECONNREFUSED) {
			break
		}
		if err == nil {
			nc.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the port still accepts %v after SIGTERM", testutil.HangGuard)
		}
		time.Sleep(10 * time.Millisecond)
	}
	io.WriteString(w, "finished after it.\r\n")
	if err := w.Close(); err != nil {
		t.Fatalf("DATA in flight at SIGTERM: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Errorf("QUIT: %v", err)
	}
	if err := p.wait(testutil.HangGuard); err != nil {
		t.Fatalf("after the last session ended: %v", err)
	}
	for _, name := range []string{statedir.PIDFile, statedir.SocketFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", name, err)
		}
	}

	delivered, _ := filepath.Glob(filepath.Join(dir, "mail", "*", "example.com", "alice", "new", "*"))
	if len(delivered) != 1 {
		t.Fatalf("%d messages in alice's new/, want 1", len(delivered))
	}
	data, err := os.ReadFile(delivered[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(data), "begun before SIGTERM,\r\nfinished after it.\r\n") {
		t.Errorf("stored message: %q", data)
	}
}
