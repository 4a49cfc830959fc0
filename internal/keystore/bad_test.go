package keystore

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// badFixtures are keystore bytes the bad-input cases start from.
type badFixtures struct {
	jks, p12, twoKeys   []byte
	root, inter         *testCA
	otherKeyReply       []byte // signed for another key
	missingIntermediate []byte // leaf + root, intermediate left out
	expiredReply        []byte
	notYetValidReply    []byte
	goodReply           []byte
}

func makeBadFixtures(t *testing.T) *badFixtures {
	t.Helper()
	f := &badFixtures{}
	key := testKey(t, 0)
	cert := selfSignedCert(t, key, "mail.example.com")
	build := func(typ Type, fn func(k *Keystore) error) []byte {
		k := New(typ)
		if err := fn(k); err != nil {
			t.Fatal(err)
		}
		b, err := k.Encode([]byte(storePW))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	f.jks = build(JKS, func(k *Keystore) error {
		return k.SetPrivateKeyEntry("james", key, []*x509.Certificate{cert}, []byte("keypass1"))
	})
	f.p12 = build(PKCS12, func(k *Keystore) error {
		return k.SetPrivateKeyEntry("mx", key, []*x509.Certificate{cert}, nil)
	})
	f.twoKeys = build(JKS, func(k *Keystore) error {
		if err := k.SetPrivateKeyEntry("james", key, []*x509.Certificate{cert}, nil); err != nil {
			return err
		}
		other := testKey(t, 1)
		return k.SetPrivateKeyEntry("postfix", other, []*x509.Certificate{selfSignedCert(t, other, "smtp.example.com")}, nil)
	})
	f.root = newTestCA(t, "Bad Root", testKey(t, 2), nil)
	f.inter = newTestCA(t, "Bad Intermediate", testKey(t, 3), f.root)
	nb, na := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	chain := func(leaf *x509.Certificate, cas ...*testCA) []byte {
		certs := []*x509.Certificate{leaf}
		for _, ca := range cas {
			certs = append(certs, ca.cert)
		}
		return EncodeCertificatesPEM(certs)
	}
	f.goodReply = chain(f.inter.issue(t, "mail.example.com", key.Public(), nb, na), f.inter, f.root)
	f.otherKeyReply = chain(f.inter.issue(t, "mail.example.com", testKey(t, 1).Public(), nb, na), f.inter, f.root)
	f.missingIntermediate = chain(f.inter.issue(t, "mail.example.com", key.Public(), nb, na), f.root)
	f.expiredReply = chain(f.inter.issue(t, "mail.example.com", key.Public(), nb.Add(-48*time.Hour), nb), f.inter, f.root)
	f.notYetValidReply = chain(f.inter.issue(t, "mail.example.com", key.Public(), na, na.Add(time.Hour)), f.inter, f.root)
	return f
}

func TestBadInput(t *testing.T) {
	f := makeBadFixtures(t)
	random := make([]byte, 2048)
	rand.Read(random)
	pw := []byte(storePW)
	install := func(reply []byte) func(string) error {
		return func(p string) error {
			return Update(bg, lf(p), pw, JKS, func(k *Keystore) error { return k.InstallReply("james", []byte("keypass1"), reply) })
		}
	}
	load := func(store, key, alias string) func(string) error {
		return func(p string) error {
			_, err := LoadCertificate(bg, lf(p), []byte(store), []byte(key), alias)
			return err
		}
	}
	cases := []struct {
		name  string
		file  []byte
		op    func(path string) error
		want  error
		names []string // besides the path
	}{
		{"wrong store password JKS", f.jks, load("wrong!", "", ""), ErrWrongStorePassword, nil},
		{"wrong store password PKCS12", f.p12, load("wrong!", "", ""), ErrWrongStorePassword, nil},
		{"empty store password JKS", f.jks, load("", "", ""), ErrWrongStorePassword, nil},
		{"empty store password PKCS12", f.p12, load("", "", ""), ErrWrongStorePassword, nil},
		{"wrong key password JKS", f.jks, load(storePW, "nope", "james"), ErrWrongKeyPassword, []string{`"james"`}},
		{"empty key password JKS with distinct key password", f.jks, load(storePW, "", ""), ErrWrongKeyPassword, []string{`"james"`}},
		{"wrong key password PKCS12", f.p12, load(storePW, "nope", "mx"), ErrWrongKeyPassword, []string{`"mx"`}},
		{"truncated JKS", f.jks[:len(f.jks)/2], load(storePW, "", ""), ErrNotKeystore, nil},
		{"truncated PKCS12", f.p12[:len(f.p12)/2], load(storePW, "", ""), ErrNotKeystore, nil},
		{"JKS without digest", f.jks[:len(f.jks)-20], load(storePW, "", ""), ErrNotKeystore, nil},
		{"random bytes", random, load(storePW, "", ""), ErrNotKeystore, nil},
		{"empty file", nil, load(storePW, "", ""), ErrNotKeystore, []string{"empty"}},
		{"PEM certificate", f.goodReply, load(storePW, "", ""), ErrNotKeystore, []string{"PEM"}},
		{"alias missing", f.jks, load(storePW, "keypass1", "nosuch"), ErrAliasNotFound, []string{`"nosuch"`, "james"}},
		{"two private keys and no alias", f.twoKeys, load(storePW, "", ""), ErrAmbiguousAlias, []string{"james", "postfix"}},
		{"reply for another key", f.jks, install(f.otherKeyReply), ErrKeyMismatch, []string{`"james"`}},
		{"chain with missing intermediate", f.jks, install(f.missingIntermediate), ErrUntrustedChain, []string{`"james"`, "Bad Intermediate"}},
		{"expired reply", f.jks, install(f.expiredReply), ErrCertificateValidity, []string{`"james"`, "expired"}},
		{"reply not yet valid", f.jks, install(f.notYetValidReply), ErrCertificateValidity, []string{`"james"`, "not valid before"}},
		{"reply with wrong key password", f.jks, func(p string) error {
			return Update(bg, lf(p), pw, JKS, func(k *Keystore) error { return k.InstallReply("james", []byte("nope"), f.goodReply) })
		}, ErrWrongKeyPassword, []string{`"james"`}},
		{"update with wrong store password", f.jks, func(p string) error {
			return Update(bg, lf(p), []byte("wrong!"), JKS, func(k *Keystore) error { return k.DeleteEntry("james") })
		}, ErrWrongStorePassword, nil},
		{"update of the wrong type", f.jks, func(p string) error {
			return Update(bg, lf(p), pw, PKCS12, func(k *Keystore) error { return nil })
		}, ErrTypeMismatch, []string{"JKS", "PKCS12"}},
		{"update whose fn fails after changes", f.jks, func(p string) error {
			return Update(bg, lf(p), pw, JKS, func(k *Keystore) error {
				if err := k.DeleteEntry("james"); err != nil {
					return err
				}
				return k.DeleteEntry("nosuch")
			})
		}, ErrAliasNotFound, []string{`"nosuch"`}},
		{"distinct key password in PKCS12", f.p12, func(p string) error {
			return Update(bg, lf(p), pw, PKCS12, func(k *Keystore) error {
				key := testKey(t, 1)
				return k.SetPrivateKeyEntry("other", key, []*x509.Certificate{selfSignedCert(t, key, "o")}, []byte("distinct"))
			})
		}, ErrUnsupported, []string{`"other"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keystore")
			writeFile(t, path, tc.file)
			err := tc.op(path)
			wantErr(t, err, tc.want, append([]string{path}, tc.names...)...)
			t.Log(err)
			var ke *Error
			if !asError(err, &ke) || ke.Path != path {
				t.Errorf("not an *Error with Path set: %#v", err)
			}
			if got := readFile(t, path); !bytes.Equal(got, tc.file) {
				t.Error("keystore file changed")
			}
			if _, err := os.Stat(path + ".tmp"); err == nil {
				t.Error("temporary file left behind")
			}
		})
	}
}

// The good reply installs over the same fixture, so the failures above are
// about the reply and not the fixture.
func TestBadInputGoodReplyInstalls(t *testing.T) {
	f := makeBadFixtures(t)
	path := filepath.Join(t.TempDir(), "keystore")
	writeFile(t, path, f.jks)
	if err := Update(bg, lf(path), []byte(storePW), JKS, func(k *Keystore) error {
		return k.InstallReply("james", []byte("keypass1"), f.goodReply)
	}); err != nil {
		t.Fatal(err)
	}
	c, err := LoadCertificate(bg, lf(path), []byte(storePW), []byte("keypass1"), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Certificate) != 3 || c.Leaf.Issuer.CommonName != "Bad Intermediate" {
		t.Fatalf("chain %d long, leaf issuer %q", len(c.Certificate), c.Leaf.Issuer)
	}
}
