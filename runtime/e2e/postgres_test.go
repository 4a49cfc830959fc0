package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil/pgtest"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
)

// pgRuntime is a runtime process on the PostgreSQL store, with an smtps
// and an imaps listener.
type pgRuntime struct {
	*process
	dir          string
	smtps, imaps string
	tls          *tls.Config
}

// servePostgres creates a state directory whose store is the database
// dsn, starts the runtime on it and adds the listeners.
func servePostgres(t *testing.T, dsn string) *pgRuntime {
	t.Helper()
	dir, ks, clientTLS := setup(t, func(s *config.Server) { s.Store, s.PostgresDSN = config.StorePostgres, dsn })
	r := &pgRuntime{dir: dir, tls: clientTLS, process: serve(t, dir)}
	ports := testutil.FreePorts(t, 2)
	for i, l := range []struct {
		id, protocol string
		addr         *string
	}{{"smtps", config.ProtocolSMTP, &r.smtps}, {"imaps", config.ProtocolIMAP, &r.imaps}} {
		cfg := config.Listener{Protocol: l.protocol, Address: "127.0.0.1", Port: ports[i], TLS: ks}
		if _, err := r.client.PutListener(context.Background(), l.id, cfg); err != nil {
			t.Fatal(err)
		}
		*l.addr = cfg.Addr()
	}
	return r
}

func (r *pgRuntime) login(t *testing.T, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	if opts == nil {
		opts = &imapclient.Options{}
	}
	opts.TLSConfig = r.tls
	c, err := imapclient.DialTLS(r.imaps, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, userPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

// fetchAll returns every message of INBOX, whole.
func fetchAll(t *testing.T, c *imapclient.Client) []*imapclient.FetchMessageBuffer {
	t.Helper()
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	all := imap.SeqSet{}
	all.AddRange(1, 0)
	msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// TestTwoRuntimesShareADatabase runs two runtime processes on one
// PostgreSQL database, each with its own ports and state directory: a
// user created through one exists in the other; a message delivered over
// SMTP to the first shows up in an IMAP IDLE session on the second (the
// test logs how soon) and FETCHes whole there; concurrent APPENDs through
// both never get the same UID.
func TestTwoRuntimesShareADatabase(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	a, b := servePostgres(t, dsn), servePostgres(t, dsn)
	ctx := context.Background()
	if _, err := a.client.PutUser(ctx, user, control.UserRequest{Password: userPassword}); err != nil {
		t.Fatal(err)
	}
	if u, err := b.client.User(ctx, user); err != nil || u.Address != user {
		t.Fatalf("the second runtime does not know the user created through the first: %+v, %v", u, err)
	}

	exists := make(chan uint32, 16)
	idler := b.login(t, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		},
	}})
	if _, err := idler.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := idler.Idle()
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := message("idle", 2000)
	if err := sendOne(a.smtps, a.tls, msg); err != nil {
		t.Fatal(err)
	}
	acked := time.Now()
	select {
	case n := <-exists:
		if n != 1 {
			t.Fatalf("EXISTS %d, want 1", n)
		}
		t.Logf("IDLE on the second runtime saw the delivery %v after the first acknowledged it", time.Since(acked).Round(time.Millisecond))
	case <-time.After(testutil.HangGuard):
		t.Fatalf("no EXISTS in the other runtime's IDLE session within %v of the 250", testutil.HangGuard)
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	msgs := fetchAll(t, b.login(t, nil))
	if len(msgs) != 1 || !strings.HasSuffix(string(msgs[0].BodySection[0].Bytes), msg[strings.Index(msg, "\r\n\r\n"):]) {
		t.Fatalf("FETCH on the second runtime: %d messages", len(msgs))
	}

	// Concurrent APPENDs through both runtimes.
	const clients, each = 3, 10
	var (
		mu   sync.Mutex
		uids []uint32
		wg   sync.WaitGroup
	)
	for _, r := range []*pgRuntime{a, b} {
		for range clients {
			c := r.login(t, nil)
			wg.Go(func() {
				for i := range each {
					body := fmt.Sprintf("From: a@example.org\r\nSubject: append %d\r\n\r\nappended through %s\r\n", i, r.imaps)
					cmd := c.Append("INBOX", int64(len(body)), nil)
					cmd.Write([]byte(body))
					cmd.Close()
					data, err := cmd.Wait()
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					uids = append(uids, uint32(data.UID))
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	slices.Sort(uids)
	if len(slices.Compact(slices.Clone(uids))) != 2*clients*each {
		t.Fatalf("APPENDUIDs from both runtimes: %v; want %d distinct", uids, 2*clients*each)
	}
	if n := len(fetchAll(t, a.login(t, nil))); n != 1+2*clients*each {
		t.Fatalf("INBOX holds %d messages after the APPENDs, want %d", n, 1+2*clients*each)
	}
}

// TestKill9SharedDatabase streams deliveries into one of two runtimes on
// one database and kills it with SIGKILL in the middle: every message that
// got a 250 is whole in the other runtime's IMAP at once, and the killed
// one, restarted, shows them too.
func TestKill9SharedDatabase(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	a, b := servePostgres(t, dsn), servePostgres(t, dsn)
	if _, err := b.client.PutUser(context.Background(), user, control.UserRequest{Password: userPassword}); err != nil {
		t.Fatal(err)
	}
	l := newLedger()
	l.deliverUntilKilled(a.smtps, a.tls, 8, 32<<10, "", a.kill)
	sums, acked := l.sums, l.acked
	t.Logf("%d messages acknowledged, %d more begun without an answer before the kill", len(acked), len(sums)-len(acked))

	seen := func(r *pgRuntime) map[string]bool {
		out := map[string]bool{}
		for _, m := range fetchAll(t, r.login(t, nil)) {
			if id, ok := check(t, m.BodySection[0].Bytes, sums, fmt.Sprintf("IMAP message UID %d", m.UID)); ok {
				if out[id] {
					t.Errorf("message %s is there twice", id)
				}
				out[id] = true
			}
		}
		return out
	}
	onB := seen(b)
	for id := range acked {
		if !onB[id] {
			t.Fatalf("message %s got a 250 from the killed runtime and the other one does not show it", id)
		}
	}
	// The database may still commit deliveries whose runtime died before
	// it could answer: the restarted runtime shows at least as much.
	a.process = serve(t, a.dir)
	onA := seen(a)
	for id := range onB {
		if !onA[id] {
			t.Fatalf("message %s, shown by the other runtime, is missing in the restarted one", id)
		}
	}
}

// TestDatabaseRestartMidStream restarts PostgreSQL (an immediate stop, as
// a crash) while SMTP clients stream deliveries into a runtime on it:
// meanwhile they get 4xx replies and never a 5xx, nothing acknowledged is
// lost, and the runtime takes mail again by itself once the database is
// back.
func TestDatabaseRestartMidStream(t *testing.T) {
	cluster := pgtest.Start(t, pgtest.Options{})
	r := servePostgres(t, cluster.NewDatabase(t))
	if _, err := r.client.PutUser(context.Background(), user, control.UserRequest{Password: userPassword}); err != nil {
		t.Fatal(err)
	}
	var (
		mu                 sync.Mutex
		sums               = map[string]string{}
		acked              = map[string]bool{}
		ackCount, tempFail atomic.Int64
		permFail           []string
		stop               atomic.Bool
		wg                 sync.WaitGroup
	)
	for c := range 4 {
		wg.Go(func() {
			for j := 0; !stop.Load(); j++ {
				id := fmt.Sprintf("c%d-m%d", c, j)
				msg, sum := message(id, rand.IntN(8<<10)+100)
				mu.Lock()
				sums[id] = sum
				mu.Unlock()
				err := sendOne(r.smtps, r.tls, msg)
				var te *textproto.Error
				switch {
				case err == nil:
					mu.Lock()
					acked[id] = true
					mu.Unlock()
					ackCount.Add(1)
				case errors.As(err, &te) && te.Code >= 400 && te.Code < 500:
					tempFail.Add(1)
					time.Sleep(50 * time.Millisecond)
				case errors.As(err, &te):
					mu.Lock()
					permFail = append(permFail, err.Error())
					mu.Unlock()
				default:
					time.Sleep(50 * time.Millisecond) // a connection cut short: no answer, no promise
				}
			}
		})
	}
	waitAcks := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for ackCount.Load() < n {
			if time.Now().After(deadline) {
				stop.Store(true)
				t.Fatalf("only %d deliveries acknowledged, waiting for %d", ackCount.Load(), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitAcks(40)
	if err := cluster.Kill(); err != nil {
		t.Fatal(err)
	}
	before := ackCount.Load()
	deadline := time.Now().Add(30 * time.Second)
	for tempFail.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := cluster.Start(); err != nil {
		t.Fatal(err)
	}
	waitAcks(before + 40)
	stop.Store(true)
	wg.Wait()
	if tempFail.Load() == 0 || len(permFail) > 0 {
		t.Fatalf("while the database was down: %d temporary failures, permanent ones %q; want some 4xx and no 5xx", tempFail.Load(), permFail)
	}
	t.Logf("%d acknowledged, %d answered 4xx while the database was down", len(acked), tempFail.Load())
	onIMAP := map[string]bool{}
	for _, m := range fetchAll(t, r.login(t, nil)) {
		if id, ok := check(t, m.BodySection[0].Bytes, sums, fmt.Sprintf("IMAP message UID %d", m.UID)); ok {
			onIMAP[id] = true
		}
	}
	for id := range acked {
		if !onIMAP[id] {
			t.Fatalf("message %s got a 250 and is not in the store after the restart", id)
		}
	}
}

// sendOne delivers one message to user over implicit TLS on a connection
// of its own.
func sendOne(addr string, cfg *tls.Config, msg string) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: testutil.HangGuard}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c, err := smtp.NewClient(conn, "mail.example.com")
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if err := c.Mail("someone@elsewhere.example"); err != nil {
		return err
	}
	if err := c.Rcpt(user); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(msg)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// TestStoreCopyCommand moves a server from its embedded store to
// PostgreSQL the way the guide says: stop it, `runtime store copy` (the
// database password in PGPASSWORD, not on the command line), set store =
// postgres, start it. IMAP clients find the same UIDVALIDITY, UIDs and
// flags afterwards. The copy refuses to run while the runtime does.
func TestStoreCopyCommand(t *testing.T) {
	cluster := pgtest.Shared(t)
	dsn := cluster.NewDatabase(t)
	dir, ks, clientTLS := setup(t)
	p := serve(t, dir)
	ctx := context.Background()
	if _, err := p.client.PutUser(ctx, user, control.UserRequest{Password: userPassword}); err != nil {
		t.Fatal(err)
	}
	r := &pgRuntime{dir: dir, tls: clientTLS, process: p}
	ports := testutil.FreePorts(t, 2)
	for i, l := range []config.Listener{
		{Protocol: config.ProtocolSMTP, Address: "127.0.0.1", Port: ports[0], TLS: ks},
		{Protocol: config.ProtocolIMAP, Address: "127.0.0.1", Port: ports[1], TLS: ks},
	} {
		if _, err := p.client.PutListener(ctx, l.Protocol, l); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			r.smtps = l.Addr()
		} else {
			r.imaps = l.Addr()
		}
	}
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Go(func() {
			for j := range 50 {
				msg, _ := message(fmt.Sprintf("c%d-m%d", c, j), 500)
				if err := sendOne(r.smtps, r.tls, msg); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	flagsOf := func(c *imapclient.Client) (uint32, map[imap.UID][]imap.Flag) {
		t.Helper()
		sel, err := c.Select("INBOX", nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		all := imap.SeqSet{}
		all.AddRange(1, 0)
		msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		out := map[imap.UID][]imap.Flag{}
		for _, m := range msgs {
			out[m.UID] = m.Flags
		}
		return sel.UIDValidity, out
	}
	c := r.login(t, nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, st := range []struct {
		from, to uint32
		flags    []imap.Flag
	}{{1, 200, []imap.Flag{imap.FlagSeen}}, {20, 60, []imap.Flag{imap.FlagFlagged, "$Label1"}}, {150, 151, []imap.Flag{imap.FlagDeleted}}} {
		set := imap.SeqSet{}
		set.AddRange(st.from, st.to)
		if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: st.flags, Silent: true}, nil).Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	uidValidity, before := flagsOf(c)
	c.Close()

	noPassword := strings.Replace(dsn, "password="+cluster.Password+" ", "", 1)
	copyCmd := func() (string, error) {
		cmd := exec.Command(binary, "runtime", "store", "copy", "--state-dir", dir, "--to-dsn", noPassword)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+cluster.Password)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := copyCmd(); err == nil || !strings.Contains(out, "stop its runtime") {
		t.Fatalf("store copy while the runtime runs: %v\n%s", err, out)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(60 * time.Second); err != nil {
		t.Fatalf("the runtime did not stop on SIGTERM: %v", err)
	}
	out, err := copyCmd()
	if err != nil || !strings.Contains(out, "store copied") || !strings.Contains(out, "messages=198") {
		t.Fatalf("store copy: %v\n%s", err, out)
	}
	if strings.Contains(out, cluster.Password) {
		t.Fatalf("store copy printed the database password:\n%s", out)
	}
	err = statedir.Local(dir).EditConfig(ctx, func(doc *config.Document) error {
		doc.Server.Store, doc.Server.PostgresDSN = config.StorePostgres, dsn
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r.process = serve(t, dir)
	gotValidity, after := flagsOf(r.login(t, nil))
	if gotValidity != uidValidity || !reflect.DeepEqual(after, before) {
		t.Fatalf("on PostgreSQL: UIDVALIDITY %d and %d messages' flags; before %d and %d (differences: %v)",
			gotValidity, len(after), uidValidity, len(before), diffFlags(before, after))
	}
}

func diffFlags(a, b map[imap.UID][]imap.Flag) []string {
	var out []string
	for uid, f := range a {
		if !reflect.DeepEqual(b[uid], f) {
			out = append(out, fmt.Sprintf("%d: %v -> %v", uid, f, b[uid]))
		}
	}
	for uid := range b {
		if _, ok := a[uid]; !ok {
			out = append(out, fmt.Sprintf("%d: new", uid))
		}
	}
	return out
}
