package listener

import (
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

// resumes connects with the session cache and reports whether the
// handshake resumed a session. The greeting is read so that a TLS 1.3
// ticket, sent after the handshake, reaches the cache.
func resumes(t *testing.T, addr string, cache tls.ClientSessionCache, cfg *tls.Config) bool {
	t.Helper()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg.ServerName, cfg.ClientSessionCache = "mail.example.com", cache
	c, err := dialTLS(t, addr, cfg)
	if err != nil {
		t.Fatalf("handshake with %s: %v", addr, err)
	}
	c.mustLine()
	return c.nc.(*tls.Conn).ConnectionState().DidResume
}

// Session tickets: on by default and shared by a server's listeners (a
// ticket from one port resumes on another, TLS 1.3 and 1.2 alike), off by
// default on MX listeners, refused once older than the listener's
// lifetime, and still accepted after the daily key rotation until the
// retired key is dropped.
func TestSessionTickets(t *testing.T) {
	ks := newKeystore(t, t.TempDir(), "mx.p12", ecdsaKey)
	m, _ := newManager(t, Options{})
	clock := testutil.NewClock(time.Now())
	m.tickets.now = clock.Now
	ports := testutil.FreePorts(t, 4)
	imaps := tlsListener(ports[0], config.TLSImplicit, ks)
	smtps := tlsListener(ports[1], config.TLSImplicit, ks)
	smtps.Protocol = config.ProtocolSubmission
	mx := tlsListener(ports[2], config.TLSImplicit, ks)
	mx.Protocol = config.ProtocolSMTP // tickets off unless set
	short := tlsListener(ports[3], config.TLSImplicit, ks)
	short.TLS.SessionTicketLifetime = "1h"
	for id, l := range map[string]config.Listener{"imaps": imaps, "smtps": smtps, "mx": mx, "short": short} {
		apply(t, m, id, l)
	}
	addr := func(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

	for _, version := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			cfg := func() *tls.Config { return &tls.Config{MaxVersion: version} }
			cache := tls.NewLRUClientSessionCache(8)
			if resumes(t, addr(ports[0]), cache, cfg()) {
				t.Fatal("the first handshake resumed")
			}
			if !resumes(t, addr(ports[0]), cache, cfg()) {
				t.Error("no resumption on the same port")
			}
			if !resumes(t, addr(ports[1]), cache, cfg()) {
				t.Error("a ticket from the IMAP port did not resume on the submission port")
			}
			if resumes(t, addr(ports[2]), cache, cfg()) {
				t.Error("resumed on an MX listener")
			}
			// The MX port issues no ticket either.
			fresh := tls.NewLRUClientSessionCache(8)
			resumes(t, addr(ports[2]), fresh, cfg())
			if resumes(t, addr(ports[2]), fresh, cfg()) {
				t.Error("a ticket from the MX port resumed")
			}
		})
	}

	t.Run("lifetime and rotation", func(t *testing.T) {
		cache := tls.NewLRUClientSessionCache(8)
		resumes(t, addr(ports[3]), cache, nil)
		clock.Add(59 * time.Minute)
		if !resumes(t, addr(ports[3]), cache, nil) {
			t.Error("a 59-minute-old ticket did not resume under a 1h lifetime")
		}
		// Resumption hands out a new ticket (issued now); one older
		// than the lifetime is refused.
		clock.Add(61 * time.Minute)
		if resumes(t, addr(ports[3]), cache, nil) {
			t.Error("a 61-minute-old ticket resumed under a 1h lifetime")
		}

		// Under the default lifetime (24h), a ticket outlives the key
		// rotation that follows it.
		long := tls.NewLRUClientSessionCache(8)
		resumes(t, addr(ports[0]), long, nil)
		first, _ := m.tickets.current()
		clock.Add(ticketKeyRotation - time.Minute)
		other := tls.NewLRUClientSessionCache(8)
		resumes(t, addr(ports[0]), other, nil)
		clock.Add(2 * time.Minute)
		if !resumes(t, addr(ports[0]), other, nil) {
			t.Error("a ticket from just before the rotation did not resume after it")
		}
		if k, _ := m.tickets.current(); k == first {
			t.Error("the key did not rotate after ticketKeyRotation")
		}
		// The first key is kept to decrypt until tickets it sealed can
		// no longer be valid under the longest lifetime, then dropped.
		clock.Add(config.MaxSessionTicketLifetime + time.Minute)
		m.tickets.current()
		if m.tickets.find(first.id[:]) != nil {
			t.Error("a key retired for longer than the longest ticket lifetime is still kept")
		}
	})
}

// A ticket that was tampered with, is too short, or comes from another
// server is not an error: the handshake is a full one.
func TestUnwrapBadTickets(t *testing.T) {
	a, b := newTicketKeys(), newTicketKeys()
	unwrap := a.unwrapper(time.Hour)
	// A real ticket opens; flipping any byte of it makes it useless.
	var ticket []byte
	server := testutil.SelfSigned(t, "mail.example.com").ServerConfig()
	server.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		var err error
		ticket, err = a.wrap(cs, ss)
		return ticket, err
	}
	sc, cc := net.Pipe()
	go func() {
		s := tls.Server(sc, server)
		if s.Handshake() == nil {
			s.Write([]byte("x"))
		}
		s.Close()
	}()
	client := tls.Client(cc, &tls.Config{InsecureSkipVerify: true, ClientSessionCache: tls.NewLRUClientSessionCache(1)})
	client.Read(make([]byte, 1)) // handshake, and the ticket after it
	client.Close()
	if ticket == nil {
		t.Fatal("no ticket issued")
	}
	if s, err := unwrap(ticket, tls.ConnectionState{}); s == nil || err != nil {
		t.Fatalf("a fresh ticket: %v, %v", s, err)
	}
	for i := range ticket {
		bad := append([]byte(nil), ticket...)
		bad[i] ^= 1
		if s, err := unwrap(bad, tls.ConnectionState{}); s != nil || err != nil {
			t.Fatalf("ticket with byte %d flipped: %v, %v", i, s, err)
		}
	}
	for name, ticket := range map[string][]byte{
		"empty":     nil,
		"too short": make([]byte, 20),
		"garbage":   make([]byte, 200),
	} {
		if s, err := unwrap(ticket, tls.ConnectionState{}); s != nil || err != nil {
			t.Errorf("%s: %v, %v", name, s, err)
		}
	}
	// Sealed by b: a's keys do not know its id.
	if _, err := b.current(); err != nil {
		t.Fatal(err)
	}
	k, _ := b.current()
	if a.find(k.id[:]) != nil {
		t.Error("two servers share a key id")
	}
}
