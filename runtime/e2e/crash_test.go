package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/smtp"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
)

// TestKill9LosesNoAcknowledgedMessage streams deliveries from concurrent
// SMTP clients (net/smtp, over implicit TLS) into the real runtime, kills
// it with SIGKILL in the middle, restarts it, and does that a few times.
// Then every message that got a 250 must be in the Maildir and in IMAP,
// byte for byte, and nothing visible may be a partial message: each
// message carries the SHA-256 of its own body.
func TestKill9LosesNoAcknowledgedMessage(t *testing.T) {
	const clients = 16
	// make reliability raises the rounds (MAILSTACK_KILL9_ROUNDS).
	rounds := 5
	if n, err := strconv.Atoi(os.Getenv("MAILSTACK_KILL9_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	dir, tlsSettings, clientTLS := setup(t)
	smtps := config.Listener{Protocol: config.ProtocolSMTP, Address: "127.0.0.1", Port: testutil.FreePort(t), TLS: tlsSettings}
	imaps := config.Listener{Protocol: config.ProtocolIMAP, Address: "127.0.0.1", Port: testutil.FreePort(t), TLS: tlsSettings}

	p := serve(t, dir)
	ctx := context.Background()
	if _, err := p.client.PutUser(ctx, user, control.UserRequest{Password: userPassword}); err != nil {
		t.Fatal(err)
	}
	for id, l := range map[string]config.Listener{"smtps": smtps, "imaps": imaps} {
		if _, err := p.client.PutListener(ctx, id, l); err != nil {
			t.Fatal(err)
		}
	}

	l := newLedger()
	for round := range rounds {
		if round > 0 {
			p = serve(t, dir) // listeners come back from config.json
		}
		l.deliverUntilKilled(smtps.Addr(), clientTLS, clients, 48<<10, fmt.Sprintf("r%d-", round), p.kill)
	}
	sums, acked := l.sums, l.acked

	p = serve(t, dir)
	t.Logf("%d messages acknowledged, %d more begun without an answer before a kill", len(acked), len(sums)-len(acked))

	files := maildirMessages(t, dir, sums)
	missing := 0
	for id := range acked {
		if _, ok := files[id]; !ok {
			missing++
			if missing <= 10 {
				t.Errorf("message %s got a 250 and is not in the Maildir", id)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d acknowledged messages lost", missing)
	}

	// The same through IMAP (the index agrees with the files).
	c, err := imapclient.DialTLS(imaps.Addr(), &imapclient.Options{TLSConfig: clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, userPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if int(sel.NumMessages) != len(files) {
		t.Errorf("IMAP shows %d messages, the Maildir holds %d", sel.NumMessages, len(files))
	}
	seen := map[string]bool{}
	all := imap.SeqSet{}
	all.AddRange(1, 0)
	fetched, err := c.Fetch(all, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range fetched {
		for _, body := range m.BodySection {
			if id, ok := check(t, body.Bytes, sums, fmt.Sprintf("IMAP message %d", m.SeqNum)); ok {
				seen[id] = true
			}
		}
	}
	for id := range acked {
		if !seen[id] {
			t.Errorf("message %s got a 250 and IMAP does not show it", id)
			break
		}
	}
}

// ledger records a stream of deliveries: every message whose end of DATA
// was sent, with its body's SHA-256, and those that got a 250.
type ledger struct {
	mu    sync.Mutex
	sums  map[string]string // id -> body SHA-256
	acked map[string]bool
}

func newLedger() *ledger {
	return &ledger{sums: map[string]string{}, acked: map[string]bool{}}
}

// deliverUntilKilled streams messages of up to maxSize bytes from clients
// SMTP connections to addr (ids prefix+"c<client>-m<n>"), lets 100 of them
// be acknowledged, calls kill at a random moment within 300 ms after that,
// and returns once every stream has ended.
func (l *ledger) deliverUntilKilled(addr string, cfg *tls.Config, clients, maxSize int, prefix string, kill func()) {
	var wg sync.WaitGroup
	acks := make(chan struct{}, 1<<16)
	for c := range clients {
		wg.Go(func() {
			stream(addr, cfg, func(j int) (string, string) {
				id := fmt.Sprintf("%sc%d-m%d", prefix, c, j)
				msg, sum := message(id, rand.IntN(maxSize)+100)
				l.mu.Lock()
				l.sums[id] = sum
				l.mu.Unlock()
				return id, msg
			}, func(id string) {
				l.mu.Lock()
				l.acked[id] = true
				l.mu.Unlock()
				acks <- struct{}{}
			})
		})
	}
	for range 100 {
		<-acks
	}
	time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
	kill()
	wg.Wait()
}

// maildirMessages reads alice's Maildir as mutt or a backup script
// would, checks every message in it (check) and that none is there twice
// or left in tmp/, and returns the file of each message by id.
func maildirMessages(t *testing.T, dir string, sums map[string]string) map[string]string {
	t.Helper()
	inbox, err := filepath.Glob(filepath.Join(dir, "mail", "*", "example.com", "alice"))
	if err != nil || len(inbox) != 1 {
		t.Fatalf("alice's Maildir: %v %v", inbox, err)
	}
	files := map[string]string{} // id -> file
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(inbox[0], sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(inbox[0], sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			id, ok := check(t, data, sums, "file "+sub+"/"+e.Name())
			if !ok {
				continue
			}
			if other, dup := files[id]; dup {
				t.Errorf("message %s is there twice: %s and %s", id, other, e.Name())
			}
			files[id] = e.Name()
		}
	}
	if tmp, _ := os.ReadDir(filepath.Join(inbox[0], "tmp")); len(tmp) > 0 {
		t.Errorf("%d files left in tmp/ after recovery", len(tmp))
	}
	return files
}

// message builds a message of about size bytes whose X-Sum header is the
// SHA-256 of its body.
func message(id string, size int) (msg, sum string) {
	var body strings.Builder
	line := make([]byte, 32)
	for body.Len() < size {
		for i := range line {
			line[i] = byte(rand.IntN(256))
		}
		body.WriteString(hex.EncodeToString(line))
		body.WriteString("\r\n")
	}
	h := sha256.Sum256([]byte(body.String()))
	sum = hex.EncodeToString(h[:])
	return "From: someone@elsewhere.example\r\nTo: " + user + "\r\nSubject: crash test\r\nX-Test-ID: " + id + "\r\nX-Sum: " + sum + "\r\n\r\n" + body.String(), sum
}

// check verifies a stored message: it must be one that was sent, and
// whole. It reports the message's id.
func check(t *testing.T, data []byte, sums map[string]string, where string) (string, bool) {
	t.Helper()
	header, body, ok := bytes.Cut(data, []byte("\r\n\r\n"))
	if !ok || !bytes.HasPrefix(data, []byte("Received: ")) {
		t.Errorf("%s is not a whole message (%d bytes)", where, len(data))
		return "", false
	}
	id, sum := headerValue(header, "X-Test-ID"), headerValue(header, "X-Sum")
	want, sent := sums[id]
	if !sent || sum != want {
		t.Errorf("%s is no message that was sent (id %q)", where, id)
		return "", false
	}
	if h := sha256.Sum256(body); hex.EncodeToString(h[:]) != sum {
		t.Errorf("%s (%s) is cut short or damaged: %d body bytes", where, id, len(body))
		return "", false
	}
	return id, true
}

func headerValue(header []byte, name string) string {
	for _, line := range strings.Split(string(header), "\r\n") {
		if v, ok := strings.CutPrefix(line, name+": "); ok {
			return v
		}
	}
	return ""
}

// stream sends messages over one connection until anything fails (the
// runtime was killed): next makes the j-th message, acked is called for
// each 250.
func stream(addr string, cfg *tls.Config, next func(j int) (id, msg string), acked func(id string)) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: testutil.HangGuard}, "tcp", addr, cfg)
	if err != nil {
		return
	}
	c, err := smtp.NewClient(conn, "mail.example.com")
	if err != nil {
		conn.Close()
		return
	}
	defer c.Close()
	if err := c.Hello("crash.example"); err != nil {
		return
	}
	for j := 0; ; j++ {
		id, msg := next(j)
		if err := c.Mail("someone@elsewhere.example"); err != nil {
			return
		}
		if err := c.Rcpt(user); err != nil {
			return
		}
		w, err := c.Data()
		if err != nil {
			return
		}
		if _, err := io.WriteString(w, msg); err != nil {
			return
		}
		if err := w.Close(); err != nil { // sends "." and reads the reply
			return
		}
		acked(id)
	}
}
