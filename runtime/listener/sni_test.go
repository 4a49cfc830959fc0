package listener

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

var rsaKey = keystore.KeySpec{Algorithm: "RSA"}

// rsaOnly is a client that can verify RSA signatures only: TLS 1.2 with
// ECDHE_RSA suites (a TLS 1.3 client always takes ECDSA).
func rsaOnly(name string) *tls.Config {
	return &tls.Config{ServerName: name, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}
}

// A listener with several certificates picks by the name the client asks
// for: an exact name, then a wildcard, then the default; RSA and ECDSA
// certificates for one name go to the clients that support them; and each
// source reloads on its own.
func TestSNI(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "SNI Test CA")
	def := ca.issue(t, leafSpec{names: []string{"mail.example.com"}, key: ecdsaKey})
	defFile := filepath.Join(dir, "default.p12")
	writeKeystoreEntry(t, defFile, "mx", def)
	pemB := ca.issue(t, leafSpec{names: []string{"mail.b.example"}, key: ecdsaKey})
	certB, keyB := writePEMPair(t, dir, "b", pemB)
	wild := ca.issue(t, leafSpec{names: []string{"*.c.example"}, key: ecdsaKey})
	wildFile := filepath.Join(dir, "wild.p12")
	writeKeystoreEntry(t, wildFile, "wild", wild)
	// One keystore with an RSA and an ECDSA entry for the same name, as
	// James keystores often hold.
	dualRSA := ca.issue(t, leafSpec{names: []string{"mail.d.example"}, key: rsaKey})
	dualEC := ca.issue(t, leafSpec{names: []string{"mail.d.example"}, key: ecdsaKey})
	dualFile := filepath.Join(dir, "dual.p12")
	writeKeystoreEntry(t, dualFile, "rsa", dualRSA)
	writeKeystoreEntry(t, dualFile, "ec", dualEC)

	m, _ := newManager(t, Options{})
	port := testutil.FreePort(t)
	l := config.Listener{Protocol: config.ProtocolIMAP, Address: "127.0.0.1", Port: port, TLS: config.TLS{
		Mode: config.TLSImplicit, KeystorePath: defFile, KeystorePassword: testPassword,
		Certificates: []config.Certificate{
			{CertificateFile: certB, PrivateKeyFile: keyB},
			{KeystorePath: wildFile, KeystorePassword: testPassword},
			{KeystorePath: dualFile, KeystorePassword: testPassword, Alias: "rsa"},
			{KeystorePath: dualFile, KeystorePassword: testPassword, Alias: "ec"},
		},
	}}
	apply(t, m, "sni", l)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	fp := func(c tls.Certificate) string { return keystore.Fingerprint(c.Leaf) }
	served := func(cfg *tls.Config) string {
		t.Helper()
		c, err := dialTLS(t, addr, cfg)
		if err != nil {
			t.Fatalf("handshake for %q: %v", cfg.ServerName, err)
		}
		c.mustLine()
		return c.fingerprint()
	}
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
		want tls.Certificate
	}{
		{"exact name, default", &tls.Config{ServerName: "mail.example.com"}, def},
		{"exact name, PEM source", &tls.Config{ServerName: "mail.b.example"}, pemB},
		{"name in upper case", &tls.Config{ServerName: "MAIL.B.EXAMPLE"}, pemB},
		{"wildcard", &tls.Config{ServerName: "imap.c.example"}, wild},
		{"wildcard covers one label only", &tls.Config{ServerName: "a.imap.c.example"}, def},
		{"unknown name", &tls.Config{ServerName: "other.example"}, def},
		{"no name (IP address)", &tls.Config{}, def},
		{"ECDSA-capable client", &tls.Config{ServerName: "mail.d.example"}, dualEC},
		{"RSA-only client", rsaOnly("mail.d.example"), dualRSA},
		{"TLS 1.2 ECDSA client", &tls.Config{ServerName: "mail.d.example", MaxVersion: tls.VersionTLS12}, dualEC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := served(tc.cfg); got != fp(tc.want) {
				t.Errorf("served %s; want %s (%v)", got, fp(tc.want), tc.want.Leaf.DNSNames)
			}
		})
	}

	// Status describes every source, the default first.
	st, _ := m.Status("sni")
	if st.CertificateFingerprint != fp(def) || len(st.Certificates) != 5 {
		t.Fatalf("status: fingerprint %s, %d certificates; want %s and 5", st.CertificateFingerprint, len(st.Certificates), fp(def))
	}
	if c := st.Certificates[1]; c.Fingerprint != fp(pemB) || !strings.Contains(c.Source, certB) || c.Names[0] != "mail.b.example" || !c.Served {
		t.Errorf("status of the PEM source: %+v", c)
	}

	// The PEM pair is renewed (certbot replaces both files): that name
	// gets the new certificate, the others keep theirs.
	renewed := ca.issue(t, leafSpec{names: []string{"mail.b.example"}, key: rsaKey})
	writePEMPair(t, dir, "b", renewed)
	testutil.Eventually(t, "the renewed PEM certificate", func() bool {
		return served(&tls.Config{ServerName: "mail.b.example"}) == fp(renewed)
	})
	if got := served(&tls.Config{ServerName: "imap.c.example"}); got != fp(wild) {
		t.Errorf("the wildcard source changed with the PEM one: %s", got)
	}
	// A broken reload of one source keeps it serving what it had, and
	// says so.
	writeAtomically(t, keyB, []byte("not a key"))
	testutil.Eventually(t, "the reload error in status", func() bool {
		st, _ := m.Status("sni")
		return strings.Contains(st.LastError, keyB) || strings.Contains(st.Certificates[1].LastError, "private key")
	})
	if got := served(&tls.Config{ServerName: "mail.b.example"}); got != fp(renewed) {
		t.Errorf("after a bad reload: %s; want the last good %s", got, fp(renewed))
	}
}

// The certificate choice is a map lookup on an index the sources rebuild:
// every kind of key lands in the preferred order, whatever the source
// order.
func TestAppendByPreference(t *testing.T) {
	ca := newCA(t, "CA")
	r1 := ca.issue(t, leafSpec{names: []string{"a"}, key: rsaKey})
	e1 := ca.issue(t, leafSpec{names: []string{"a"}, key: ecdsaKey})
	r2 := ca.issue(t, leafSpec{names: []string{"a"}, key: rsaKey})
	e2 := ca.issue(t, leafSpec{names: []string{"a"}, key: ecdsaKey})
	var list []*tls.Certificate
	for _, c := range []*tls.Certificate{&r1, &e1, &r2, &e2} {
		list = appendByPreference(list, c)
	}
	want := []*tls.Certificate{&e1, &e2, &r1, &r2}
	for i := range want {
		if list[i] != want[i] {
			_, isEC := list[i].PrivateKey.(*ecdsa.PrivateKey)
			_, isRSA := list[i].PrivateKey.(*rsa.PrivateKey)
			t.Fatalf("position %d: ecdsa %v rsa %v; want e1 e2 r1 r2", i, isEC, isRSA)
		}
	}
	if lowerName("Mail.Example.COM.") != "mail.example.com" || lowerName("mail") != "mail" {
		t.Error("lowerName")
	}
}

// A listener whose only certificates are PEM files serves them, and
// refuses client_auth (there is no keystore to hold trusted entries).
func TestPEMOnlyListener(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "CA")
	cert := ca.issue(t, leafSpec{names: []string{"mail.example.com"}, key: ecdsaKey})
	certFile, keyFile := writePEMPair(t, dir, "mx", cert)
	m, _ := newManager(t, Options{})
	port := testutil.FreePort(t)
	l := config.Listener{Protocol: config.ProtocolSMTP, Address: "127.0.0.1", Port: port, TLS: config.TLS{
		Mode: config.TLSStartTLS, Certificates: []config.Certificate{{CertificateFile: certFile, PrivateKeyFile: keyFile}}}}
	apply(t, m, "pem", l)
	c := dialPlain(t, fmt.Sprintf("127.0.0.1:%d", port))
	c.mustLine()
	if err := c.startTLS(nil); err != nil {
		t.Fatal(err)
	}
	if got := c.fingerprint(); got != keystore.Fingerprint(cert.Leaf) {
		t.Errorf("served %s", got)
	}
	l.TLS.ClientAuth = config.ClientAuthRequire
	if err := m.Apply("pem", l); err == nil || !strings.Contains(err.Error(), "trusted entries of tls.keystore_path") {
		t.Errorf("client_auth without a keystore: %v", err)
	}
	// A key that does not match the certificate is refused at apply.
	other := ca.issue(t, leafSpec{names: []string{"x"}, key: ecdsaKey})
	_, otherKey := writePEMPair(t, dir, "other", other)
	l.TLS.ClientAuth = ""
	l.TLS.Certificates[0].PrivateKeyFile = otherKey
	if err := m.Apply("pem", l); err == nil || !strings.Contains(err.Error(), "private key does not match") {
		t.Errorf("mismatched key: %v", err)
	}
}
