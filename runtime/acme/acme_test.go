package acme_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	xacme "golang.org/x/crypto/acme"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/acme"
	"github.com/mailstack/terraform-provider-mailstack/runtime/acme/pebbletest"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/listener"
)

// The tests run a real ACME CA: Pebble with pebble-challtestsrv as its
// resolver (package pebbletest), one per test, validating challenges on
// the manager's challenge listener.

const password = "changeit"

// newService returns a Service on a fresh state directory, closed when the
// test ends.
func newService(t *testing.T, stateDir string) *acme.Service {
	t.Helper()
	s, err := acme.New(acme.Options{
		StateDir:      stateDir,
		LockRoot:      lockRoot(stateDir),
		Logger:        testLogger(t),
		ObtainTimeout: 20 * time.Second,
		RetryInterval: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// lockRoot is where newService's locks go: the state directory's parent,
// as in the runtime.
func lockRoot(stateDir string) string { return filepath.Dir(stateDir) }

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// baseConfig is an ACME keystore on p for http-01, keystore in dir.
func baseConfig(p *pebbletest.Pebble, dir string) acme.Config {
	return acme.Config{
		KeystorePath:      filepath.Join(dir, "mail.keystore"),
		KeystorePassword:  password,
		Alias:             "james",
		Domains:           []string{"mail.example.test", "smtp.example.test"},
		Email:             "postmaster@example.test",
		DirectoryURL:      p.DirectoryURL,
		CACertificatesPEM: p.HTTPSRootPEM,
		Challenge:         acme.ChallengeHTTP01,
		ChallengeAddress:  pebbletest.Addr(p.HTTPPort),
	}
}

// entry returns the keystore's private key entry alias.
func entry(t *testing.T, cfg acme.Config) (any, []*x509.Certificate) {
	t.Helper()
	ks, err := keystore.Open(context.Background(), host.LocalFile(cfg.KeystorePath), []byte(cfg.KeystorePassword))
	if err != nil {
		t.Fatal(err)
	}
	key, chain, err := ks.PrivateKeyEntry(cfg.Alias, nil)
	if err != nil {
		t.Fatal(err)
	}
	return key, chain
}

func TestIssueHTTP01JKS(t *testing.T) {
	t.Parallel()
	p := pebbletest.Start(t, pebbletest.Options{})
	dir := t.TempDir()
	s := newService(t, dir)
	cfg := baseConfig(p, dir)

	st, err := s.Put(context.Background(), "mx", cfg)
	if err != nil {
		t.Fatal(err)
	}
	key, chain := entry(t, cfg)
	if _, ok := key.(*rsa.PrivateKey); !ok {
		t.Errorf("key is %T, want RSA (the default)", key)
	}
	leaf := chain[0]
	if got := slices.Sorted(slices.Values(leaf.DNSNames)); !slices.Equal(got, cfg.Domains) {
		t.Errorf("certificate names %v, want %v", got, cfg.Domains)
	}
	if len(chain) != 2 || !strings.HasPrefix(chain[1].Subject.CommonName, "Pebble Intermediate CA") {
		t.Errorf("chain %v, want leaf and Pebble intermediate", subjects(chain))
	}
	roots, rootPEM := p.IssuerRoots(t)
	inter := x509.NewCertPool()
	inter.AddCert(chain[1])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: "smtp.example.test"}); err != nil {
		t.Errorf("keystore chain does not verify to Pebble's root: %v", err)
	}
	if st.Fingerprint != keystore.Fingerprint(leaf) || !st.NotAfter.Equal(leaf.NotAfter) {
		t.Errorf("status %+v does not describe the keystore's certificate %s", st, keystore.Fingerprint(leaf))
	}
	if st.LastAttempt.IsZero() || st.LastIssued.IsZero() || st.LastError != "" || st.ChallengeAddress != pebbletest.Addr(p.HTTPPort) {
		t.Errorf("status %+v", st)
	}
	// 90-day certificate, renewed 30 days before expiry.
	if want := leaf.NotAfter.Add(-30 * 24 * time.Hour); !st.NextRenewal.Equal(want) {
		t.Errorf("next renewal %s, want %s", st.NextRenewal, want)
	}

	// GET answers the config with defaults and without secrets.
	got, _, err := s.Get("mx")
	if err != nil {
		t.Fatal(err)
	}
	if got.KeystorePassword != "" || got.KeystoreType != "JKS" || got.Key.Algorithm != "RSA" || got.RenewBeforeDays != 30 {
		t.Errorf("Get config %+v", got)
	}

	// The same config again: nothing to do, no new certificate.
	before, _ := os.ReadFile(cfg.KeystorePath)
	st2, err := s.Put(context.Background(), "mx", cfg)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(cfg.KeystorePath)
	if st2.Fingerprint != st.Fingerprint || !st2.LastAttempt.Equal(st.LastAttempt) || !bytes.Equal(before, after) {
		t.Errorf("same config issued again or rewrote the keystore: %+v", st2)
	}

	// The keystore's lock is the provider's, not a file beside it.
	if _, err := os.Stat(cfg.KeystorePath + ".lock"); !os.IsNotExist(err) {
		t.Errorf("a lock file beside the keystore (%v)", err)
	}
	if _, err := os.Stat(host.LockPathFor(lockRoot(dir), cfg.KeystorePath)); err != nil {
		t.Errorf("no lock file where the provider takes it: %v", err)
	}

	keytoolShowsChain(t, cfg, "JKS", rootPEM)
}

// A Service that lost its record of a keystore (acme/<id>/ gone: config,
// account key, cached certificate) keeps the certificate in the keystore
// when the caller names it and it is current, and orders none; a
// fingerprint that is not the entry's, or a certificate for other
// domains, is ordered anew.
func TestPutKeepingAfterLostRecord(t *testing.T) {
	t.Parallel()
	p := pebbletest.Start(t, pebbletest.Options{})
	dir := t.TempDir()
	cfg := baseConfig(p, dir)
	s := newService(t, dir)
	first, err := s.Put(context.Background(), "mx", cfg)
	if err != nil {
		t.Fatal(err)
	}
	lose := func() {
		t.Helper()
		if err := s.Delete(context.Background(), "mx"); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, acme.Dir, "mx")); !os.IsNotExist(err) {
			t.Fatalf("the record outlived Delete: %v", err)
		}
	}

	lose()
	before, _ := os.ReadFile(cfg.KeystorePath)
	st, err := s.PutKeeping(context.Background(), "mx", cfg, first.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(cfg.KeystorePath)
	if st.Fingerprint != first.Fingerprint || !st.LastAttempt.IsZero() || !st.NextRenewal.Equal(first.NextRenewal) || !bytes.Equal(before, after) {
		t.Errorf("kept certificate: status %+v (keystore rewritten: %v); want %s renewed at %s, no order", st, !bytes.Equal(before, after), first.Fingerprint, first.NextRenewal)
	}
	// Kept means cached: a later Put without keep orders nothing either.
	if st2, err := s.Put(context.Background(), "mx", cfg); err != nil || st2.Fingerprint != first.Fingerprint || !st2.LastAttempt.IsZero() {
		t.Errorf("Put after keeping: %+v, %v", st2, err)
	}

	lose()
	st, err = s.PutKeeping(context.Background(), "mx", cfg, "AB:CD")
	if err != nil {
		t.Fatal(err)
	}
	if st.Fingerprint == first.Fingerprint || st.LastAttempt.IsZero() {
		t.Errorf("another fingerprint to keep: status %+v, want a new certificate", st)
	}

	lose()
	other := cfg
	other.Domains = []string{"smtp.example.test"}
	_, chain := entry(t, cfg)
	st, err = s.PutKeeping(context.Background(), "mx", other, keystore.Fingerprint(chain[0]))
	if err != nil {
		t.Fatal(err)
	}
	if st.Fingerprint == keystore.Fingerprint(chain[0]) || st.LastAttempt.IsZero() {
		t.Errorf("a certificate for other domains was kept: %+v", st)
	}
}

func TestIssueTLSALPN01PKCS12(t *testing.T) {
	t.Parallel()
	p := pebbletest.Start(t, pebbletest.Options{})
	dir := t.TempDir()
	s := newService(t, dir)
	cfg := baseConfig(p, dir)
	cfg.KeystorePath = filepath.Join(dir, "mail.p12")
	cfg.KeystoreType = "PKCS12"
	cfg.Key = acme.Key{Algorithm: "ECDSA", ECDSACurve: "P256"}
	cfg.Domains = []string{"imap.example.test"}
	cfg.Challenge = acme.ChallengeTLSALPN01
	cfg.ChallengeAddress = pebbletest.Addr(p.TLSPort)

	// The keystore already holds a trusted certificate the ACME entry
	// must not disturb.
	root := selfSignedEntry(t, cfg.KeystorePath, keystore.PKCS12, "other")
	_ = root

	st, err := s.Put(context.Background(), "imap", cfg)
	if err != nil {
		t.Fatal(err)
	}
	key, chain := entry(t, cfg)
	if k, ok := key.(*ecdsa.PrivateKey); !ok || k.Curve.Params().Name != "P-256" {
		t.Errorf("key is %T, want ECDSA P-256", key)
	}
	if chain[0].DNSNames[0] != "imap.example.test" || st.Fingerprint != keystore.Fingerprint(chain[0]) {
		t.Errorf("certificate %v, status %+v", chain[0].DNSNames, st)
	}
	ks, err := keystore.Open(context.Background(), host.LocalFile(cfg.KeystorePath), []byte(password))
	if err != nil {
		t.Fatal(err)
	}
	if ks.Type() != keystore.PKCS12 {
		t.Errorf("keystore type %s", ks.Type())
	}
	if _, ok := ks.Entry("other"); !ok {
		t.Error("the other entry is gone")
	}

	// An implicit-TLS listener reading the keystore serves the chain.
	roots, rootPEM := p.IssuerRoots(t)
	ln := serveKeystore(t, cfg)
	conn := dialTLS(t, ln, "imap.example.test", roots)
	if fp := servedFingerprint(conn); fp != st.Fingerprint {
		t.Errorf("served %s, want %s", fp, st.Fingerprint)
	}
	conn.Close()
	opensslVerifies(t, ln, "imap.example.test", rootPEM)
	keytoolShowsChain(t, cfg, "PKCS12", rootPEM)
}

func subjects(chain []*x509.Certificate) []string {
	var out []string
	for _, c := range chain {
		out = append(out, c.Subject.String())
	}
	return out
}

// selfSignedEntry puts a self-signed private key entry under alias into
// the keystore at path and returns its certificate.
func selfSignedEntry(t *testing.T, path string, typ keystore.Type, alias string) *x509.Certificate {
	t.Helper()
	key, err := keystore.GenerateKey(keystore.KeySpec{Algorithm: "ECDSA"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := keystore.SelfSign(key, keystore.CertificateRequest{Subject: keystore.Subject{CommonName: "placeholder"}, DNSNames: []string{"placeholder.example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	err = keystore.Update(context.Background(), host.LocalFile(path), []byte(password), typ, func(ks *keystore.Keystore) error {
		return ks.SetPrivateKeyEntry(alias, key, []*x509.Certificate{cert}, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// echoFrontend echoes what clients send: enough to see a session live on.
type echoFrontend struct{}

func (echoFrontend) Serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			_, _ = io.Copy(c, c)
		}()
	}
}

func (echoFrontend) Shutdown(context.Context) error { return nil }

// serveKeystore runs an implicit-TLS listener (runtime/listener) on the
// keystore and returns its address.
func serveKeystore(t *testing.T, cfg acme.Config) string {
	t.Helper()
	m := listener.New(listener.Options{
		NewFrontend: func(config.Listener, *tls.Config) (listener.Frontend, error) {
			return echoFrontend{}, nil
		},
		Logger:           testLogger(t),
		DrainTimeout:     time.Second,
		CertPollInterval: 50 * time.Millisecond,
	})
	port := testutil.FreePorts(t, 1)[0]
	err := m.Apply("smtps", config.Listener{
		Protocol: config.ProtocolSMTP, Address: "127.0.0.1", Port: port,
		TLS: config.TLS{Mode: config.TLSImplicit, KeystorePath: cfg.KeystorePath, KeystorePassword: cfg.KeystorePassword, Alias: cfg.Alias},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = m.Shutdown(ctx)
	})
	return pebbletest.Addr(port)
}

func dialTLS(t *testing.T, address, name string, roots *x509.CertPool) *tls.Conn {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: testutil.HangGuard}, "tcp", address, &tls.Config{ServerName: name, RootCAs: roots})
	if err != nil {
		t.Fatalf("TLS handshake with %s as %s: %v", address, name, err)
	}
	return conn
}

func servedFingerprint(c *tls.Conn) string {
	return keystore.Fingerprint(c.ConnectionState().PeerCertificates[0])
}

// echo checks that the session still answers.
func echo(t *testing.T, c *tls.Conn, msg string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(testutil.HangGuard))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("session dropped: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("session dropped: read %q, %v", buf, err)
	}
}

// keytoolShowsChain checks with JDK keytool (when installed) that Java
// reads the entry and its Pebble chain.
func keytoolShowsChain(t *testing.T, cfg acme.Config, storeType string, rootPEM []byte) {
	t.Helper()
	kt, err := exec.LookPath("keytool")
	if err != nil {
		t.Log("keytool not installed: Java's view not checked")
		return
	}
	out, err := exec.Command(kt, "-list", "-v", "-keystore", cfg.KeystorePath, "-storepass", cfg.KeystorePassword,
		"-storetype", storeType, "-alias", cfg.Alias).CombinedOutput()
	if err != nil {
		t.Fatalf("keytool -list -v: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{"Entry type: PrivateKeyEntry", "Certificate chain length: 2", "Issuer: CN=Pebble Intermediate CA", "Owner: CN=Pebble Intermediate CA", "Issuer: CN=Pebble Root CA", cfg.Domains[0]} {
		if !strings.Contains(text, want) {
			t.Errorf("keytool -list -v does not show %q:\n%s", want, text)
		}
	}
}

// opensslVerifies checks with openssl s_client (when installed) that the
// listener's chain verifies to Pebble's root.
func opensslVerifies(t *testing.T, address, name string, rootPEM []byte) {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Log("openssl not installed: s_client check skipped")
		return
	}
	ca := filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(ca, rootPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "s_client", "-connect", address, "-servername", name, "-CAfile", ca, "-verify_return_error", "-verify_hostname", name)
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verify return code: 0 (ok)") {
		t.Errorf("openssl s_client: %v\n%s", err, out)
	}
}

// keystoreBytes reads the keystore file, nil if it does not exist.
func keystoreBytes(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return data
}

// Failures leave the keystore byte-for-byte as it was (or absent), create
// no ACME keystore and free the challenge listener; the error says what
// went wrong, with the CA's problem document when there is one.
func TestIssuanceErrorsLeaveKeystoreUnchanged(t *testing.T) {
	t.Parallel()
	p := pebbletest.Start(t, pebbletest.Options{Blocklist: []string{"blocked.example.test"}})
	closed := testutil.FreePorts(t, 2)
	tests := []struct {
		name        string
		change      func(*acme.Config)
		noKeystore  bool
		want        []string
		wantProblem string // ACME problem type errors.As finds
	}{{
		name:   "directory connection refused",
		change: func(c *acme.Config) { c.DirectoryURL = "https://" + pebbletest.Addr(closed[0]) + "/dir" },
		want:   []string{`ACME directory https://` + pebbletest.Addr(closed[0]) + `/dir:`, "connection refused"},
	}, {
		name:   "directory not found",
		change: func(c *acme.Config) { c.DirectoryURL = strings.TrimSuffix(c.DirectoryURL, "/dir") + "/directory" },
		want:   []string{"ACME directory https://", "/directory: HTTP 404 Not Found"},
	}, {
		name:        "challenge address unreachable by the CA",
		change:      func(c *acme.Config) { c.ChallengeAddress = pebbletest.Addr(closed[1]) },
		want:        []string{"example.test over http-01 at " + pebbletest.Addr(closed[1]) + ": urn:ietf:params:acme:error:connection: ", "/.well-known/acme-challenge/", "connection refused"},
		wantProblem: "urn:ietf:params:acme:error:connection",
	}, {
		name: "tls-alpn-01 challenge address unreachable by the CA",
		change: func(c *acme.Config) {
			c.Challenge, c.ChallengeAddress = acme.ChallengeTLSALPN01, pebbletest.Addr(closed[1])
		},
		want:        []string{"ACME CA could not validate ", "example.test over tls-alpn-01 at " + pebbletest.Addr(closed[1]) + ": urn:ietf:params:acme:error:unauthorized: Failed to connect to"},
		wantProblem: "urn:ietf:params:acme:error:unauthorized",
	}, {
		name:        "domain the CA refuses",
		change:      func(c *acme.Config) { c.Domains = []string{"mail.example.test", "blocked.example.test"} },
		noKeystore:  true,
		want:        []string{"ACME CA refused the order for mail.example.test, blocked.example.test", "urn:ietf:params:acme:error:rejectedIdentifier", `"blocked.example.test"`, "forbidden by policy"},
		wantProblem: "urn:ietf:params:acme:error:rejectedIdentifier",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := newService(t, dir)
			cfg := baseConfig(p, dir)
			tc.change(&cfg)
			if !tc.noKeystore {
				selfSignedEntry(t, cfg.KeystorePath, keystore.JKS, cfg.Alias)
			}
			before := keystoreBytes(t, cfg.KeystorePath)

			_, err := s.Put(context.Background(), "mx", cfg)
			if err == nil {
				t.Fatal("Put succeeded")
			}
			t.Logf("error: %v", err)
			if !errors.Is(err, acme.ErrIssuance) {
				t.Errorf("error is not ErrIssuance: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
			if tc.wantProblem != "" {
				var pe *xacme.Error
				if !errors.As(err, &pe) || pe.ProblemType != tc.wantProblem {
					t.Errorf("errors.As finds problem %+v, want type %s", pe, tc.wantProblem)
				}
			}
			if after := keystoreBytes(t, cfg.KeystorePath); !bytes.Equal(before, after) {
				t.Errorf("keystore changed (%d bytes before, %d after)", len(before), len(after))
			}
			if _, _, err := s.Get("mx"); !errors.Is(err, acme.ErrNotFound) {
				t.Errorf("Get after a failed create: %v, want ErrNotFound", err)
			}
			if _, err := os.Stat(filepath.Join(dir, acme.Dir, "mx")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("state of the failed create left behind: %v", err)
			}
			ln, err := net.Listen("tcp", cfg.ChallengeAddress)
			if err != nil {
				t.Errorf("challenge address not freed: %v", err)
			} else {
				ln.Close()
			}
		})
	}
}

// A short-lived certificate is renewed in the background and written into
// the keystore; a listener reading the keystore serves the new one from
// the next handshake, with no restart, and a session open across the
// renewal goes on.
func TestRenewalReachesListener(t *testing.T) {
	t.Parallel()
	p := pebbletest.Start(t, pebbletest.Options{Validity: 12 * time.Second})
	dir := t.TempDir()
	s := newService(t, dir)
	cfg := baseConfig(p, dir)
	cfg.RenewBeforeDays = 1 // more than the lifetime: renewed after a third of it

	st, err := s.Put(context.Background(), "mx", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if life := st.NotAfter.Sub(st.NotBefore); life > 12*time.Second {
		t.Fatalf("certificate lives %s; Pebble's short profile did not apply", life)
	}
	if want := st.NotBefore.Add(st.NotAfter.Sub(st.NotBefore) / 3); st.NextRenewal.Sub(want).Abs() > time.Second {
		t.Errorf("next renewal %s, want about %s (a third into the lifetime)", st.NextRenewal, want)
	}
	roots, _ := p.IssuerRoots(t)
	ln := serveKeystore(t, cfg)
	session := dialTLS(t, ln, "mail.example.test", roots)
	defer session.Close()
	if fp := servedFingerprint(session); fp != st.Fingerprint {
		t.Fatalf("served %s, want %s", fp, st.Fingerprint)
	}
	echo(t, session, "before renewal")

	waitFor(t, time.Minute, "the renewed certificate in the keystore", func() bool {
		_, chain := entry(t, cfg)
		return keystore.Fingerprint(chain[0]) != st.Fingerprint
	})
	// Renewals go on every few seconds: any certificate but the first
	// (verified against Pebble's roots) is a renewed one, where waiting
	// for one fingerprint could miss it being replaced by the next.
	waitFor(t, 30*time.Second, "the listener to serve a renewed certificate", func() bool {
		c := dialTLS(t, ln, "smtp.example.test", roots)
		defer c.Close()
		return servedFingerprint(c) != st.Fingerprint
	})
	echo(t, session, "after renewal")

	// The status follows the keystore write: wait for it to name a
	// renewed certificate.
	var st2 acme.Status
	waitFor(t, 30*time.Second, "the status to show the renewed certificate", func() bool {
		_, st2, err = s.Get("mx")
		if err != nil {
			t.Fatal(err)
		}
		return st2.Fingerprint != st.Fingerprint
	})
	if st2.LastError != "" || !st2.LastIssued.After(st.LastIssued) || !st2.NextRenewal.After(st.NextRenewal) {
		t.Errorf("status after renewal %+v (before %+v)", st2, st)
	}
}

// A restarted Service resumes its ACME keystores from the state directory
// without asking the CA while the certificate is current, and writes it
// back into a keystore whose entry went missing.
func TestResumeFromStateDirectory(t *testing.T) {
	t.Parallel()
	p := pebbletest.Start(t, pebbletest.Options{})
	dir := t.TempDir()
	s := newService(t, dir)
	cfg := baseConfig(p, dir)
	st, err := s.Put(context.Background(), "mx", cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	ln, err := net.Listen("tcp", cfg.ChallengeAddress)
	if err != nil {
		t.Fatalf("Close did not free the challenge address: %v", err)
	}
	ln.Close()

	p.Stop() // the CA is gone: resuming must not need it
	err = keystore.Update(context.Background(), host.LocalFile(cfg.KeystorePath), []byte(password), keystore.JKS, func(ks *keystore.Keystore) error {
		return ks.DeleteEntry(cfg.Alias)
	})
	if err != nil {
		t.Fatal(err)
	}

	s2 := newService(t, dir)
	s2.Start()
	waitFor(t, 30*time.Second, "the certificate written back into the keystore", func() bool {
		ks, err := keystore.Open(context.Background(), host.LocalFile(cfg.KeystorePath), []byte(password))
		if err != nil {
			return false
		}
		e, ok := ks.Entry(cfg.Alias)
		return ok && keystore.Fingerprint(e.Chain[0]) == st.Fingerprint
	})
	got, st2, err := s2.Get("mx")
	if err != nil {
		t.Fatal(err)
	}
	if got.DirectoryURL != cfg.DirectoryURL || !slices.Equal(got.Domains, cfg.Domains) {
		t.Errorf("resumed config %+v", got)
	}
	if st2.Fingerprint != st.Fingerprint || !st2.LastIssued.Equal(st.LastIssued) || !st2.LastAttempt.Equal(st.LastAttempt) || st2.LastError != "" {
		t.Errorf("resumed status %+v, want the one before the restart %+v", st2, st)
	}
}

func TestExternalAccountBinding(t *testing.T) {
	t.Parallel()
	const hmac = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
	p := pebbletest.Start(t, pebbletest.Options{EAB: map[string]string{"kid-1": hmac}})
	dir := t.TempDir()
	s := newService(t, dir)
	cfg := baseConfig(p, dir)

	_, err := s.Put(context.Background(), "mx", cfg)
	if err == nil || !strings.Contains(err.Error(), "requires an external account binding: set eab_key_id and eab_hmac_key") {
		t.Errorf("without EAB: %v", err)
	}
	cfg.EABKeyID, cfg.EABHMACKey = "kid-1", "c2VjcmV0LWJ1dC13cm9uZy1rZXktZm9yLWtpZC0x"
	_, err = s.Put(context.Background(), "mx", cfg)
	if err == nil || !strings.Contains(err.Error(), "registering an ACME account with "+p.DirectoryURL) {
		t.Errorf("with a wrong MAC key: %v", err)
	}
	cfg.EABHMACKey = hmac
	if _, err := s.Put(context.Background(), "mx", cfg); err != nil {
		t.Fatal(err)
	}
	got, _, _ := s.Get("mx")
	if got.EABHMACKey != "" || got.EABKeyID != "kid-1" {
		t.Errorf("Get shows %+v", got)
	}
}

// ACME keystores share a challenge listener per address; one keystore
// entry has one owner; Delete frees what it held and keeps the keystore.
func TestSharingConflictsAndDelete(t *testing.T) {
	t.Parallel()
	p := pebbletest.Start(t, pebbletest.Options{})
	dir := t.TempDir()
	s := newService(t, dir)
	ctx := context.Background()
	a := baseConfig(p, dir)
	if _, err := s.Put(ctx, "a", a); err != nil {
		t.Fatal(err)
	}

	same := a
	same.Domains = []string{"other.example.test"}
	if _, err := s.Put(ctx, "b", same); !errors.Is(err, acme.ErrConflict) || !strings.Contains(err.Error(), `alias "james" of keystore `+a.KeystorePath+` is already kept by ACME keystore "a"`) {
		t.Errorf("second owner of one entry: %v", err)
	}
	alpn := a
	alpn.Alias, alpn.Challenge = "alpn", acme.ChallengeTLSALPN01
	if _, err := s.Put(ctx, "c", alpn); !errors.Is(err, acme.ErrConflict) || !strings.Contains(err.Error(), "already answers http-01 challenges") {
		t.Errorf("tls-alpn-01 on the http-01 address: %v", err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	taken := a
	taken.Alias, taken.ChallengeAddress = "taken", busy.Addr().String()
	if _, err := s.Put(ctx, "t", taken); !errors.Is(err, acme.ErrConflict) || !strings.Contains(err.Error(), "cannot bind challenge_address "+busy.Addr().String()) {
		t.Errorf("challenge address in use: %v", err)
	}

	d := a
	d.Alias, d.Domains = "second", []string{"pop.example.test"}
	if _, err := s.Put(ctx, "d", d); err != nil {
		t.Fatalf("second entry on the shared challenge listener: %v", err)
	}
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if ln, err := net.Listen("tcp", a.ChallengeAddress); err == nil {
		ln.Close()
		t.Error("challenge listener closed while ACME keystore d still uses it")
	}
	if err := s.Delete(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "d"); !errors.Is(err, acme.ErrNotFound) {
		t.Errorf("second Delete: %v", err)
	}
	ln, err := net.Listen("tcp", a.ChallengeAddress)
	if err != nil {
		t.Errorf("challenge listener still bound after the last Delete: %v", err)
	} else {
		ln.Close()
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, acme.Dir)); len(ents) != 0 {
		t.Errorf("state left after Delete: %v", ents)
	}
	ks, err := keystore.Open(context.Background(), host.LocalFile(a.KeystorePath), []byte(password))
	if err != nil {
		t.Fatal(err)
	}
	if len(ks.Entries()) != 2 {
		t.Errorf("keystore entries after Delete: %v (Delete keeps the keystore)", ks.Entries())
	}
	if len(s.Statuses()) != 0 {
		t.Errorf("statuses after Delete: %v", s.Statuses())
	}
}

// Changing an ACME keystore's config (here its domains and key) issues a
// new certificate; a change that fails keeps the previous config.
func TestChangeConfig(t *testing.T) {
	t.Parallel()
	p := pebbletest.Start(t, pebbletest.Options{Blocklist: []string{"blocked.example.test"}})
	dir := t.TempDir()
	s := newService(t, dir)
	ctx := context.Background()
	cfg := baseConfig(p, dir)
	st, err := s.Put(ctx, "mx", cfg)
	if err != nil {
		t.Fatal(err)
	}

	bad := cfg
	bad.Domains = []string{"blocked.example.test"}
	before := keystoreBytes(t, cfg.KeystorePath)
	if _, err := s.Put(ctx, "mx", bad); !errors.Is(err, acme.ErrIssuance) {
		t.Fatalf("refused change: %v", err)
	}
	if !bytes.Equal(before, keystoreBytes(t, cfg.KeystorePath)) {
		t.Error("a failed change rewrote the keystore")
	}
	got, _, err := s.Get("mx")
	if err != nil || !slices.Equal(got.Domains, cfg.Domains) {
		t.Errorf("after a failed change: %+v, %v", got, err)
	}

	next := cfg
	next.Domains = []string{"mail.example.test"}
	next.Key = acme.Key{Algorithm: "ECDSA", ECDSACurve: "P384"}
	st2, err := s.Put(ctx, "mx", next)
	if err != nil {
		t.Fatal(err)
	}
	key, chain := entry(t, next)
	if k, ok := key.(*ecdsa.PrivateKey); !ok || k.Curve.Params().Name != "P-384" || !slices.Equal(chain[0].DNSNames, next.Domains) || st2.Fingerprint == st.Fingerprint {
		t.Errorf("after the change: key %T, names %v, fingerprint %s (was %s)", key, chain[0].DNSNames, st2.Fingerprint, st.Fingerprint)
	}
}

func TestPutRefusesBadConfigBeforeAskingTheCA(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newService(t, dir)
	good := acme.Config{
		KeystorePath: filepath.Join(dir, "ks.jks"), KeystorePassword: password, Alias: "james",
		Domains: []string{"mail.example.test"}, DirectoryURL: "https://127.0.0.1:1/dir", ChallengeAddress: "127.0.0.1:1",
	}
	trusted := filepath.Join(dir, "trusted.jks")
	cert := selfSignedEntry(t, trusted, keystore.JKS, "key")
	if err := keystore.Update(context.Background(), host.LocalFile(trusted), []byte(password), keystore.JKS, func(ks *keystore.Keystore) error {
		return ks.SetTrustedCertificate("root", cert)
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		id     string
		change func(*acme.Config)
		want   string
	}{
		{"bad id", "../x", func(*acme.Config) {}, `ACME keystore id "../x"`},
		{"no domains", "x", func(c *acme.Config) { c.Domains = nil }, "domains: at least one domain is required"},
		{"wildcard", "x", func(c *acme.Config) { c.Domains = []string{"*.example.test"} }, "wildcard names need the dns-01 challenge"},
		{"wrong password", "x", func(c *acme.Config) { c.KeystorePath = trusted; c.KeystorePassword = "wrong" }, "wrong keystore password"},
		{"type mismatch", "x", func(c *acme.Config) { c.KeystorePath, c.KeystoreType = trusted, "PKCS12" }, "is JKS, but keystore_type is PKCS12"},
		{"trusted certificate alias", "x", func(c *acme.Config) { c.KeystorePath, c.Alias = trusted, "root" }, `alias "root" is a trustedCertEntry entry`},
		{"missing folder", "x", func(c *acme.Config) { c.KeystorePath = filepath.Join(dir, "nope", "ks.jks") }, "folder " + filepath.Join(dir, "nope") + " does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.change(&cfg)
			before := keystoreBytes(t, trusted)
			_, err := s.Put(context.Background(), tc.id, cfg)
			if !errors.Is(err, acme.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want ErrInvalid saying %q", err, tc.want)
			}
			if !bytes.Equal(before, keystoreBytes(t, trusted)) {
				t.Error("keystore changed")
			}
		})
	}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
