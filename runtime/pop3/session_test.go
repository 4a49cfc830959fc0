package pop3

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

// FuzzSession drives whole sessions with arbitrary client input over an
// in-memory pipe. Whatever arrives, the server must not panic, must answer
// in CRLF-terminated lines, must end the session, and must release every
// maildrop it locked.
func FuzzSession(f *testing.F) {
	for _, seed := range []string{
		"USER alice\r\nPASS secret\r\nLIST\r\nRETR 2\r\nTOP 2 1\r\nDELE 1\r\nUIDL\r\nRSET\r\nQUIT\r\n",
		"AUTH PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\nSTAT\r\nDELE 3\r\nQUIT\r\n",
		"AUTH PLAIN =\r\nAUTH PLAIN\r\n*\r\nCAPA\r\nSTLS\r\n",
		"user alice\npass secret\nretr 1\nlist 99999999999\ntop 1 -1\n",
		"\x00\xff\r\n\r\n.\r\n",
	} {
		f.Add([]byte(seed))
	}
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, input []byte) {
		b := newMemBackend()
		srv := New(Options{Backend: b, AllowInsecureAuth: true, Logger: discard, IdleTimeout: 50 * time.Millisecond, AuthLimiter: testutil.NoAuthLimit()})
		client, server := net.Pipe()
		defer client.Close()
		ended := make(chan struct{})
		go func() {
			defer close(ended)
			newSession(srv, server).serve()
		}()
		go client.Write(append(input, "\r\nQUIT\r\n"...))
		client.SetReadDeadline(time.Now().Add(testutil.HangGuard))
		out, err := io.ReadAll(client)
		if err != nil {
			t.Fatalf("reading: %v", err)
		}
		<-ended
		if len(out) > 0 && !bytes.HasSuffix(out, []byte("\r\n")) {
			t.Fatalf("output does not end with CRLF: %q", out)
		}
		if bytes.Count(out, []byte("\n")) != bytes.Count(out, []byte("\r\n")) {
			t.Fatalf("output has a bare LF: %q", out)
		}
		if logins, closes, _ := b.stats(); logins != closes {
			t.Fatalf("%d logins but %d maildrops closed", logins, closes)
		}
	})
}
