package probe

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

// pki is a CA and a leaf for mx.test signed by it.
type pki struct {
	roots *x509.CertPool
	cert  tls.Certificate
}

func newPKI(t *testing.T) pki {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "probe test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "mx.test"}, DNSNames: []string{"mx.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return pki{roots: roots, cert: tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: key}}
}

// session is one scripted server connection.
type session struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	cfg  *tls.Config
}

func (s *session) send(lines ...string) {
	for _, l := range lines {
		s.conn.Write([]byte(l + "\r\n"))
	}
}

func (s *session) expect(want string) bool {
	l, err := s.r.ReadString('\n')
	if err != nil {
		s.t.Errorf("server: reading %q: %v", want, err)
		return false
	}
	if got := strings.TrimRight(l, "\r\n"); got != want {
		s.t.Errorf("server: client sent %q, want %q", got, want)
		return false
	}
	return true
}

// upgrade runs the server side of the handshake.
func (s *session) upgrade() bool {
	tc := tls.Server(s.conn, s.cfg)
	if err := tc.Handshake(); err != nil {
		s.t.Logf("server: handshake: %v", err)
		return false
	}
	s.conn, s.r = tc, bufio.NewReader(tc)
	return true
}

// serve runs script on the first connection to a fresh listener.
func serve(t *testing.T, p pki, script func(*session)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(testutil.HangGuard))
		script(&session{t: t, conn: c, r: bufio.NewReader(c), cfg: &tls.Config{Certificates: []tls.Certificate{p.cert}}})
	}()
	return ln.Addr().String()
}

func TestProbe(t *testing.T) {
	p := newPKI(t)
	cases := []struct {
		name      string
		protocol  string
		mode      string
		script    func(*session)
		greeting  string
		errStep   string // "" for success
		errSubstr string
	}{
		{
			// RFC 3207 4: EHLO lists STARTTLS; 220 to STARTTLS, then TLS.
			name: "smtp starttls", protocol: SMTP, mode: StartTLS,
			script: func(s *session) {
				s.send("220-mx.test ESMTP", "220 ready")
				if !s.expect("EHLO mailstack-probe") {
					return
				}
				s.send("250-mx.test", "250-PIPELINING", "250-STARTTLS", "250 8BITMIME")
				if s.expect("STARTTLS") {
					s.send("220 2.0.0 go ahead")
					if s.upgrade() {
						s.expect("QUIT")
					}
				}
			},
			greeting: "220-mx.test ESMTP",
		},
		{
			name: "submission starttls not offered", protocol: Submission, mode: StartTLS,
			script: func(s *session) {
				s.send("220 mx.test ESMTP")
				s.expect("EHLO mailstack-probe")
				s.send("250-mx.test", "250 AUTH PLAIN")
			},
			errStep: "starttls", errSubstr: "does not offer STARTTLS",
		},
		{
			name: "smtp starttls refused", protocol: SMTP, mode: StartTLS,
			script: func(s *session) {
				s.send("220 mx.test ESMTP")
				s.expect("EHLO mailstack-probe")
				s.send("250-mx.test", "250 STARTTLS")
				s.expect("STARTTLS")
				s.send("454 4.7.0 TLS not available")
			},
			errStep: "starttls", errSubstr: "454 4.7.0",
		},
		{
			name: "smtp greeting 554", protocol: SMTP, mode: StartTLS,
			script:  func(s *session) { s.send("554 no service") },
			errStep: "greeting", errSubstr: "not 220",
		},
		{
			name: "smtp implicit", protocol: SMTP, mode: Implicit,
			script: func(s *session) {
				if s.upgrade() {
					s.send("220 mx.test ESMTP")
					s.expect("QUIT")
				}
			},
			greeting: "220 mx.test ESMTP",
		},
		{
			// RFC 9051 6.2.1: tagged OK, then the handshake; untagged
			// lines before it are allowed.
			name: "imap starttls", protocol: IMAP, mode: StartTLS,
			script: func(s *session) {
				s.send("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready")
				if s.expect("a STARTTLS") {
					s.send("* NOTE untagged first", "a OK begin TLS")
					if s.upgrade() {
						s.expect("z LOGOUT")
					}
				}
			},
			greeting: "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready",
		},
		{
			name: "imap starttls refused", protocol: IMAP, mode: StartTLS,
			script: func(s *session) {
				s.send("* OK ready")
				s.expect("a STARTTLS")
				s.send("a BAD STARTTLS not supported")
			},
			errStep: "starttls", errSubstr: "a BAD",
		},
		{
			name: "imap implicit", protocol: IMAP, mode: Implicit,
			script: func(s *session) {
				if s.upgrade() {
					s.send("* OK [CAPABILITY IMAP4rev2] ready")
					s.expect("z LOGOUT")
				}
			},
			greeting: "* OK [CAPABILITY IMAP4rev2] ready",
		},
		{
			// RFC 2595 4: +OK to STLS, then the handshake.
			name: "pop3 stls", protocol: POP3, mode: StartTLS,
			script: func(s *session) {
				s.send("+OK POP3 ready")
				if s.expect("STLS") {
					s.send("+OK begin TLS")
					if s.upgrade() {
						s.expect("QUIT")
					}
				}
			},
			greeting: "+OK POP3 ready",
		},
		{
			name: "pop3 stls refused", protocol: POP3, mode: StartTLS,
			script: func(s *session) {
				s.send("+OK POP3 ready")
				s.expect("STLS")
				s.send("-ERR command not permitted")
			},
			errStep: "starttls", errSubstr: "-ERR",
		},
		{
			name: "pop3 implicit", protocol: POP3, mode: Implicit,
			script: func(s *session) {
				if s.upgrade() {
					s.send("+OK POP3 ready")
					s.expect("QUIT")
				}
			},
			greeting: "+OK POP3 ready",
		},
		{
			name: "implicit against a plain-text port", protocol: POP3, mode: Implicit,
			script:  func(s *session) { s.send("+OK POP3 ready"); time.Sleep(100 * time.Millisecond) },
			errStep: "handshake",
		},
		{
			name: "server hangs up", protocol: IMAP, mode: StartTLS,
			script:  func(s *session) {},
			errStep: "greeting", errSubstr: "closed",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := serve(t, p, tc.script)
			res, err := Probe(context.Background(), Options{
				Address: addr, Protocol: tc.protocol, Mode: tc.mode, ServerName: "mx.test",
				Roots: p.roots, Timeout: 3 * time.Second,
			})
			if tc.errStep != "" {
				var pe *Error
				if err == nil || !errors.As(err, &pe) || pe.Step != tc.errStep || !strings.Contains(err.Error(), tc.errSubstr) {
					t.Fatalf("err = %v, want a %s error containing %q", err, tc.errStep, tc.errSubstr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Greeting != tc.greeting {
				t.Errorf("greeting = %q, want %q", res.Greeting, tc.greeting)
			}
			if res.Version != "TLS 1.3" || res.CipherSuite == "" {
				t.Errorf("negotiated %q / %q, want TLS 1.3 and a suite", res.Version, res.CipherSuite)
			}
			if len(res.Chain) != 2 || res.Chain[0].Subject.CommonName != "mx.test" {
				t.Errorf("chain = %d certificates, leaf %v", len(res.Chain), res.Chain)
			}
			if !res.Verified() {
				t.Errorf("chain did not verify: %s", res.VerifyError)
			}
		})
	}
}

func TestProbeVerification(t *testing.T) {
	p := newPKI(t)
	implicit := func(s *session) {
		if s.upgrade() {
			s.send("220 mx.test ESMTP")
			s.expect("QUIT")
		}
	}
	cases := []struct {
		name       string
		serverName string
		roots      *x509.CertPool
		wantErr    string // "" when it verifies
	}{
		{"matching name and CA", "mx.test", p.roots, ""},
		{"other name", "other.test", p.roots, "other.test"},
		{"unknown CA", "mx.test", x509.NewCertPool(), "unknown authority"},
		{"IP address without IP SAN", "", p.roots, "127.0.0.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Probe(context.Background(), Options{
				Address: serve(t, p, implicit), Protocol: SMTP, Mode: Implicit,
				ServerName: tc.serverName, Roots: tc.roots, Timeout: 3 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantErr == "" && !res.Verified() {
				t.Errorf("did not verify: %s", res.VerifyError)
			}
			if tc.wantErr != "" && !strings.Contains(res.VerifyError, tc.wantErr) {
				t.Errorf("verify error = %q, want it to mention %q", res.VerifyError, tc.wantErr)
			}
			if len(res.Chain) == 0 {
				t.Error("no chain reported for an unverified server")
			}
		})
	}
}

func TestProbeRefusesBadOptions(t *testing.T) {
	cases := []struct {
		name string
		o    Options
		want string
	}{
		{"protocol", Options{Address: "127.0.0.1:1", Protocol: "http", Mode: Implicit}, `protocol "http"`},
		{"mode", Options{Address: "127.0.0.1:1", Protocol: SMTP, Mode: "none"}, `mode "none"`},
		{"address", Options{Address: "nohost", Protocol: SMTP, Mode: Implicit}, "dial"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Probe(context.Background(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestSMTPReply(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		code  int
		lines int
		bad   bool
	}{
		{"single", "220 hi\r\n", 220, 1, false},
		{"multi", "250-a\r\n250-b\r\n250 c\r\n", 250, 3, false},
		{"bare code", "250\r\n", 250, 1, false},
		{"short", "25\r\n", 0, 1, true},
		{"not a number", "abc def\r\n", 0, 1, true},
		{"bad separator", "250/x\r\n", 0, 1, true},
		{"truncated", "250-a\r\n", 0, 1, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c1, c2 := net.Pipe()
			go func() { c2.Write([]byte(tc.in)); c2.Close() }()
			code, lines, err := smtpReply(newText(c1))
			if (err != nil) != tc.bad || code != tc.code || len(lines) != tc.lines {
				t.Errorf("smtpReply(%q) = %d, %q, %v", tc.in, code, lines, err)
			}
		})
	}
}
