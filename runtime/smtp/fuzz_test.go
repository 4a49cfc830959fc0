package smtp

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

var replyLine = regexp.MustCompile(`^[2-5][0-9][0-9][ -]`)

// FuzzSession sends arbitrary input to the submission service, as one
// client would after the greeting (go-smtp's command and argument parsers,
// our AUTH PLAIN and LOGIN, MAIL and RCPT checks, DATA and BDAT). Whatever
// it sends, every line it gets back is an SMTP reply, nothing is logged as
// an error (a panic in a handler is), and the session ends.
func FuzzSession(f *testing.F) {
	for _, seed := range []string{
		"EHLO client.example\r\nAUTH PLAIN " + plain("alice@example.com", testPassword) + "\r\nMAIL FROM:<alice@example.com> SIZE=20\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nSubject: hi\r\n\r\nbody\r\n.\r\n",
		"EHLO c\r\nAUTH LOGIN\r\n" + b64("alice@example.com") + "\r\n" + b64("wrong") + "\r\nAUTH LOGIN " + b64("x") + "\r\n*\r\n",
		"HELO c\r\nMAIL FROM:<> BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<\"quoted local\"@example.com> NOTIFY=NEVER\r\nBDAT 5 LAST\r\nhello",
		"EHLO c\r\nMAIL FROM:<alice@example.com>\r\nRCPT TO:<nobody@elsewhere.example>\r\nRSET\r\nVRFY alice\r\nNOOP\r\nHELP\r\nSTARTTLS\r\n",
		"EHLO c\r\nAUTH PLAIN\r\n=\r\nAUTH PLAIN !!!\r\nAUTH CRAM-MD5\r\nMAIL FROM:<a@b> AUTH=<>\r\n",
		"\x00\xff\r\n" + strings.Repeat("A", 1100) + "\r\nMAIL FROM:<\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		errs := &testutil.ErrorLog{}
		srv := New(Options{
			Backend: &memBackend{}, Hostname: testHostname, Submission: true, AllowInsecureAuth: true,
			MaxMessageBytes: 1 << 16, ReadTimeout: 200 * time.Millisecond, WriteTimeout: time.Second,
			AuthLimiter: testutil.NoAuthLimit(), Logger: slog.New(errs),
		})
		client, server := net.Pipe()
		defer client.Close()
		ln := testutil.NewOneConn(server, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 587})
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		go client.Write(append(input, "\r\n.\r\nQUIT\r\n"...))
		client.SetReadDeadline(time.Now().Add(testutil.HangGuard))
		out, err := io.ReadAll(client)
		if err != nil && !bytes.Contains(out, []byte("421")) {
			t.Fatalf("reading: %v after %q", err, out)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ln.Close()
		if err := srv.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		<-served
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if !replyLine.MatchString(sc.Text()) {
				t.Fatalf("not an SMTP reply: %q in %q", sc.Text(), out)
			}
		}
		if msgs := errs.Messages(); len(msgs) > 0 {
			t.Fatalf("logged as errors: %q", msgs)
		}
	})
}
