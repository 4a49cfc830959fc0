package keystore

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// A CA certificate issued here signs a leaf that Go's verifier and
// openssl verify accept; a certificate that is not a CA cannot sign.
func TestIssueWithCA(t *testing.T) {
	caKey, err := GenerateKey(KeySpec{Algorithm: "EC", ECDSACurve: "secp384r1"})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := SelfSign(caKey, CertificateRequest{Subject: Subject{CommonName: "Example CA"}, IsCA: true,
		NotAfter: time.Now().Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if !ca.IsCA || ca.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign|x509.KeyUsageDigitalSignature || len(ca.ExtKeyUsage) != 0 {
		t.Fatalf("CA: IsCA %v, key usage %v, EKU %v", ca.IsCA, ca.KeyUsage, ca.ExtKeyUsage)
	}
	for _, spec := range []KeySpec{{Algorithm: RSA}, {Algorithm: ECDSA, ECDSACurve: P521}, {Algorithm: Ed25519}} {
		t.Run(spec.Algorithm+spec.ECDSACurve, func(t *testing.T) {
			key, err := GenerateKey(spec)
			if err != nil {
				t.Fatal(err)
			}
			leaf, err := Issue(key.Public(), CertificateRequest{
				Subject: Subject{CommonName: "mail.example.com"}, DNSNames: []string{"mail.example.com"},
				IPAddresses: []net.IP{net.ParseIP("192.0.2.7"), net.ParseIP("2001:db8::7")},
				NotAfter:    time.Now().Add(24 * time.Hour),
				ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			}, caKey, ca)
			if err != nil {
				t.Fatal(err)
			}
			roots := x509.NewCertPool()
			roots.AddCert(ca)
			for _, name := range []string{"mail.example.com", "192.0.2.7", "2001:db8::7"} {
				if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
					t.Errorf("verify for %s: %v", name, err)
				}
			}
			if !slices.Equal(leaf.AuthorityKeyId, ca.SubjectKeyId) {
				t.Errorf("authority key id %x, CA's subject key id %x", leaf.AuthorityKeyId, ca.SubjectKeyId)
			}
			if IsSelfSigned(leaf) {
				t.Error("a CA-signed leaf reads as self-signed")
			}
			if _, err := needToolOK("openssl"); err == nil {
				dir := t.TempDir()
				writeFile(t, filepath.Join(dir, "ca.pem"), EncodeCertificatesPEM([]*x509.Certificate{ca}))
				writeFile(t, filepath.Join(dir, "leaf.pem"), EncodeCertificatesPEM([]*x509.Certificate{leaf}))
				out := run(t, "openssl", "verify", "-CAfile", filepath.Join(dir, "ca.pem"), filepath.Join(dir, "leaf.pem"))
				if !strings.Contains(out, ": OK") {
					t.Errorf("openssl verify: %s", out)
				}
			}
		})
	}
	t.Run("not a CA", func(t *testing.T) {
		leafKey := testKey(t, 0)
		notCA := selfSignedCert(t, leafKey, "leaf.example.com")
		_, err := Issue(testKey(t, 1).Public(), CertificateRequest{}, leafKey, notCA)
		wantErr(t, err, ErrInvalidInput, "is not a CA certificate", "leaf.example.com")
	})
	t.Run("wrong CA key", func(t *testing.T) {
		_, err := Issue(testKey(t, 1).Public(), CertificateRequest{}, testKey(t, 2), ca)
		wantErr(t, err, ErrKeyMismatch, "Example CA")
	})
	t.Run("chosen key usages", func(t *testing.T) {
		ku, _, err := ParseKeyUsage("digital_signature")
		if err != nil {
			t.Fatal(err)
		}
		c, err := Issue(testKey(t, 1).Public(), CertificateRequest{KeyUsage: ku, ExtKeyUsage: []x509.ExtKeyUsage{}}, caKey, ca)
		if err != nil {
			t.Fatal(err)
		}
		if c.KeyUsage != x509.KeyUsageDigitalSignature || len(c.ExtKeyUsage) != 0 {
			t.Errorf("key usage %v, EKU %v", c.KeyUsage, c.ExtKeyUsage)
		}
	})
}

func TestUsageNames(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ext, bad bool
	}{
		{in: "digitalSignature", want: "digitalSignature"},
		{in: "DIGITAL_SIGNATURE", want: "digitalSignature"},
		{in: "key-encipherment", want: "keyEncipherment"},
		{in: "contentCommitment", want: "nonRepudiation"},
		{in: "cert_signing", want: "keyCertSign"},
		{in: "crl_signing", want: "cRLSign"},
		{in: "serverAuth", want: "serverAuth", ext: true},
		{in: "client_auth", want: "clientAuth", ext: true},
		{in: "ocspsigning", want: "OCSPSigning", ext: true},
		{in: "serverAuth", bad: true},
		{in: "digitalSignature", ext: true, bad: true},
		{in: "", bad: true},
	} {
		var got string
		var err error
		if tc.ext {
			_, got, err = ParseExtKeyUsage(tc.in)
		} else {
			_, got, err = ParseKeyUsage(tc.in)
		}
		if tc.bad {
			if err == nil {
				t.Errorf("%q (ext %v) accepted as %q", tc.in, tc.ext, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q (ext %v) = %q, %v; want %q", tc.in, tc.ext, got, err, tc.want)
		}
	}
	if got := KeyUsageList(x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature); !slices.Equal(got, []string{"digitalSignature", "keyCertSign"}) {
		t.Errorf("KeyUsageList = %v", got)
	}
	if got := ExtKeyUsageList([]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageAny}); !slices.Equal(got, []string{"clientAuth"}) {
		t.Errorf("ExtKeyUsageList = %v", got)
	}
}

func TestCanonicalNames(t *testing.T) {
	for in, want := range map[string]string{"rsa": RSA, "EC": ECDSA, "ecdsa": ECDSA, "EdDSA": Ed25519, "ed25519": Ed25519} {
		if got, err := CanonicalAlgorithm(in); err != nil || got != want {
			t.Errorf("CanonicalAlgorithm(%q) = %q, %v", in, got, err)
		}
	}
	for in, want := range map[string]string{"P-256": P256, "prime256v1": P256, "secp384r1": P384, "p521": P521} {
		if got, err := CanonicalCurve(in); err != nil || got != want {
			t.Errorf("CanonicalCurve(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"DSA", ""} {
		if _, err := CanonicalAlgorithm(bad); err == nil {
			t.Errorf("CanonicalAlgorithm(%q) accepted", bad)
		}
	}
	if _, err := CanonicalCurve("P224"); err == nil {
		t.Error("P224 accepted")
	}
	ec521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		pub  any
		want KeySpec
	}{
		{testKey(t, 0).Public(), KeySpec{Algorithm: RSA, RSABits: 2048}},
		{ec521.Public(), KeySpec{Algorithm: ECDSA, ECDSACurve: P521}},
		{edPub, KeySpec{Algorithm: Ed25519}},
	} {
		if got, ok := SpecOf(tc.pub); !ok || got != tc.want {
			t.Errorf("SpecOf(%T) = %+v, %v", tc.pub, got, ok)
		}
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	if _, ok := SpecOf(small.Public()); ok {
		t.Error("RSA 1024 described as a kind GenerateKey makes")
	}
}

func TestParsePrivateKeyPEM(t *testing.T) {
	rsaKey := testKey(t, 0).(*rsa.PrivateKey)
	ecKey := testKey(t, -1).(*ecdsa.PrivateKey)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	cert := EncodeCertificatesPEM([]*x509.Certificate{selfSignedCert(t, ecKey, "x")})
	for _, tc := range []struct {
		name string
		in   []byte
		want any
	}{
		{"PKCS#8 RSA", pkcs8(rsaKey), rsaKey.Public()},
		{"PKCS#8 Ed25519", pkcs8(edKey), edKey.Public()},
		{"PKCS#1", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), rsaKey.Public()},
		{"SEC 1 after a certificate", append(cert, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...), ecKey.Public()},
	} {
		key, err := ParsePrivateKeyPEM(tc.in)
		if err != nil || !publicKeysEqual(key.Public(), tc.want) {
			t.Errorf("%s: key %T, err %v", tc.name, key, err)
		}
	}
	_, err := ParsePrivateKeyPEM(cert)
	wantErr(t, err, ErrInvalidInput, "no PRIVATE KEY block")
	_, err = ParsePrivateKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}))
	wantErr(t, err, ErrUnsupported, "openssl pkey")
	_, err = ParsePrivateKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}}))
	wantErr(t, err, ErrUnsupported, "encrypted")
}

// ChainFor orders a bundle without needing its root; CompleteChain needs
// one, from the bundle or the keystore's trusted entries.
func TestChainForAndCompleteChain(t *testing.T) {
	root := newTestCA(t, "Root", testKey(t, 1), nil)
	inter := newTestCA(t, "Intermediate", testKey(t, 2), root)
	key := testKey(t, 3)
	leaf := inter.issue(t, "mail.example.com", key.Public(), time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	other := selfSignedCert(t, testKey(t, -1), "unrelated")

	chain, err := ChainFor(key.Public(), []*x509.Certificate{other, inter.cert, leaf})
	if err != nil || !slices.EqualFunc(chain, []*x509.Certificate{leaf, inter.cert}, (*x509.Certificate).Equal) {
		t.Fatalf("ChainFor = %v, %v", subjects(chain), err)
	}
	_, err = ChainFor(testKey(t, 0).Public(), []*x509.Certificate{leaf, inter.cert})
	wantErr(t, err, ErrKeyMismatch, "mail.example.com")

	ks := New(JKS)
	_, err = ks.CompleteChain(key.Public(), []*x509.Certificate{leaf, inter.cert})
	wantErr(t, err, ErrUntrustedChain, "Intermediate")
	must(t, ks.SetTrustedCertificate("root", root.cert))
	full, err := ks.CompleteChain(key.Public(), []*x509.Certificate{inter.cert, leaf})
	if err != nil || len(full) != 3 || !full[2].Equal(root.cert) {
		t.Fatalf("CompleteChain = %v, %v", subjects(full), err)
	}
}

// Edit opens with any of its passwords, writes with a new one, and starts
// over a file that is not a keystore only when asked to.
func TestEdit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ks.p12")
	key := testKey(t, 0)
	cert := selfSignedCert(t, key, "mail.example.com")
	set := func(k *Keystore) error { return k.SetPrivateKeyEntry("mail", key, []*x509.Certificate{cert}, nil) }
	must(t, Update(bg, lf(path), []byte("first"), PKCS12, set))
	before := readFile(t, path)

	// A password that does not open it, then one that does: re-encoded
	// under the new one although fn changes nothing.
	must(t, Edit(bg, lf(path), EditOptions{Passwords: [][]byte{[]byte("nope"), []byte("first")}, Password: []byte("second")},
		func(*Keystore) error { return nil }))
	if _, err := Open(bg, lf(path), []byte("second")); err != nil {
		t.Fatalf("not re-encoded under the new password: %v", err)
	}
	if _, _, err := mustOpen(t, path, "second").PrivateKeyEntry("mail", nil); err != nil {
		t.Fatalf("key does not open with the new store password: %v", err)
	}
	// Opened with the password it has and written with it: no write.
	after := readFile(t, path)
	must(t, Edit(bg, lf(path), EditOptions{Passwords: [][]byte{[]byte("first"), []byte("second")}, Password: []byte("second")},
		func(*Keystore) error { return nil }))
	if !slices.Equal(after, readFile(t, path)) || slices.Equal(before, after) {
		t.Error("unchanged keystore rewritten, or changed keystore not")
	}

	garbage := []byte("this was a keystore until someone overwrote it")
	writeFile(t, path, garbage)
	err := Edit(bg, lf(path), EditOptions{Passwords: [][]byte{[]byte("second")}, Type: PKCS12}, set)
	wantErr(t, err, ErrNotKeystore, path)
	if !slices.Equal(readFile(t, path), garbage) {
		t.Fatal("a failed edit changed the file")
	}
	must(t, Edit(bg, lf(path), EditOptions{Passwords: [][]byte{[]byte("second")}, Type: PKCS12, Repair: true}, set))
	if got := mustOpen(t, path, "second").Entries(); len(got) != 1 || got[0].Alias != "mail" {
		t.Errorf("repaired keystore holds %+v", got)
	}
	err = Edit(bg, lf(path), EditOptions{Passwords: [][]byte{[]byte("x"), nil}}, set)
	wantErr(t, err, ErrInvalidInput, "empty store password")
	if _, err := os.Stat(path + ".lock"); err != nil {
		t.Errorf("the lock file is where LocalFile puts it: %v", err)
	}
}

func mustOpen(t *testing.T, path, pw string) *Keystore {
	t.Helper()
	k, err := Open(bg, lf(path), []byte(pw))
	if err != nil {
		t.Fatal(err)
	}
	return k
}
