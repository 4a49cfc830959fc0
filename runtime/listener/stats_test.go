package listener

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

func statsOf(t *testing.T, m *Manager, id string) Stats {
	t.Helper()
	for _, s := range m.Stats() {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("no stats for %q", id)
	return Stats{}
}

func count(cs []HandshakeCount, version string, resumed bool) uint64 {
	i := slices.IndexFunc(cs, func(c HandshakeCount) bool { return c.Version == version && c.Resumed == resumed })
	if i < 0 {
		return 0
	}
	return cs[i].N
}

// Stats counts accepted and refused connections, and TLS handshakes by
// version, full or resumed, whether the listener runs them (implicit TLS)
// or the front end does (STARTTLS); a client that offers nothing the
// listener accepts counts as a failure under the highest version it
// offered.
func TestStats(t *testing.T) {
	t.Parallel()
	ks := newKeystore(t, t.TempDir(), "mail.jks", ecdsaKey)
	m, _ := newManager(t, Options{})

	l := tlsListener(testutil.FreePort(t), config.TLSImplicit, ks)
	apply(t, m, "imaps", l)
	cache := tls.NewLRUClientSessionCache(4)
	for range 2 {
		c, err := dialTLS(t, l.Addr(), &tls.Config{ClientSessionCache: cache})
		if err != nil {
			t.Fatal(err)
		}
		c.mustLine() // reads the session ticket too
		c.nc.Close()
	}
	c12, err := dialTLS(t, l.Addr(), &tls.Config{MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	c12.mustLine()
	if _, err := dialTLS(t, l.Addr(), &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("a TLS 1.1 client was accepted")
	}
	plain := dialPlain(t, l.Addr()) // no ClientHello: no handshake to count
	plain.nc.Write([]byte("EHLO x\r\n"))
	plain.line()

	testutil.Eventually(t, "the counts", func() bool {
		s := statsOf(t, m, "imaps")
		return count(s.Handshakes, "1.3", false) == 1 && count(s.Handshakes, "1.3", true) == 1 &&
			count(s.Handshakes, "1.2", false) == 1 && count(s.HandshakeFailures, "1.1", false) == 1 &&
			len(s.HandshakeFailures) == 1 && s.Accepted == 5
	})
	s := statsOf(t, m, "imaps")
	if want := ks.cert.NotAfter; len(s.Certificates) != 1 || !s.Certificates[0].NotAfter.Equal(want) || !strings.Contains(s.Certificates[0].Source, ks.path) {
		t.Errorf("certificates %+v, want one from %s expiring %v", s.Certificates, ks.path, want)
	}

	// STARTTLS handshakes, run by the front end, are counted the same.
	st := tlsListener(testutil.FreePort(t), config.TLSStartTLS, ks)
	apply(t, m, "imap", st)
	c := dialPlain(t, st.Addr())
	c.mustLine()
	if err := c.startTLS(nil); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the STARTTLS handshake", func() bool {
		return count(statsOf(t, m, "imap").Handshakes, "1.3", false) == 1
	})

	// Refusals, by limit.
	m.SetMaxConnections(1)
	defer m.SetMaxConnections(0)
	dialPlain(t, st.Addr()).mustLine() // the refusal line
	testutil.Eventually(t, "the refusal", func() bool {
		s := statsOf(t, m, "imap")
		return s.RefusedListener == 1 && s.RefusedClient == 0 && s.Open == 1
	})
}

// BenchmarkCountHandshakes is what counting adds to each handshake: the
// ClientHello hook with its per-connection copy of the config. Compare
// with BenchmarkHandshake's hundreds of microseconds per handshake.
func BenchmarkCountHandshakes(b *testing.B) {
	ks := newKeystore(b, b.TempDir(), "mail.jks", ecdsaKey)
	m, _ := newManager(b, Options{})
	l := tlsListener(testutil.FreePort(b), config.TLSImplicit, ks)
	apply(b, m, "bench", l)
	cfg := m.listeners["bench"].gen.Load().implicit
	tc := &trackedConn{}
	hello := &tls.ClientHelloInfo{Conn: tc, SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12}}
	b.ReportAllocs()
	for b.Loop() {
		per, err := cfg.GetConfigForClient(hello)
		if err != nil || per.VerifyConnection(tls.ConnectionState{Version: tls.VersionTLS13}) != nil {
			b.Fatal(err)
		}
	}
}
