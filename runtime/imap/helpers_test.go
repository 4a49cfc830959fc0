package imap

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
)

const (
	testUser = "alice@example.com"
	testPass = "correct horse battery staple"
)

// testServerName is the name clients expect on the servers' certificate,
// which testutil.SelfSigned makes for localhost and 127.0.0.1.
const testServerName = "127.0.0.1"

type testEnv struct {
	store    *store.Store
	dir      string
	tls      *testutil.Certificate
	srv      *Server // STARTTLS, on addr
	implicit *Server // implicit TLS, on tlsAddr
	addr     string  // plain or STARTTLS listener
	tlsAddr  string  // implicit TLS listener
}

func openStore(t testing.TB, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(dir, store.Options{Argon2: store.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// newEnv starts a server with a STARTTLS listener and an implicit-TLS
// listener on 127.0.0.1, and a store with testUser. With dir empty the
// store lives in a new temporary directory.
func newEnv(t testing.TB, dir string) *testEnv {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	st := openStore(t, dir)
	if _, err := st.User(testUser); err != nil {
		if err := st.PutUser(testUser, testPass, 0); err != nil {
			t.Fatal(err)
		}
	}
	return newEnvStore(t, st, dir)
}

// newEnvStore is newEnv on a store of the caller's, which it closes at the
// end of the test.
func newEnvStore(t testing.TB, st *store.Store, dir string) *testEnv {
	t.Helper()
	env := &testEnv{dir: dir, tls: testutil.SelfSigned(t, "localhost", testServerName), store: st}
	env.srv = New(Options{Store: env.store, TLSConfig: env.tls.ServerConfig(), Logger: slog.New(slog.DiscardHandler)})
	env.implicit = New(Options{Store: env.store, Logger: slog.New(slog.DiscardHandler)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env.addr, env.tlsAddr = ln.Addr().String(), tln.Addr().String()
	go env.srv.Serve(ln)
	go env.implicit.Serve(tls.NewListener(tln, env.tls.ServerConfig()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		env.srv.Shutdown(ctx)
		env.implicit.Shutdown(ctx)
		env.store.Close()
	})
	return env
}

// transcript drives one IMAP connection line by line.
type transcript struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
	n    int
}

func dialTranscript(t testing.TB, addr string, tlsConfig *tls.Config) *transcript {
	t.Helper()
	conn := testutil.Dial(t, addr, tlsConfig)
	tc := &transcript{t: t, conn: conn, r: bufio.NewReader(conn)}
	if g := tc.line(); !strings.HasPrefix(g, "* OK") {
		t.Fatalf("greeting %q", g)
	}
	return tc
}

func (tc *transcript) line() string {
	tc.t.Helper()
	tc.conn.SetReadDeadline(time.Now().Add(testutil.HangGuard))
	l, err := tc.r.ReadString('\n')
	if err != nil {
		tc.t.Fatalf("reading: %v (after %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

func (tc *transcript) send(s string) {
	tc.t.Helper()
	if _, err := tc.conn.Write([]byte(s)); err != nil {
		tc.t.Fatal(err)
	}
}

// cmd sends a tagged command and returns the untagged lines (literals
// inlined) and the tagged status line without its tag.
func (tc *transcript) cmd(format string, args ...any) (untagged []string, status string) {
	tc.t.Helper()
	tc.n++
	tag := fmt.Sprintf("t%d", tc.n)
	tc.send(tag + " " + fmt.Sprintf(format, args...) + "\r\n")
	return tc.readUntil(tag)
}

func (tc *transcript) readUntil(tag string) (untagged []string, status string) {
	tc.t.Helper()
	for {
		l := tc.line()
		for strings.HasSuffix(l, "}") && strings.Contains(l, "{") {
			var n int
			fmt.Sscanf(l[strings.LastIndex(l, "{")+1:], "%d", &n)
			buf := make([]byte, n)
			if _, err := io.ReadFull(tc.r, buf); err != nil {
				tc.t.Fatal(err)
			}
			l += string(buf) + tc.line()
		}
		if strings.HasPrefix(l, tag+" ") {
			return untagged, strings.TrimPrefix(l, tag+" ")
		}
		untagged = append(untagged, l)
	}
}

// ok runs a command that must succeed.
func (tc *transcript) ok(format string, args ...any) []string {
	tc.t.Helper()
	u, st := tc.cmd(format, args...)
	if !strings.HasPrefix(st, "OK") {
		tc.t.Fatalf("%q: %s (untagged %q)", fmt.Sprintf(format, args...), st, u)
	}
	return u
}

// status runs a command and checks that its status starts with want.
func (tc *transcript) status(want string, format string, args ...any) []string {
	tc.t.Helper()
	u, st := tc.cmd(format, args...)
	if !strings.HasPrefix(st, want) {
		tc.t.Fatalf("%q: got %q, want %q...", fmt.Sprintf(format, args...), st, want)
	}
	return u
}

func (tc *transcript) login() *transcript {
	tc.t.Helper()
	tc.ok("LOGIN %s %q", testUser, testPass)
	return tc
}

func contains(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
