package runtime

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
)

// newTestRuntime is a runtime on a fresh state directory, not serving its
// control API: the tests call the Backend methods themselves.
func newTestRuntime(t *testing.T) *mailRuntime {
	t.Helper()
	ctx := context.Background()
	dir := statedir.Local(t.TempDir())
	if err := dir.Create(ctx, &config.Document{Server: config.Server{Hostname: "mail.example.com", Domains: []string{"example.com"}}}); err != nil {
		t.Fatal(err)
	}
	state, err := dir.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := dir.LoadConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := newRuntime(dir.Path, state, doc, Options{StateDir: dir.Path, Logger: slog.New(slog.DiscardHandler), DrainTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = rt.listeners.Shutdown(ctx)
		rt.close()
		state.Unlock()
	})
	return rt
}

func greeting(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testutil.HangGuard)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testutil.HangGuard))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return line
}

// The change methods honour the request's context: a request canceled
// before its change is swapped in changes nothing, in memory, on the
// socket or in config.json, and says so.
func TestChangesHonourContext(t *testing.T) {
	rt := newTestRuntime(t)
	l := config.Listener{Protocol: config.ProtocolSMTP, Address: "127.0.0.1", Port: testutil.FreePort(t), TLS: config.TLS{Mode: config.TLSNone}}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := rt.PutListener(canceled, "smtp", l); !errors.Is(err, context.Canceled) {
		t.Fatalf("PutListener with a canceled request: %v", err)
	}
	if _, err := net.DialTimeout("tcp", l.Addr(), time.Second); err == nil {
		t.Error("a canceled PutListener left its port bound")
	}
	if doc, _ := statedir.Local(rt.dir).LoadConfig(context.Background()); len(doc.Listeners) != 0 {
		t.Errorf("a canceled PutListener reached config.json: %v", doc.Listeners)
	}

	if _, err := rt.PutListener(context.Background(), "smtp", l); err != nil {
		t.Fatal(err)
	}
	if g := greeting(t, l.Addr()); !strings.Contains(g, "mail.example.com") {
		t.Fatalf("greeting %q", g)
	}
	renamed := rt.Server()
	renamed.Hostname = "mx.example.com"
	if err := rt.SetServer(canceled, renamed); !errors.Is(err, context.Canceled) {
		t.Fatalf("SetServer with a canceled request: %v", err)
	}
	if g := greeting(t, l.Addr()); !strings.Contains(g, "mail.example.com") {
		t.Errorf("after a canceled SetServer the greeting is %q, want the old hostname", g)
	}
	if got := rt.Server().Hostname; got != "mail.example.com" {
		t.Errorf("after a canceled SetServer the server is %q", got)
	}
	if err := rt.SetServer(context.Background(), renamed); err != nil {
		t.Fatal(err)
	}
	if g := greeting(t, l.Addr()); !strings.Contains(g, "mx.example.com") {
		t.Errorf("after SetServer the greeting is %q, want the new hostname", g)
	}
	if doc, _ := statedir.Local(rt.dir).LoadConfig(context.Background()); doc.Server.Hostname != "mx.example.com" {
		t.Errorf("config.json has hostname %q", doc.Server.Hostname)
	}
}

// Status answers while a change is in progress: changes are serialized
// by their own lock, not by the one Status takes.
func TestStatusDuringChange(t *testing.T) {
	rt := newTestRuntime(t)
	rt.change.Lock() // a change in progress
	defer rt.change.Unlock()
	done := make(chan struct{})
	go func() { rt.Status(); close(done) }()
	select {
	case <-done:
	case <-time.After(testutil.HangGuard):
		t.Fatal("Status waited for a change in progress")
	}
}
