package listener

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

// A prepared change is invisible until Commit, and Abort leaves the
// listener as it was: its front end, its socket, and a new address it
// bound is free again.
func TestPrepareCommitAbort(t *testing.T) {
	m, f := newManager(t, Options{})
	first := tlsListener(testutil.FreePort(t), config.TLSNone, nil)
	apply(t, m, "imap", first)

	moved := tlsListener(testutil.FreePort(t), config.TLSNone, nil)
	c, err := m.Prepare("imap", moved, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := dialPlain(t, first.Addr()).mustLine(); got != "HELLO imap#1 plain" {
		t.Errorf("before Commit the listener answers %q, want the first front end", got)
	}
	c.Abort()
	if got := dialPlain(t, first.Addr()).mustLine(); got != "HELLO imap#1 plain" {
		t.Errorf("after Abort the listener answers %q, want the first front end", got)
	}
	ln, err := net.Listen("tcp", moved.Addr())
	if err != nil {
		t.Errorf("the address an aborted change bound is still taken: %v", err)
	} else {
		ln.Close()
	}
	if st, _ := m.Status("imap"); st.Address != first.Addr() {
		t.Errorf("status after Abort: %s, want %s", st.Address, first.Addr())
	}

	c, err = m.Prepare("imap", moved, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Commit()
	if got := dialPlain(t, moved.Addr()).mustLine(); got != "HELLO imap#3 plain" {
		t.Errorf("after Commit the new address answers %q", got)
	}
	if f.n.Load() != 3 {
		t.Errorf("%d front ends built, want 3", f.n.Load())
	}
}

// A front end that cannot be built is an ErrInvalid and changes nothing.
func TestPrepareBuildFails(t *testing.T) {
	m, _ := newManager(t, Options{})
	l := tlsListener(testutil.FreePort(t), config.TLSNone, nil)
	apply(t, m, "imap", l)
	broken := func(config.Listener, *tls.Config) (Frontend, error) { return nil, errors.New("no front end today") }
	if _, err := m.Prepare("imap", l, broken); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Prepare with a failing build: %v, want ErrInvalid", err)
	}
	if got := dialPlain(t, l.Addr()).mustLine(); got != "HELLO imap#1 plain" {
		t.Errorf("after a failed Prepare the listener answers %q", got)
	}
}

// Status answers while a change binds and builds: it never waits behind
// one.
func TestStatusDoesNotWaitForPrepare(t *testing.T) {
	m, f := newManager(t, Options{})
	l := tlsListener(testutil.FreePort(t), config.TLSNone, nil)
	apply(t, m, "imap", l)
	release := make(chan struct{})
	slow := func(l config.Listener, st *tls.Config) (Frontend, error) {
		<-release
		return f.build(l, st)
	}
	prepared := make(chan *Change)
	go func() {
		c, err := m.Prepare("imap", l, slow)
		if err != nil {
			t.Error(err)
		}
		prepared <- c
	}()
	got := make(chan Status)
	go func() {
		st, _ := m.Status("imap")
		got <- st
	}()
	select {
	case st := <-got:
		if !st.Bound || st.Address != l.Addr() {
			t.Errorf("status during a change: %+v", st)
		}
	case <-time.After(testutil.HangGuard):
		t.Fatal("Status waited for a change in progress")
	}
	close(release)
	(<-prepared).Commit()
	if got := dialPlain(t, l.Addr()).mustLine(); got != "HELLO imap#2 plain" {
		t.Errorf("after Commit: %q", got)
	}
}
