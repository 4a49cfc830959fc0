package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

func TestModes(t *testing.T) {
	t.Parallel()
	ks := newKeystore(t, t.TempDir(), "mail.jks", ecdsaKey)
	m, _ := newManager(t, Options{})
	tests := []struct {
		mode string
		// greeting is what the client sees before it does anything.
		greeting string
	}{
		{config.TLSImplicit, "HELLO imap#1 tls"},
		{config.TLSStartTLS, "HELLO imap#2 plain"},
		{config.TLSNone, "HELLO imap#3 plain"},
	}
	for _, tc := range tests {
		port := testutil.FreePort(t)
		l := tlsListener(port, tc.mode, ks)
		if tc.mode == config.TLSNone {
			l.TLS = config.TLS{Mode: config.TLSNone}
		}
		apply(t, m, tc.mode, l)
		addr := l.Addr()
		st, ok := m.Status(tc.mode)
		if !ok || !st.Bound || st.Address != addr || st.Mode != tc.mode {
			t.Errorf("%s: status %+v", tc.mode, st)
		}
		switch tc.mode {
		case config.TLSImplicit:
			c := mustDialTLS(t, addr)
			if got := c.mustLine(); got != tc.greeting {
				t.Errorf("implicit: greeting %q, want %q", got, tc.greeting)
			}
			if c.fingerprint() != ks.fingerprint || st.CertificateFingerprint != ks.fingerprint {
				t.Errorf("implicit: served %s, status says %s, keystore has %s", c.fingerprint(), st.CertificateFingerprint, ks.fingerprint)
			}
			if st.CertificateNotAfter.IsZero() {
				t.Error("implicit: status has no certificate_not_after")
			}
		case config.TLSStartTLS:
			c := dialPlain(t, addr)
			if got := c.mustLine(); got != tc.greeting {
				t.Errorf("starttls: greeting %q, want %q", got, tc.greeting)
			}
			if err := c.startTLS(nil); err != nil {
				t.Fatalf("starttls: %v", err)
			}
			if got := c.cmd("NOOP"); got != "imap#2 tls NOOP" {
				t.Errorf("starttls: after TLS %q", got)
			}
			if c.fingerprint() != ks.fingerprint {
				t.Errorf("starttls: served %s, keystore has %s", c.fingerprint(), ks.fingerprint)
			}
		case config.TLSNone:
			c := dialPlain(t, addr)
			if got := c.mustLine(); got != tc.greeting {
				t.Errorf("none: greeting %q, want %q", got, tc.greeting)
			}
			if got := c.cmd("STARTTLS"); got != "imap#3 plain STARTTLS" {
				t.Errorf("none: STARTTLS answered %q, want it treated as an unknown line", got)
			}
			if st.CertificateFingerprint != "" {
				t.Errorf("none: status reports a certificate %s", st.CertificateFingerprint)
			}
		}
	}
}

// On an implicit-TLS port a plain-text client gets no greeting: the
// server waits for a ClientHello, and what a plain client sends instead
// ends the connection with at most a TLS alert.
func TestImplicitTLSPlainClientGetsNoGreeting(t *testing.T) {
	t.Parallel()
	ks := newKeystore(t, t.TempDir(), "mail.jks", ecdsaKey)
	m, _ := newManager(t, Options{})
	l := tlsListener(testutil.FreePort(t), config.TLSImplicit, ks)
	apply(t, m, "smtps", l)

	c := dialPlain(t, l.Addr())
	c.nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 64)
	if n, err := c.nc.Read(buf); n > 0 || !isTimeout(err) {
		t.Fatalf("a plain client got %q (%v) before saying anything", buf[:n], err)
	}
	c.nc.SetDeadline(time.Now().Add(testutil.HangGuard))
	io.WriteString(c.nc, "EHLO plain.example\r\n")
	got, _ := io.ReadAll(c.nc)
	if strings.Contains(string(got), "HELLO") || (len(got) > 0 && got[0] != 0x15) {
		t.Fatalf("a plain client got %q, want nothing or a TLS alert", got)
	}
	testutil.Eventually(t, "the connection to be counted closed", func() bool {
		st, _ := m.Status("smtps")
		return st.OpenConnections == 0
	})
}

// A client that opens an implicit-TLS connection and never finishes the
// handshake is dropped after HandshakeTimeout and never reaches a front
// end (slowloris on the handshake).
func TestHandshakeTimeout(t *testing.T) {
	t.Parallel()
	ks := newKeystore(t, t.TempDir(), "mail.jks", ecdsaKey)
	m, f := newManager(t, Options{HandshakeTimeout: 300 * time.Millisecond})
	l := tlsListener(testutil.FreePort(t), config.TLSImplicit, ks)
	apply(t, m, "imaps", l)

	c := dialPlain(t, l.Addr())
	io.WriteString(c.nc, "\x16\x03\x01") // the start of a record, then nothing
	start := time.Now()
	if _, err := io.ReadAll(c.nc); err != nil {
		t.Fatalf("read: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("connection closed after %s, want about 300ms", d)
	}
	testutil.Eventually(t, "the connection to be counted closed", func() bool {
		st, _ := m.Status("imaps")
		return st.OpenConnections == 0
	})
	if n := f.n.Load(); n != 1 {
		t.Errorf("%d front ends built", n)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Changing a listener's TLS mode swaps its front end on the same socket:
// the port never stops accepting, the session in flight on it keeps its
// front end, and a session on another listener is untouched.
func TestHotSwapModeKeepsSocketAndSessions(t *testing.T) {
	t.Parallel()
	ks := newKeystore(t, t.TempDir(), "mail.jks", ecdsaKey)
	m, _ := newManager(t, Options{})
	a := tlsListener(testutil.FreePort(t), config.TLSImplicit, ks)
	b := tlsListener(testutil.FreePort(t), config.TLSStartTLS, ks)
	apply(t, m, "a", a)
	apply(t, m, "b", b)
	sockBefore := m.listeners["a"].sock

	onA := mustDialTLS(t, a.Addr())
	if got := onA.mustLine(); got != "HELLO imap#1 tls" {
		t.Fatalf("greeting on a: %q", got)
	}
	onB := dialPlain(t, b.Addr())
	onB.mustLine()
	if err := onB.startTLS(nil); err != nil {
		t.Fatal(err)
	}

	// Dial a continuously while it changes: no attempt may be refused.
	stop := make(chan struct{})
	var refused atomic.Int64
	var dials sync.WaitGroup
	dials.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			c, err := net.Dial("tcp", a.Addr())
			if err != nil {
				if errors.Is(err, syscall.ECONNREFUSED) {
					refused.Add(1)
				}
				continue
			}
			c.Close()
		}
	})

	for _, mode := range []string{config.TLSStartTLS, config.TLSNone, config.TLSImplicit, config.TLSStartTLS} {
		next := a
		next.TLS.Mode = mode
		if mode == config.TLSNone {
			next.TLS = config.TLS{Mode: config.TLSNone}
		}
		apply(t, m, "a", next)
		if got := onA.cmd("PING"); got != "imap#1 tls PING" {
			t.Fatalf("after switching a to %s, the session on a says %q", mode, got)
		}
		if got := onB.cmd("PING"); got != "imap#2 tls PING" {
			t.Fatalf("after switching a to %s, the session on b says %q", mode, got)
		}
	}
	close(stop)
	dials.Wait()
	if n := refused.Load(); n > 0 {
		t.Errorf("%d connection attempts refused while the listener changed", n)
	}
	if m.listeners["a"].sock != sockBefore {
		t.Error("the socket was replaced")
	}
	// New connections get the last mode, from the last front end.
	c := dialPlain(t, a.Addr())
	if got := c.mustLine(); got != "HELLO imap#6 plain" {
		t.Errorf("new connection: %q", got)
	}
	if err := c.startTLS(nil); err != nil {
		t.Fatal(err)
	}
	if got := onA.cmd("QUIT"); got != "BYE" {
		t.Errorf("QUIT on the old session: %q", got)
	}
}

// A keystore rewritten on disk (a renewal, a keytool edit) is served from
// the next handshake after the watcher sees it, without a restart and
// without touching sessions in flight.
func TestKeystoreHotReload(t *testing.T) {
	t.Parallel()
	ks := newKeystore(t, t.TempDir(), "mail.p12", ecdsaKey)
	m, f := newManager(t, Options{})
	l := tlsListener(testutil.FreePort(t), config.TLSImplicit, ks)
	apply(t, m, "imaps", l)

	old := mustDialTLS(t, l.Addr())
	old.mustLine()
	if old.fingerprint() != ks.fingerprint {
		t.Fatal("served the wrong certificate")
	}
	first := ks.fingerprint
	ks.rewrite(t, ecdsaKey)
	if ks.fingerprint == first {
		t.Fatal("rewrite made the same certificate")
	}
	testutil.Eventually(t, "status to report the new certificate", func() bool {
		st, _ := m.Status("imaps")
		return st.CertificateFingerprint == ks.fingerprint
	})
	c := mustDialTLS(t, l.Addr())
	if got := c.fingerprint(); got != ks.fingerprint {
		t.Errorf("after the reload the handshake served %s, want %s", got, ks.fingerprint)
	}
	if got := c.mustLine(); got != "HELLO imap#1 tls" {
		t.Errorf("greeting %q: the front end was rebuilt", got)
	}
	if got := old.cmd("PING"); got != "imap#1 tls PING" {
		t.Errorf("session in flight: %q", got)
	}
	if n := f.n.Load(); n != 1 {
		t.Errorf("%d front ends built; a reload needs none", n)
	}
}

// A keystore that becomes unreadable keeps the previous certificate
// serving, and status says why; fixing the file clears the error.
func TestBadKeystoreOnReloadKeepsServing(t *testing.T) {
	t.Parallel()
	ks := newKeystore(t, t.TempDir(), "mail.jks", ecdsaKey)
	m, _ := newManager(t, Options{})
	l := tlsListener(testutil.FreePort(t), config.TLSImplicit, ks)
	apply(t, m, "imaps", l)
	good := ks.fingerprint

	for _, bad := range []struct {
		name  string
		write func()
	}{
		{"truncated", func() {
			data, err := os.ReadFile(ks.path)
			if err != nil {
				t.Fatal(err)
			}
			writeAtomic(t, ks.path, data[:len(data)/2])
		}},
		{"other password", func() {
			other := newKeystore(t, t.TempDir(), "other.jks", ecdsaKey)
			data, err := os.ReadFile(other.path)
			if err != nil {
				t.Fatal(err)
			}
			// Same bytes with another store password: decoding fails the
			// integrity check.
			writeAtomic(t, ks.path, tamper(data))
		}},
		{"removed", func() { os.Remove(ks.path) }},
	} {
		bad.write()
		var st Status
		testutil.Eventually(t, bad.name+": status to report the error", func() bool {
			st, _ = m.Status("imaps")
			return st.LastError != ""
		})
		if !strings.Contains(st.LastError, ks.path) {
			t.Errorf("%s: last_error %q does not name the keystore", bad.name, st.LastError)
		}
		if strings.Contains(st.LastError, testPassword) {
			t.Errorf("%s: last_error %q shows the password", bad.name, st.LastError)
		}
		if st.CertificateFingerprint != good {
			t.Errorf("%s: status reports %s, want the old %s", bad.name, st.CertificateFingerprint, good)
		}
		c := mustDialTLS(t, l.Addr())
		if got := c.fingerprint(); got != good {
			t.Errorf("%s: served %s, want the old certificate", bad.name, got)
		}
		if got := c.mustLine(); !strings.HasPrefix(got, "HELLO") {
			t.Errorf("%s: greeting %q", bad.name, got)
		}
		// Fix it again for the next case.
		os.Remove(ks.path)
		ks.rewrite(t, ecdsaKey)
		good = ks.fingerprint
		testutil.Eventually(t, bad.name+": the error to clear", func() bool {
			st, _ = m.Status("imaps")
			return st.LastError == "" && st.CertificateFingerprint == good
		})
	}
}

// tamper flips a byte near the end of a keystore (inside its integrity
// digest or MAC).
func tamper(data []byte) []byte {
	out := append([]byte(nil), data...)
	out[len(out)-3] ^= 0xff
	return out
}

func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// A listener that cannot bind fails with the address in the error, and
// nothing else changes: a new listener is not created, an existing one
// keeps its old address and settings.
func TestPortInUse(t *testing.T) {
	t.Parallel()
	ks := newKeystore(t, t.TempDir(), "mail.jks", ecdsaKey)
	m, f := newManager(t, Options{})
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port

	a := tlsListener(testutil.FreePort(t), config.TLSImplicit, ks)
	apply(t, m, "a", a)
	inflight := mustDialTLS(t, a.Addr())
	inflight.mustLine()

	// A new listener on the busy port.
	err = m.Apply("b", tlsListener(busyPort, config.TLSStartTLS, ks))
	if err == nil || !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), busy.Addr().String()) {
		t.Fatalf("Apply on a busy port: %v; want a conflict naming %s", err, busy.Addr())
	}
	if _, ok := m.Status("b"); ok {
		t.Error("listener b exists after its bind failed")
	}
	// The existing listener moved to the busy port.
	moved := a
	moved.Port = busyPort
	moved.TLS.Mode = config.TLSStartTLS
	if err := m.Apply("a", moved); err == nil || !strings.Contains(err.Error(), busy.Addr().String()) {
		t.Fatalf("moving a to a busy port: %v", err)
	}
	st, _ := m.Status("a")
	if st.Address != a.Addr() || st.Mode != config.TLSImplicit || !st.Bound {
		t.Errorf("a after the failed change: %+v", st)
	}
	if got := inflight.cmd("PING"); got != "imap#1 tls PING" {
		t.Errorf("session in flight: %q", got)
	}
	c := mustDialTLS(t, a.Addr())
	if got := c.mustLine(); got != "HELLO imap#1 tls" {
		t.Errorf("new connection to a: %q", got)
	}
	if n := f.n.Load(); n != 1 {
		t.Errorf("%d front ends built", n)
	}
	if len(m.certs.sources) != 1 {
		t.Errorf("%d certificate sources held after failed changes, want 1", len(m.certs.sources))
	}
}

// A keystore that does not open refuses the change before anything moves.
func TestBadKeystoreRefusedOnApply(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ks := newKeystore(t, dir, "mail.jks", ecdsaKey)
	m, _ := newManager(t, Options{})
	a := tlsListener(testutil.FreePort(t), config.TLSImplicit, ks)
	apply(t, m, "a", a)

	for name, mutate := range map[string]func(*config.Listener){
		"wrong password": func(l *config.Listener) { l.TLS.KeystorePassword = "wrong-password" },
		"missing file":   func(l *config.Listener) { l.TLS.KeystorePath = dir + "/missing.jks" },
		"unknown alias":  func(l *config.Listener) { l.TLS.Alias = "nope" },
	} {
		next := a
		next.TLS.Mode = config.TLSStartTLS
		mutate(&next)
		err := m.Apply("a", next)
		if err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Apply = %v, want an invalid-request error", name, err)
			continue
		}
		if strings.Contains(err.Error(), "wrong-password") || strings.Contains(err.Error(), testPassword) {
			t.Errorf("%s: error shows a password: %v", name, err)
		}
		st, _ := m.Status("a")
		if st.Mode != config.TLSImplicit || st.CertificateFingerprint != ks.fingerprint {
			t.Errorf("%s: a changed: %+v", name, st)
		}
	}
	c := mustDialTLS(t, a.Addr())
	if got := c.mustLine(); got != "HELLO imap#1 tls" {
		t.Errorf("a after refused changes: %q", got)
	}
}

// Two listeners on one port, on 127.0.0.1 and 127.0.0.2 (Linux routes all
// of 127/8 to lo), each serve their own certificate.
func TestSamePortDifferentAddresses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ks1 := newKeystore(t, dir, "one.jks", ecdsaKey)
	ks2 := newKeystore(t, dir, "two.p12", ecdsaKey)
	m, _ := newManager(t, Options{})
	port := testutil.FreePort(t)
	l1 := tlsListener(port, config.TLSImplicit, ks1)
	l2 := tlsListener(port, config.TLSImplicit, ks2)
	l2.Address = "127.0.0.2"
	apply(t, m, "one", l1)
	if err := m.Apply("two", l2); err != nil {
		if strings.Contains(err.Error(), "assign requested address") {
			t.Skip("127.0.0.2 is not a local address here")
		}
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr string
		ks   *testKeystore
	}{{l1.Addr(), ks1}, {l2.Addr(), ks2}} {
		c := mustDialTLS(t, tc.addr)
		if got := c.fingerprint(); got != tc.ks.fingerprint {
			t.Errorf("%s served %s, want %s", tc.addr, got, tc.ks.fingerprint)
		}
	}
}

// client_auth trusts the keystore's trusted certificate entries, as a Java
// truststore would.
func TestClientAuth(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newCA(t, "Client CA")
	stranger := newCA(t, "Stranger CA")
	ks := newKeystore(t, dir, "mail.jks", ecdsaKey, ca.cert)
	good := ca.clientCert(t, "alice")
	bad := stranger.clientCert(t, "mallory")
	m, _ := newManager(t, Options{})

	tests := []struct {
		policy string
		cert   *tls.Certificate
		ok     bool
	}{
		{config.ClientAuthRequire, &good, true},
		{config.ClientAuthRequire, nil, false},
		{config.ClientAuthRequire, &bad, false},
		{config.ClientAuthRequest, &good, true},
		{config.ClientAuthRequest, nil, true},
		{config.ClientAuthRequest, &bad, false},
		{config.ClientAuthNone, nil, true},
	}
	for _, tc := range tests {
		name := tc.policy + "/"
		switch tc.cert {
		case nil:
			name += "no certificate"
		case &good:
			name += "trusted certificate"
		default:
			name += "untrusted certificate"
		}
		t.Run(name, func(t *testing.T) {
			l := tlsListener(testutil.FreePort(t), config.TLSImplicit, ks)
			l.TLS.ClientAuth = tc.policy
			apply(t, m, name, l)
			cfg := &tls.Config{}
			if tc.cert != nil {
				// Sent whatever CAs the server names (crypto/tls would
				// otherwise keep an untrusted certificate to itself).
				cert := tc.cert
				cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
			}
			// With TLS 1.3 the client finishes its side before the server
			// checks the certificate: the verdict arrives with the first read.
			c, err := dialTLS(t, l.Addr(), cfg)
			if err == nil {
				_, err = c.line()
			}
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && err == nil {
				t.Fatal("accepted")
			}
		})
	}

	t.Run("no trusted entries", func(t *testing.T) {
		plain := newKeystore(t, dir, "plain.jks", ecdsaKey)
		l := tlsListener(testutil.FreePort(t), config.TLSImplicit, plain)
		l.TLS.ClientAuth = config.ClientAuthRequire
		err := m.Apply("no-trust", l)
		if err == nil || !strings.Contains(err.Error(), "trusted certificate") || !strings.Contains(err.Error(), plain.path) {
			t.Fatalf("Apply = %v, want an error about the missing trusted entries", err)
		}
	})
}

func TestMinVersionAndCipherSuites(t *testing.T) {
	t.Parallel()
	ks := newKeystore(t, t.TempDir(), "mail.jks", ecdsaKey)
	m, _ := newManager(t, Options{})

	t.Run("min_version 1.3 refuses a TLS 1.2 client", func(t *testing.T) {
		l := tlsListener(testutil.FreePort(t), config.TLSImplicit, ks)
		l.TLS.MinVersion = "1.3"
		apply(t, m, "v13", l)
		if _, err := dialTLS(t, l.Addr(), &tls.Config{MaxVersion: tls.VersionTLS12}); err == nil {
			t.Error("a TLS 1.2 client was accepted")
		}
		c, err := dialTLS(t, l.Addr(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if v := c.nc.(*tls.Conn).ConnectionState().Version; v != tls.VersionTLS13 {
			t.Errorf("version %x", v)
		}
	})
	t.Run("default min_version 1.2 refuses TLS 1.1", func(t *testing.T) {
		l := tlsListener(testutil.FreePort(t), config.TLSImplicit, ks)
		apply(t, m, "v12", l)
		if _, err := dialTLS(t, l.Addr(), &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
			t.Error("a TLS 1.1 client was accepted")
		}
	})
	t.Run("cipher_suites", func(t *testing.T) {
		l := tlsListener(testutil.FreePort(t), config.TLSStartTLS, ks)
		l.TLS.CipherSuites = []string{"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"}
		apply(t, m, "suites", l)
		try := func(suites ...uint16) (uint16, error) {
			c := dialPlain(t, l.Addr())
			c.mustLine()
			err := c.startTLS(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: suites})
			if err != nil {
				return 0, err
			}
			return c.nc.(*tls.Conn).ConnectionState().CipherSuite, nil
		}
		if _, err := try(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384); err == nil {
			t.Error("a client without the configured suite was accepted")
		}
		got, err := try(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256)
		if err != nil || got != tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 {
			t.Errorf("negotiated %s, %v", tls.CipherSuiteName(got), err)
		}
	})
}

func TestMaxConnections(t *testing.T) {
	t.Parallel()
	m, _ := newManager(t, Options{})
	m.SetMaxConnections(2)
	l := tlsListener(testutil.FreePort(t), config.TLSNone, nil)
	apply(t, m, "smtp", l)

	c1, c2 := dialPlain(t, l.Addr()), dialPlain(t, l.Addr())
	c1.mustLine()
	c2.mustLine()
	c3 := dialPlain(t, l.Addr())
	if got := c3.mustLine(); got != "FULL imap#1" {
		t.Fatalf("third connection got %q, want the front end's refusal", got)
	}
	if got, err := c3.line(); err == nil {
		t.Fatalf("the refused connection stays open: %q", got)
	}
	c1.cmd("QUIT")
	testutil.Eventually(t, "a slot to free up", func() bool {
		st, _ := m.Status("smtp")
		return st.OpenConnections == 1
	})
	c4 := dialPlain(t, l.Addr())
	if got := c4.mustLine(); !strings.HasPrefix(got, "HELLO") {
		t.Errorf("fourth connection: %q", got)
	}
}

func TestMaxConnectionsPerIP(t *testing.T) {
	t.Parallel()
	m, _ := newManager(t, Options{})
	l := tlsListener(testutil.FreePort(t), config.TLSNone, nil)
	apply(t, m, "smtp", l)

	from := func(src string) *client {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: testutil.HangGuard}
		nc, err := d.Dial("tcp", l.Addr())
		if err != nil {
			t.Skipf("cannot dial from %s: %v", src, err)
		}
		return newClient(t, nc)
	}
	greeted := func(c *client) bool {
		line, err := c.line()
		if err == nil && strings.HasPrefix(line, "FULL") && line != "FULL imap#1 per-client" {
			t.Errorf("refusal %q, want the per-client one", line)
		}
		return err == nil && strings.HasPrefix(line, "HELLO")
	}

	m.SetMaxConnectionsPerIP(2, false)
	a1, a2 := from("127.0.0.1"), from("127.0.0.1")
	if !greeted(a1) || !greeted(a2) {
		t.Fatal("connections under the limit were refused")
	}
	if greeted(from("127.0.0.1")) {
		t.Error("a third connection from 127.0.0.1 was served")
	}
	if !greeted(from("127.0.0.2")) {
		t.Error("another address was refused")
	}
	a1.cmd("QUIT")
	testutil.Eventually(t, "a slot for 127.0.0.1", func() bool { return greeted(from("127.0.0.1")) })

	// The default exempts loopback clients.
	m.SetMaxConnectionsPerIP(config.DefaultMaxConnectionsPerIP, true)
	for range 5 {
		if !greeted(from("127.0.0.1")) {
			t.Fatal("a loopback client was limited though loopback is exempt")
		}
	}
	if st, _ := m.Status("smtp"); st.OpenConnections < 7 {
		t.Errorf("open connections %d", st.OpenConnections)
	}
}

// A listener's own limits win over the server's, in place, and its own
// per-client limit applies to loopback clients, which the server's
// default exempts.
func TestListenerOwnLimits(t *testing.T) {
	t.Parallel()
	m, _ := newManager(t, Options{})
	m.SetMaxConnections(config.DefaultMaxConnections)
	m.SetMaxConnectionsPerIP(config.DefaultMaxConnectionsPerIP, true)
	l := tlsListener(testutil.FreePort(t), config.TLSNone, nil)
	l.MaxConnectionsPerIP = 2
	apply(t, m, "smtp", l)
	served := func() (*client, string) {
		c := dialPlain(t, l.Addr())
		line, _ := c.line()
		return c, line
	}
	var open []*client
	for range 2 {
		c, line := served()
		if !strings.HasPrefix(line, "HELLO") {
			t.Fatalf("a connection under the listener's per-client limit got %q", line)
		}
		open = append(open, c)
	}
	if _, line := served(); line != "FULL imap#1 per-client" {
		t.Fatalf("a third loopback connection got %q, want the per-client refusal", line)
	}

	// In place: the limit of all clients, and the per-client one back to
	// the server's (loopback exempt); open sessions stay.
	l.MaxConnectionsPerIP, l.MaxConnections = 0, 3
	apply(t, m, "smtp", l)
	c, line := served()
	if !strings.HasPrefix(line, "HELLO") {
		t.Fatalf("under the server's default, loopback is exempt; got %q", line)
	}
	open = append(open, c)
	if _, line := served(); !strings.HasPrefix(line, "FULL ") || strings.HasSuffix(line, "per-client") {
		t.Fatalf("a fourth connection got %q, want the listener's refusal at 3", line)
	}
	if st, _ := m.Status("smtp"); st.OpenConnections != 3 {
		t.Errorf("open connections %d, want the 3 served", st.OpenConnections)
	}
}

// Remove frees the port and ends the sessions after draining them.
func TestRemove(t *testing.T) {
	t.Parallel()
	m, _ := newManager(t, Options{DrainTimeout: 200 * time.Millisecond})
	l := tlsListener(testutil.FreePort(t), config.TLSNone, nil)
	apply(t, m, "pop3", l)
	c := dialPlain(t, l.Addr())
	c.mustLine()
	if err := m.Remove("pop3"); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", l.Addr()); err == nil {
		t.Error("the port still accepts after Remove")
	}
	// The session drains, then is closed at the drain deadline.
	if _, err := io.ReadAll(c.nc); err != nil {
		t.Errorf("session: %v", err)
	}
	ln, err := net.Listen("tcp", l.Addr())
	if err != nil {
		t.Fatalf("port not freed: %v", err)
	}
	ln.Close()
	if err := m.Remove("pop3"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Remove: %v", err)
	}
}

// With inotify a keystore change is served at once, not at the next poll:
// replaced by rename (keystore.Update, most tools) or rewritten in place
// (keytool).
func TestKeystoreChangeNotified(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ks := newKeystore(t, dir, "mail.jks", ecdsaKey)
	m, _ := newManager(t, Options{CertPollInterval: time.Hour})
	l := tlsListener(testutil.FreePort(t), config.TLSImplicit, ks)
	apply(t, m, "imaps", l)
	served := func() bool {
		st, _ := m.Status("imaps")
		return st.CertificateFingerprint == ks.fingerprint
	}

	ks.rewrite(t, ecdsaKey) // atomic rename
	testutil.Eventually(t, "the renamed keystore to be served", served)

	other := newKeystore(t, t.TempDir(), "other.jks", ecdsaKey)
	data, err := os.ReadFile(other.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ks.path, data, 0o600); err != nil { // in place
		t.Fatal(err)
	}
	ks.fingerprint = other.fingerprint
	testutil.Eventually(t, "the keystore rewritten in place to be served", served)
	c := mustDialTLS(t, l.Addr())
	if got := c.fingerprint(); got != other.fingerprint {
		t.Errorf("served %s, want %s", got, other.fingerprint)
	}
}

// A CA imported into the keystore after the listener started (as
// mailstack_certificate_import or keytool -importcert do) is trusted from
// the next handshake on, without the listener being applied again.
func TestClientAuthFollowsTrustedEntries(t *testing.T) {
	t.Parallel()
	first, later := newCA(t, "First CA"), newCA(t, "Later CA")
	ks := newKeystore(t, t.TempDir(), "mail.jks", ecdsaKey, first.cert)
	m, f := newManager(t, Options{})
	l := tlsListener(testutil.FreePort(t), config.TLSImplicit, ks)
	l.TLS.ClientAuth = config.ClientAuthRequire
	apply(t, m, "imaps", l)

	try := func(cert tls.Certificate) error {
		c, err := dialTLS(t, l.Addr(), &tls.Config{GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }})
		if err == nil {
			_, err = c.line()
		}
		return err
	}
	if err := try(first.clientCert(t, "alice")); err != nil {
		t.Fatalf("certificate of the trusted CA: %v", err)
	}
	newcomer := later.clientCert(t, "bob")
	if err := try(newcomer); err == nil {
		t.Fatal("certificate of a CA not in the keystore was accepted")
	}
	err := keystore.Update(context.Background(), host.LocalFile(ks.path), []byte(testPassword), "", func(k *keystore.Keystore) error {
		return k.SetTrustedCertificate("later", later.cert)
	})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the imported CA to be trusted", func() bool { return try(newcomer) == nil })
	if err := try(first.clientCert(t, "carol")); err != nil {
		t.Errorf("the first CA is no longer trusted: %v", err)
	}
	// Sessions resume across the reload (the ticket keys stay).
	cert := first.clientCert(t, "dave")
	cfg := &tls.Config{ClientSessionCache: tls.NewLRUClientSessionCache(4), GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }}
	for i := range 2 {
		c, err := dialTLS(t, l.Addr(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.mustLine()
		if resumed := c.nc.(*tls.Conn).ConnectionState().DidResume; resumed != (i == 1) {
			t.Errorf("connection %d: resumed = %v", i+1, resumed)
		}
	}
	if n := f.n.Load(); n != 1 {
		t.Errorf("%d front ends built", n)
	}
}

// Without tls.cipher_suites a TLS 1.2 client is offered only ECDHE with an
// AEAD cipher: one that knows nothing but the CBC-SHA suites Go also
// allows is refused, and naming such a suite in cipher_suites brings it
// back.
func TestDefaultCipherSuitesAreAEADOnly(t *testing.T) {
	t.Parallel()
	ks := newKeystore(t, t.TempDir(), "mail.jks", ecdsaKey)
	m, _ := newManager(t, Options{})
	cbc := &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	}}

	l := tlsListener(testutil.FreePort(t), config.TLSImplicit, ks)
	apply(t, m, "default", l)
	if _, err := dialTLS(t, l.Addr(), cbc); err == nil {
		t.Error("a client offering only CBC-SHA suites was accepted under the defaults")
	}
	for _, name := range config.DefaultCipherSuites {
		id, err := config.CipherSuiteID(name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(name, "ECDSA") {
			continue // the test keystore holds an ECDSA key
		}
		c, err := dialTLS(t, l.Addr(), &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{id}})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := c.nc.(*tls.Conn).ConnectionState().CipherSuite; got != id {
			t.Errorf("%s: negotiated %s", name, tls.CipherSuiteName(got))
		}
	}

	l2 := tlsListener(testutil.FreePort(t), config.TLSImplicit, ks)
	l2.TLS.CipherSuites = []string{"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"}
	apply(t, m, "legacy", l2)
	c, err := dialTLS(t, l2.Addr(), cbc)
	if err != nil {
		t.Fatalf("a CBC suite named in cipher_suites: %v", err)
	}
	if got := c.nc.(*tls.Conn).ConnectionState().CipherSuite; got != tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA {
		t.Errorf("negotiated %s", tls.CipherSuiteName(got))
	}
}
