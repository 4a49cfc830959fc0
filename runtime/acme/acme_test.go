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

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/runtime/acme"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/listener"
)

const password = "changeit"

// newService returns a Service on a fresh state directory, closed when the
// test ends.
func newService(t *testing.T, stateDir string) *acme.Service {
	t.Helper()
	s, err := acme.New(acme.Options{
		StateDir:      stateDir,
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

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// baseConfig is an ACME keystore on p for http-01, keystore in dir.
func baseConfig(p *pebble, dir string) acme.Config {
	return acme.Config{
		KeystorePath:      filepath.Join(dir, "mail.keystore"),
		KeystorePassword:  password,
		Alias:             "james",
		Domains:           []string{"mail.example.test", "smtp.example.test"},
		Email:             "postmaster@example.test",
		DirectoryURL:      p.DirectoryURL,
		CACertificatesPEM: p.HTTPSRootPEM,
		Challenge:         acme.ChallengeHTTP01,
		ChallengeAddress:  addr(p.HTTPPort),
	}
}

// entry returns the keystore's private key entry alias.
func entry(t *testing.T, cfg acme.Config) (any, []*x509.Certificate) {
	t.Helper()
	ks, err := keystore.Open(cfg.KeystorePath, []byte(cfg.KeystorePassword))
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
	p := startPebble(t, pebbleOptions{})
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
	if st.LastAttempt.IsZero() || st.LastIssued.IsZero() || st.LastError != "" || st.ChallengeAddress != addr(p.HTTPPort) {
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

	keytoolShowsChain(t, cfg, "JKS", rootPEM)
}

func TestIssueTLSALPN01PKCS12(t *testing.T) {
	t.Parallel()
	p := startPebble(t, pebbleOptions{})
	dir := t.TempDir()
	s := newService(t, dir)
	cfg := baseConfig(p, dir)
	cfg.KeystorePath = filepath.Join(dir, "mail.p12")
	cfg.KeystoreType = "PKCS12"
	cfg.Key = acme.Key{Algorithm: "ECDSA", ECDSACurve: "P256"}
	cfg.Domains = []string{"imap.example.test"}
	cfg.Challenge = acme.ChallengeTLSALPN01
	cfg.ChallengeAddress = addr(p.TLSPort)

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
	ks, err := keystore.Open(cfg.KeystorePath, []byte(password))
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
	err = keystore.Update(path, []byte(password), typ, func(ks *keystore.Keystore) error {
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
	port := freePorts(t, 1)[0]
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
	return addr(port)
}

func dialTLS(t *testing.T, address, name string, roots *x509.CertPool) *tls.Conn {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", address, &tls.Config{ServerName: name, RootCAs: roots})
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
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
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
	writeFile(t, ca, rootPEM)
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

var _ = xacme.ALPNProto
