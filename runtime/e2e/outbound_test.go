package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"net/smtp"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
	"github.com/mailstack/terraform-provider-mailstack/runtime/queue"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
)

// TestKill9OutboundStream streams 500 messages (a quarter of them larger
// than the queue keeps inline) from concurrent submission
// clients through runtime A, whose queue sends them on to runtime B (a
// second mailstack runtime, the destination; over STARTTLS with B's
// certificate pinned), and kills A with SIGKILL three times on the way.
// Every message A acknowledged must reach B's Maildir. A message may
// arrive twice only if A logged, on restart, that it had been killed
// between the end of that message's data and recording B's reply (the
// window RFC 5321 section 6.1 describes): a 250 A recorded is never
// followed by a second copy.
func TestKill9OutboundStream(t *testing.T) {
	const (
		total   = 500
		clients = 8
		rounds  = 3
	)
	ports := testutil.FreePorts(t, 2)
	portA, portB := ports[0], ports[1]

	// B: the destination MX for dest.test.
	dirB := t.TempDir()
	ksB := filepath.Join(t.TempDir(), "b.p12")
	certB := testutil.WriteKeystore(t, testutil.Keystore{Path: ksB, Password: keystorePassword, Format: keystore.PKCS12, Alias: "b", Hosts: []string{"mx.dest.test"}})
	if err := statedir.Local(dirB).Create(context.Background(), &config.Document{Server: config.Server{Hostname: "mx.dest.test", Domains: []string{"dest.test"}}}); err != nil {
		t.Fatal(err)
	}
	b := serve(t, dirB)
	ctx := context.Background()
	if _, err := b.client.PutUser(ctx, "bob@dest.test", control.UserRequest{Password: "bob-secret"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.PutListener(ctx, "mx", config.Listener{Protocol: config.ProtocolSMTP, Address: "127.0.0.1", Port: portB,
		TLS: config.TLS{Mode: config.TLSStartTLS, KeystorePath: ksB, KeystorePassword: keystorePassword}}); err != nil {
		t.Fatal(err)
	}

	// A: submission for ours.test, everything else through B.
	dirA := t.TempDir()
	ksA := filepath.Join(t.TempDir(), "a.p12")
	certA := testutil.WriteKeystore(t, testutil.Keystore{Path: ksA, Password: keystorePassword, Format: keystore.PKCS12, Alias: "a", Hosts: []string{"mail.ours.test"}})
	if err := statedir.Local(dirA).Create(context.Background(), &config.Document{Server: config.Server{
		Hostname: "mail.ours.test", Domains: []string{"ours.test"}, DNSResolvers: []string{"127.0.0.1:9"},
		Relay:       &config.Relay{Address: fmt.Sprintf("127.0.0.1:%d", portB), Mode: config.TLSStartTLS},
		TLSPolicies: []config.TLSPolicy{{Domain: "127.0.0.1", FingerprintsSHA256: []string{keystore.Fingerprint(certB.TLS.Leaf)}}},
		Queue:       config.Queue{RetryMin: "1s", RetryMax: "2s"},
	}}); err != nil {
		t.Fatal(err)
	}
	a := serve(t, dirA)
	if _, err := a.client.PutUser(ctx, "alice@ours.test", control.UserRequest{Password: userPassword}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.client.PutListener(ctx, "submissions", config.Listener{Protocol: config.ProtocolSubmission, Address: "127.0.0.1", Port: portA,
		TLS: config.TLS{Mode: config.TLSImplicit, KeystorePath: ksA, KeystorePassword: keystorePassword}}); err != nil {
		t.Fatal(err)
	}
	clientTLS := certA.ClientConfig("mail.ours.test")

	var (
		mu     sync.Mutex
		next   int
		acked  = map[string]bool{}
		logs   []*testutil.SyncBuffer
		killed int
	)
	logs = append(logs, a.log)
	take := func() (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		if next >= total {
			return "", false
		}
		next++
		return fmt.Sprintf("k9-%03d@ours.test", next), true
	}
	for round := range rounds + 1 {
		if round > 0 {
			a = serve(t, dirA)
			logs = append(logs, a.log)
		}
		var wg sync.WaitGroup
		roundAcks := make(chan struct{}, total)
		for range clients {
			wg.Go(func() {
				submitStream(fmt.Sprintf("127.0.0.1:%d", portA), clientTLS, take, func(id string) {
					mu.Lock()
					acked[id] = true
					mu.Unlock()
					roundAcks <- struct{}{}
				})
			})
		}
		if round < rounds {
			// Kill A at a random moment while messages flow in and out.
			for range 60 {
				<-roundAcks
			}
			time.Sleep(time.Duration(rand.IntN(200)) * time.Millisecond)
			a.kill()
			killed++
		}
		wg.Wait()
	}
	// The last run sends what is left, and drains the queue.
	err := waitUntil(90*time.Second, func() error {
		l, err := a.client.Queue(ctx)
		if err != nil {
			return err
		}
		if l.Length > 0 {
			return fmt.Errorf("%d messages still queued; first: %+v", l.Length, l.Messages[0])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	arrived, sizes := map[string]int{}, map[string]int{}
	files, _ := filepath.Glob(filepath.Join(dirB, "mail", "mail", "dest.test", "bob", "new", "*"))
	midRE := regexp.MustCompile(`(?m)^Message-ID: <([^>]+)>`)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := midRE.FindSubmatch(data); m != nil {
			arrived[string(m[1])]++
			sizes[string(m[1])] = len(data)
		}
	}
	flagged := map[string]bool{}
	flagRE := regexp.MustCompile(`may arrive twice.*"message_id":"([^"]+)"`)
	for _, l := range logs {
		for _, m := range flagRE.FindAllStringSubmatch(l.String(), -1) {
			flagged[m[1]] = true
		}
	}
	dups := 0
	for id := range acked {
		if arrived[id] == 0 {
			t.Errorf("acknowledged message %s never arrived", id)
		}
	}
	for id, size := range sizes {
		if want := large(id); (size > queue.InlineMax) != want {
			t.Errorf("message %s arrived with %d bytes; want larger than %d: %v", id, size, queue.InlineMax, want)
		}
	}
	for id, n := range arrived {
		if n > 1 {
			dups++
			if !flagged[id] {
				t.Errorf("message %s arrived %d times although no kill fell between its end of data and the recorded reply", id, n)
			}
		}
	}
	t.Logf("%d kills; %d messages acknowledged, %d arrived (%d distinct); %d in the reply window at a kill, %d of them arrived twice",
		killed, len(acked), len(files), len(arrived), len(flagged), dups)
	if len(acked) < total/2 {
		t.Errorf("only %d of %d messages were acknowledged: the test did not stream", len(acked), total)
	}
}

// submitStream sends messages over one authenticated submission
// connection until take has none left or the connection fails (the
// runtime was killed); acked is told every message that got a 250.
func submitStream(addr string, cfg *tls.Config, take func() (string, bool), acked func(id string)) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: testutil.HangGuard}, "tcp", addr, cfg)
	if err != nil {
		return
	}
	c, err := smtp.NewClient(conn, "mail.ours.test")
	if err != nil {
		conn.Close()
		return
	}
	defer c.Close()
	if err := c.Hello("stream.example"); err != nil {
		return
	}
	if err := c.Auth(smtp.PlainAuth("", "alice@ours.test", userPassword, "mail.ours.test")); err != nil {
		return
	}
	for {
		id, ok := take()
		if !ok {
			c.Quit()
			return
		}
		if err := c.Mail("alice@ours.test"); err != nil {
			return
		}
		if err := c.Rcpt("bob@dest.test"); err != nil {
			return
		}
		w, err := c.Data()
		if err != nil {
			return
		}
		fmt.Fprintf(w, "From: alice@ours.test\r\nTo: bob@dest.test\r\nSubject: %s\r\nMessage-ID: <%s>\r\n\r\nstream %s\r\n", id, id, id)
		if large(id) {
			fmt.Fprint(w, strings.Repeat("a line to make the message larger than queue.InlineMax\r\n", 1300))
		}
		if err := w.Close(); err != nil {
			return
		}
		acked(id)
	}
}

// large picks every fourth message of the stream to be larger than
// queue.InlineMax (a spool file of its own); the others are kept inline.
func large(id string) bool {
	var n int
	fmt.Sscanf(id, "k9-%d@", &n)
	return n%4 == 0
}

// waitUntil polls cond every 100ms until it returns nil or d passes.
func waitUntil(d time.Duration, cond func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
