package imap

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

// BenchmarkFetch measures FETCH throughput over implicit TLS with the
// go-imap client: UID FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[]) of 1,000
// messages of 1 KiB, reported as msgs/s.
func BenchmarkFetch(b *testing.B) {
	env := newEnv(b, "")
	const n = 1000
	body := []byte("From: bob@example.org\r\nTo: alice@example.com\r\nSubject: bench\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n", 15))
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range n / 50 {
				if err := env.store.Deliver(context.Background(), []string{testUser}, body); err != nil {
					b.Error(err)
				}
			}
		})
	}
	wg.Wait()
	c, err := imapclient.DialTLS(env.tlsAddr, &imapclient.Options{TLSConfig: env.tls.ClientConfig(testServerName)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(testUser, testPass).Wait(); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		b.Fatal(err)
	}
	opts := &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}
	all := imap.UIDSetNum()
	all.AddRange(1, 0)
	b.SetBytes(int64(n * len(body)))
	b.ResetTimer()
	for range b.N {
		cmd := c.Fetch(all, opts)
		got := 0
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
			for item := msg.Next(); item != nil; item = msg.Next() {
				if bs, ok := item.(imapclient.FetchItemDataBodySection); ok {
					io.Copy(io.Discard, bs.Literal)
				}
			}
			got++
		}
		if err := cmd.Close(); err != nil || got != n {
			b.Fatalf("fetched %d of %d: %v", got, n, err)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "msgs/s")
}

// helperEnv makes TestHelperIMAPServer run a server in a child process, so
// that BenchmarkIdleSessions can measure the server's memory alone.
const helperEnv = "MAILSTACK_IMAP_BENCH_HELPER"

// TestHelperIMAPServer is not a test: run by BenchmarkIdleSessions in a
// child process, it serves implicit TLS with the certificate in the
// directory named by helperEnv, prints the address and runs until stdin
// closes.
func TestHelperIMAPServer(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("only run by BenchmarkIdleSessions")
	}
	cert, err := tls.LoadX509KeyPair(dir+"/cert.pem", dir+"/key.pem")
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t, dir)
	defer st.Close()
	if err := st.PutUser(testUser, testPass, 0); err != nil {
		t.Fatal(err)
	}
	srv := New(Options{Store: st})
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	fmt.Printf("ADDR %s\n", ln.Addr())
	io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	srv.Shutdown(ctx)
}

// BenchmarkIdleSessions opens 1,000 logged-in sessions over TLS that
// SELECT INBOX and IDLE, and reports the server process's resident memory
// (VmRSS) in total and per session. DESIGN's target: 1,000 in ≤ 100 MiB.
func BenchmarkIdleSessions(b *testing.B) {
	const sessions = 1000
	tt := testutil.SelfSigned(b, "localhost", testServerName)
	dir := b.TempDir()
	keyDER, err := x509.MarshalPKCS8PrivateKey(tt.TLS.PrivateKey)
	if err != nil {
		b.Fatal(err)
	}
	writeFile(b, dir, "cert.pem", tt.PEM())
	writeFile(b, dir, "key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperIMAPServer$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	sc := bufio.NewScanner(stdout)
	var addr string
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		b.Fatal("helper server did not start")
	}
	go io.Copy(io.Discard, stdout)
	base := rssKiB(b, cmd.Process.Pid)

	b.ResetTimer()
	conns := make([]net.Conn, 0, sessions)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range sessions {
		c, err := tls.Dial("tcp", addr, tt.ClientConfig(testServerName))
		if err != nil {
			b.Fatalf("session %d: %v", i, err)
		}
		conns = append(conns, c)
		r := bufio.NewReader(c)
		expect := func(prefix string) {
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					b.Fatalf("session %d: %v", i, err)
				}
				if strings.HasPrefix(l, prefix) {
					return
				}
			}
		}
		expect("* OK")
		fmt.Fprintf(c, "a LOGIN %s %q\r\n", testUser, testPass)
		expect("a OK")
		fmt.Fprintf(c, "b SELECT INBOX\r\n")
		expect("b OK")
		fmt.Fprintf(c, "c IDLE\r\n")
		expect("+")
	}
	b.StopTimer()
	time.Sleep(500 * time.Millisecond)
	rss := rssKiB(b, cmd.Process.Pid)
	b.ReportMetric(float64(rss)/1024, "RSS-MiB")
	b.ReportMetric(float64(rss-base)/sessions, "KiB/session")
}

// rssKiB reads VmRSS of a process from /proc.
func rssKiB(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Skipf("no /proc: %v", err)
	}
	for _, l := range bytes.Split(data, []byte("\n")) {
		if v, ok := bytes.CutPrefix(l, []byte("VmRSS:")); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"), 10, 64)
			return n
		}
	}
	b.Fatal("VmRSS not found")
	return 0
}
