package keystore

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

func keyEqual(a, b crypto.PrivateKey) bool {
	x, ok := a.(interface{ Equal(crypto.PrivateKey) bool })
	return ok && x.Equal(b)
}

func TestRoundTrip(t *testing.T) {
	rsaKey, ecKey := testKey(t, 0), testKey(t, -1)
	ca := newTestCA(t, "RT Root", testKey(t, 2), nil)
	leaf := ca.issue(t, "mail.example.com", rsaKey.Public(), time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	ecCert := selfSignedCert(t, ecKey, "ec.example.com")
	for _, typ := range []Type{JKS, PKCS12} {
		t.Run(string(typ), func(t *testing.T) {
			k := New(typ)
			if k.Type() != typ {
				t.Fatal(k.Type())
			}
			must(t, k.SetPrivateKeyEntry("James", rsaKey, []*x509.Certificate{leaf, ca.cert}, nil))
			must(t, k.SetPrivateKeyEntry("ec", ecKey, []*x509.Certificate{ecCert}, nil))
			must(t, k.SetTrustedCertificate("Root", ca.cert))
			data, err := k.Encode([]byte(storePW))
			must(t, err)
			got, err := Decode(data, []byte(storePW))
			must(t, err)
			if got.Type() != typ {
				t.Errorf("decoded as %s", got.Type())
			}
			want := k.Entries()
			entries := got.Entries()
			if len(entries) != 3 {
				t.Fatalf("%d entries", len(entries))
			}
			for i, e := range entries {
				w := want[i]
				if e.Alias != w.Alias || e.Kind != w.Kind || len(e.Chain) != len(w.Chain) {
					t.Fatalf("entry %d: %+v, want %+v", i, e, w)
				}
				for j := range e.Chain {
					if !e.Chain[j].Equal(w.Chain[j]) {
						t.Errorf("%s: certificate %d differs", e.Alias, j)
					}
				}
				// Milliseconds, bumped in PKCS#12 to keep localKeyIds unique.
				if d := e.CreatedAt.Sub(w.CreatedAt); e.Kind == PrivateKey && (d < -time.Millisecond || d > 10*time.Millisecond) {
					t.Errorf("%s: created %s, want %s", e.Alias, e.CreatedAt, w.CreatedAt)
				}
			}
			if a := fmt.Sprint([]string{entries[0].Alias, entries[1].Alias, entries[2].Alias}); a != "[ec james root]" {
				t.Errorf("aliases not lower case and sorted: %v", entries)
			}
			key, chain, err := got.PrivateKeyEntry("JAMES", nil)
			must(t, err)
			if !keyEqual(key, rsaKey) || len(chain) != 2 {
				t.Error("RSA key or chain differs")
			}
			key, _, err = got.PrivateKeyEntry("ec", []byte(storePW))
			must(t, err)
			if !keyEqual(key, ecKey) {
				t.Error("EC key differs")
			}
			_, _, err = got.PrivateKeyEntry("root", nil)
			wantErr(t, err, ErrAliasNotFound, "trustedCertEntry")
			must(t, got.DeleteEntry("Root"))
			if _, ok := got.Entry("root"); ok {
				t.Error("entry not deleted")
			}
		})
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Update keeps an entry whose key password it never learns: the JKS key
// stays encrypted as it was and still opens with its own password.
func TestUpdateKeepsEntriesItDoesNotTouch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ks.jks")
	key := testKey(t, 0)
	must(t, Update(bg, lf(path), []byte(storePW), JKS, func(k *Keystore) error {
		return k.SetPrivateKeyEntry("theirs", key, []*x509.Certificate{selfSignedCert(t, key, "theirs")}, []byte("secret-of-theirs"))
	}))
	for i := range 3 {
		must(t, Update(bg, lf(path), []byte(storePW), "", func(k *Keystore) error {
			return k.SetTrustedCertificate(fmt.Sprint("ours", i), selfSignedCert(t, testKey(t, 1), "ours"))
		}))
	}
	c, err := LoadCertificate(bg, lf(path), []byte(storePW), []byte("secret-of-theirs"), "theirs")
	must(t, err)
	if !keyEqual(c.PrivateKey, key) {
		t.Error("key changed")
	}
	k, err := Open(bg, lf(path), []byte(storePW))
	must(t, err)
	if n := len(k.Entries()); n != 4 {
		t.Errorf("%d entries, want 4", n)
	}
}

func TestUpdateFileHandling(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ks.p12")
	old := syscallUmask(0o022)
	defer syscallUmask(old)
	must(t, Update(bg, lf(path), []byte(storePW), PKCS12, func(k *Keystore) error {
		return k.SetTrustedCertificate("a", selfSignedCert(t, testKey(t, 1), "a"))
	}))
	st, err := os.Stat(path)
	must(t, err)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	if _, err := os.Stat(path + ".lock"); err != nil {
		t.Errorf("lock file: %v", err)
	}
	before := readFile(t, path)
	must(t, Update(bg, lf(path), []byte(storePW), PKCS12, func(k *Keystore) error { return nil }))
	if !bytes.Equal(before, readFile(t, path)) {
		t.Error("an update that changed nothing rewrote the file")
	}
	files, _ := os.ReadDir(dir)
	if len(files) != 2 {
		t.Errorf("folder holds %d files, want the keystore and its lock", len(files))
	}
}

// Concurrent updates serialize on the lock: none is lost.
func TestUpdateConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ks.jks")
	cert := selfSignedCert(t, testKey(t, 1), "c")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			errs <- Update(bg, lf(path), []byte(storePW), JKS, func(k *Keystore) error {
				return k.SetTrustedCertificate(fmt.Sprint("c", i), cert)
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	k, err := Open(bg, lf(path), []byte(storePW))
	must(t, err)
	if n := len(k.Entries()); n != 8 {
		t.Errorf("%d entries, want 8", n)
	}
}

func TestImportTrustedPEM(t *testing.T) {
	cas := []*x509.Certificate{
		selfSignedCert(t, testKey(t, 1), "one"), selfSignedCert(t, testKey(t, 2), "two"), selfSignedCert(t, testKey(t, 3), "three"),
	}
	k := New(PKCS12)
	must(t, k.SetTrustedCertificate("rooty", cas[0]))
	must(t, k.SetTrustedCertificate("root-x", cas[0]))
	names, err := k.ImportTrustedPEM("Root", EncodeCertificatesPEM(cas))
	must(t, err)
	if fmt.Sprint(names) != "[root-1 root-2 root-3]" || len(k.TrustedGroup("root")) != 3 {
		t.Fatalf("names %v, group %v", names, k.TrustedGroup("root"))
	}
	names, err = k.ImportTrustedPEM("root", EncodeCertificatesPEM(cas[1:2]))
	must(t, err)
	g := k.TrustedGroup("root")
	if fmt.Sprint(names) != "[root]" || len(g) != 1 || !g[0].Chain[0].Equal(cas[1]) {
		t.Fatalf("names %v, group %v", names, g)
	}
	if len(k.Entries()) != 3 {
		t.Errorf("entries outside the group changed: %v", k.Entries())
	}
	_, err = k.ImportTrustedPEM("root", []byte("not pem"))
	wantErr(t, err, ErrInvalidInput, `"root"`)
	key := testKey(t, 0)
	must(t, k.SetPrivateKeyEntry("mine", key, []*x509.Certificate{selfSignedCert(t, key, "mine")}, nil))
	_, err = k.ImportTrustedPEM("mine", EncodeCertificatesPEM(cas[:1]))
	wantErr(t, err, ErrInvalidInput, `"mine"`, "PrivateKeyEntry")
}

func TestValidate(t *testing.T) {
	key := testKey(t, 0)
	c, err := SelfSign(key, CertificateRequest{Subject: Subject{CommonName: "v"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)})
	must(t, err)
	k := New(JKS)
	must(t, k.SetPrivateKeyEntry("v", key, []*x509.Certificate{c}, nil))
	must(t, k.Validate("", nil, time.Time{}))
	wantErr(t, k.Validate("v", nil, time.Now().Add(2*time.Hour)), ErrCertificateValidity, `"v"`, "expired")
	wantErr(t, k.Validate("v", nil, time.Now().Add(-2*time.Hour)), ErrCertificateValidity, "not valid before")
	// A chain whose second certificate did not sign the first.
	other := selfSignedCert(t, testKey(t, 1), "other")
	must(t, k.SetPrivateKeyEntry("broken", key, []*x509.Certificate{c, other}, nil))
	wantErr(t, k.Validate("broken", nil, time.Time{}), ErrUntrustedChain, `"broken"`)
	wantErr(t, k.Validate("", nil, time.Time{}), ErrAmbiguousAlias, "broken", "v")
}

// go-pkcs12, an independent implementation, reads what we write and we read
// what it writes.
func TestPKCS12AgainstGoPKCS12(t *testing.T) {
	key := testKey(t, -1)
	cert := selfSignedCert(t, key, "gp.example.com")
	k := New(PKCS12)
	must(t, k.SetPrivateKeyEntry("gp", key, []*x509.Certificate{cert}, nil))
	data, err := k.Encode([]byte(storePW))
	must(t, err)
	gotKey, gotCert, _, err := pkcs12.DecodeChain(data, storePW)
	must(t, err)
	if !keyEqual(gotKey, key) || !gotCert.Equal(cert) {
		t.Error("go-pkcs12 decoded another key or certificate")
	}

	theirs, err := pkcs12.Modern.Encode(key, cert, nil, storePW)
	must(t, err)
	ours, err := Decode(theirs, []byte(storePW))
	must(t, err)
	if e := ours.Entries(); len(e) != 1 || e[0].Kind != PrivateKey || !e[0].Chain[0].Equal(cert) {
		t.Fatalf("entries %+v", e)
	}
	_, err = Decode(theirs, []byte("wrong"))
	wantErr(t, err, ErrWrongStorePassword)

	trust, err := pkcs12.Modern.EncodeTrustStoreEntries([]pkcs12.TrustStoreEntry{{Cert: cert, FriendlyName: "Anchor"}}, storePW)
	must(t, err)
	ts, err := Decode(trust, []byte(storePW))
	must(t, err)
	if e, ok := ts.Entry("anchor"); !ok || e.Kind != TrustedCertificate {
		t.Fatalf("trust store entries %+v", ts.Entries())
	}
	must(t, ts.SetTrustedCertificate("second", selfSignedCert(t, testKey(t, 1), "second")))
	data, err = ts.Encode([]byte(storePW))
	must(t, err)
	certs, err := pkcs12.DecodeTrustStore(data, storePW)
	must(t, err)
	if len(certs) != 2 {
		t.Errorf("go-pkcs12 found %d trusted certificates, want 2", len(certs))
	}
}

func TestPasswords(t *testing.T) {
	key := testKey(t, 0)
	cert := selfSignedCert(t, key, "pw")
	for _, tc := range []struct {
		name string
		typ  Type
		pw   string
		want error
	}{
		{"PKCS12 non-ASCII", PKCS12, "pässwörd-€", nil},
		{"JKS Latin-1", JKS, "pässwörd", nil},
		{"JKS beyond Latin-1", JKS, "pw-€", ErrUnsupported},
		{"empty", JKS, "", ErrInvalidInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := New(tc.typ)
			must(t, k.SetPrivateKeyEntry("pw", key, []*x509.Certificate{cert}, nil))
			data, err := k.Encode([]byte(tc.pw))
			if tc.want != nil {
				wantErr(t, err, tc.want)
				return
			}
			must(t, err)
			got, err := Decode(data, []byte(tc.pw))
			must(t, err)
			_, _, err = got.PrivateKeyEntry("pw", nil)
			must(t, err)
		})
	}
}

func TestParseType(t *testing.T) {
	for in, want := range map[string]Type{"": JKS, "jks": JKS, "PKCS12": PKCS12, "p12": PKCS12} {
		if got, err := ParseType(in); err != nil || got != want {
			t.Errorf("ParseType(%q) = %v, %v", in, got, err)
		}
	}
	_, err := ParseType("JCEKS")
	wantErr(t, err, ErrInvalidInput)
	if PrivateKey.String() != "PrivateKeyEntry" || TrustedCertificate.String() != "trustedCertEntry" {
		t.Error("kind names differ from keytool's")
	}
}

// A PKCS#12 key protected with a password other than the store password
// (the JDK API can write one) is read, opened with its own password, and
// written back as it was.
func TestPKCS12DistinctKeyPasswordFromElsewhere(t *testing.T) {
	key := testKey(t, -1)
	cert := selfSignedCert(t, key, "elsewhere")
	der, err := x509.MarshalPKCS8PrivateKey(key)
	must(t, err)
	var info encryptedPrivateKeyInfo
	info.Algorithm, info.Data, err = pbEncrypt(der, []byte("distinct"))
	must(t, err)
	k := New(PKCS12)
	k.entries["x"] = &entry{alias: "x", kind: PrivateKey, chain: []*x509.Certificate{cert}, created: time.Now(), sealed: p12Sealed{info}}
	data, err := k.Encode([]byte(storePW))
	must(t, err)
	path := filepath.Join(t.TempDir(), "x.p12")
	writeFile(t, path, data)
	must(t, Update(bg, lf(path), []byte(storePW), PKCS12, func(k *Keystore) error {
		return k.SetTrustedCertificate("other", selfSignedCert(t, testKey(t, 1), "other"))
	}))
	_, err = LoadCertificate(bg, lf(path), []byte(storePW), nil, "x")
	wantErr(t, err, ErrWrongKeyPassword, path, `"x"`)
	c, err := LoadCertificate(bg, lf(path), []byte(storePW), []byte("distinct"), "x")
	must(t, err)
	if !keyEqual(c.PrivateKey, key) {
		t.Error("key changed")
	}
}
