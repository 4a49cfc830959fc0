package runtime_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/smtp"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil/pgtest"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// sendMail delivers one message over implicit TLS with net/smtp.
func sendMail(addr string, cfg *tls.Config, to, subject string) error {
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	c, err := smtp.NewClient(conn, "mail.example.com")
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Mail("someone@elsewhere.example"); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte("From: someone@elsewhere.example\r\nTo: " + to + "\r\nSubject: " + subject + "\r\n\r\nbody\r\n")); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// subjects logs in over IMAP and returns the subjects in INBOX.
func subjects(t *testing.T, addr string, cfg *tls.Config, user, password string) []string {
	t.Helper()
	c, err := imapclient.DialTLS(addr, &imapclient.Options{TLSConfig: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, password).Wait(); err != nil {
		t.Fatalf("IMAP login: %v", err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	all := imap.SeqSet{}
	all.AddRange(1, 0)
	msgs, err := c.Fetch(all, &imap.FetchOptions{Envelope: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		out = append(out, m.Envelope.Subject)
	}
	return out
}

// TestStoreChange moves a running server from the embedded store to
// PostgreSQL and back through the control API, as an apply that changes
// mailstack_server's store does: a database that cannot be reached is
// refused and changes nothing; a good one takes over every front end, the
// users API and delivery at once, without a restart; moving back finds
// the embedded store's mail where it was.
func TestStoreChange(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	dir := t.TempDir()
	h := start(t, dir, time.Second)
	ks := newKeystore(t, t.TempDir())
	ls := configure(t, h, ks)
	smtpsL, imapsL := ls["smtps"], ls["imaps"]
	smtps, imaps := smtpsL.Addr(), imapsL.Addr()
	ctx := context.Background()
	if err := sendMail(smtps, ks.clientConfig(), "alice@example.com", "embedded"); err != nil {
		t.Fatal(err)
	}

	bad := testServer
	bad.Store, bad.PostgresDSN = config.StorePostgres, strings.Replace(dsn, "password=", "password=wrong", 1)
	_, err := h.client.SetServer(ctx, bad)
	var apiErr *control.Error
	if !errors.As(err, &apiErr) || apiErr.Code != http.StatusBadRequest || !strings.Contains(err.Error(), "PostgreSQL") || strings.Contains(err.Error(), "password=") {
		t.Fatalf("SetServer with a wrong database password: %v; want a refusal that does not show the DSN", err)
	}
	if got := subjects(t, imaps, ks.clientConfig(), "alice@example.com", alicePassword); len(got) != 1 || got[0] != "embedded" {
		t.Fatalf("after a refused store change IMAP shows %q", got)
	}

	pg := testServer
	pg.Store, pg.PostgresDSN = config.StorePostgres, dsn
	if _, err := h.client.SetServer(ctx, pg); err != nil {
		t.Fatal(err)
	}
	got, err := h.client.Server(ctx)
	if err != nil || got.Store != config.StorePostgres || got.PostgresDSN != "" {
		t.Fatalf("GET server = %+v, %v; want store postgres and no DSN", got, err)
	}
	doc, err := statedir.Local(dir).LoadConfig(ctx)
	if err != nil || doc.Server.PostgresDSN != dsn {
		t.Fatalf("config.json does not hold the store: %v", err)
	}
	if _, err := h.client.User(ctx, "alice@example.com"); !control.IsNotFound(err) {
		t.Fatalf("alice in the new, empty database: %v", err)
	}
	h.putUser("alice@example.com", alicePassword)
	if err := sendMail(smtps, ks.clientConfig(), "alice@example.com", "postgres"); err != nil {
		t.Fatal(err)
	}
	if got := subjects(t, imaps, ks.clientConfig(), "alice@example.com", alicePassword); len(got) != 1 || got[0] != "postgres" {
		t.Fatalf("IMAP on the PostgreSQL store shows %q", got)
	}

	if _, err := h.client.SetServer(ctx, testServer); err != nil {
		t.Fatal(err)
	}
	if got := subjects(t, imaps, ks.clientConfig(), "alice@example.com", alicePassword); len(got) != 1 || got[0] != "embedded" {
		t.Fatalf("back on the embedded store IMAP shows %q", got)
	}
}
