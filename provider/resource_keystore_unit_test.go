package provider

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

// Plain unit tests of the helpers behind the keystore resources; they need
// neither terraform nor keytool.

func TestSplitImportID(t *testing.T) {
	existing := map[string]bool{"/etc/mail/james.keystore": true, "/srv/a:b.jks": true}
	exists := func(p string) bool { return existing[p] }
	for _, tc := range []struct {
		name, id, file, alias string
	}{
		{"path", "/etc/mail/james.keystore", "/etc/mail/james.keystore", ""},
		{"path and alias", "/etc/mail/james.keystore:root", "/etc/mail/james.keystore", "root"},
		{"alias with dash", "/etc/mail/james.keystore:root-2", "/etc/mail/james.keystore", "root-2"},
		{"colon in the path", "/srv/a:b.jks", "/srv/a:b.jks", ""},
		{"colon in the path and alias", "/srv/a:b.jks:james", "/srv/a:b.jks", "james"},
		{"missing file kept whole", "/nowhere/x.jks:james", "/nowhere/x.jks:james", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file, alias := splitImportID(tc.id, exists)
			if file != tc.file || alias != tc.alias {
				t.Errorf("splitImportID(%q) = %q, %q; want %q, %q", tc.id, file, alias, tc.file, tc.alias)
			}
		})
	}
}

func rawName(t *testing.T, seq pkix.RDNSequence) []byte {
	t.Helper()
	der, err := asn1.Marshal(seq)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestKeytoolDN(t *testing.T) {
	atv := func(oid asn1.ObjectIdentifier, v string) pkix.AttributeTypeAndValue {
		return pkix.AttributeTypeAndValue{Type: oid, Value: v}
	}
	var (
		cn = asn1.ObjectIdentifier{2, 5, 4, 3}
		ou = asn1.ObjectIdentifier{2, 5, 4, 11}
		o  = asn1.ObjectIdentifier{2, 5, 4, 10}
		l  = asn1.ObjectIdentifier{2, 5, 4, 7}
		st = asn1.ObjectIdentifier{2, 5, 4, 8}
		c  = asn1.ObjectIdentifier{2, 5, 4, 6}
	)
	for _, tc := range []struct {
		name string
		seq  pkix.RDNSequence
		want string
	}{
		{"keytool -dname order", pkix.RDNSequence{{atv(c, "FR")}, {atv(st, "IDF")}, {atv(l, "Paris")}, {atv(o, "Example")}, {atv(ou, "Mail")}, {atv(cn, "mail.example.test")}},
			"CN=mail.example.test, OU=Mail, O=Example, L=Paris, ST=IDF, C=FR"},
		{"openssl -subj /CN=x/O=y order is printed reversed", pkix.RDNSequence{{atv(cn, "Test Root CA")}, {atv(o, "Example")}},
			"O=Example, CN=Test Root CA"},
		{"email address", pkix.RDNSequence{{atv(oidEmailAddress, "postmaster@example.test")}, {atv(cn, "mx")}},
			"CN=mx, EMAILADDRESS=postmaster@example.test"},
		{"multi-valued RDN", pkix.RDNSequence{{atv(cn, "a"), atv(ou, "b")}}, "CN=a+OU=b"},
		{"empty", pkix.RDNSequence{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := keytoolDN(rawName(t, tc.seq)); got != tc.want {
				t.Errorf("keytoolDN = %q, want %q", got, tc.want)
			}
		})
	}
	if got := keytoolDN([]byte{0x30, 0x05}); got != "" {
		t.Errorf("keytoolDN(truncated) = %q, want empty", got)
	}
}

func TestEffectiveKey(t *testing.T) {
	spec := func(alg string, bits int64, curve string) *keySpecModel {
		return &keySpecModel{Algorithm: types.StringValue(alg), RSABits: types.Int64Value(bits), ECDSACurve: types.StringValue(curve)}
	}
	for _, tc := range []struct {
		name string
		key  *keySpecModel
		want string
	}{
		{"no key block means RSA 2048", nil, "RSA-2048"},
		{"RSA ignores the curve", spec("RSA", 3072, "P384"), "RSA-3072"},
		{"ECDSA ignores the RSA size", spec("ECDSA", 4096, "P384"), "ECDSA-P384"},
		{"defaults", spec("RSA", 2048, "P256"), "RSA-2048"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := keystoreModel{Key: tc.key}
			if got := m.effectiveKey(); got != tc.want {
				t.Errorf("effectiveKey = %q, want %q", got, tc.want)
			}
		})
	}
	unknown := &keySpecModel{Algorithm: types.StringUnknown(), RSABits: types.Int64Value(2048), ECDSACurve: types.StringValue("P256")}
	if unknown.known() || !(*keySpecModel)(nil).known() {
		t.Error("known() wrong for an unknown algorithm or a missing block")
	}
}

func TestDueForRenewal(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	for _, tc := range []struct {
		name     string
		notAfter time.Time
		early    int64
		want     bool
	}{
		{"far away", now.Add(100 * day), 30, false},
		{"one second outside the window", now.Add(30*day + time.Second), 30, false},
		{"at the window's start", now.Add(30 * day), 30, true},
		{"inside the window", now.Add(10 * day), 30, true},
		{"expired", now.Add(-day), 0, true},
		{"no early renewal, still valid", now.Add(time.Hour), 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := dueForRenewal(tc.notAfter, tc.early, now); got != tc.want {
				t.Errorf("dueForRenewal = %v, want %v", got, tc.want)
			}
		})
	}
}

// testCert issues a certificate for key, signed by parent (self-signed
// when parent is nil).
func testCert(t *testing.T, cn string, key, parentKey *ecdsa.PrivateKey, parent *x509.Certificate, nb, na time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: nb, NotAfter: na, IsCA: parent == nil, BasicConstraintsValid: true}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSelfSignedValidityAndReplyLeaf(t *testing.T) {
	nb := time.Now().Add(-time.Hour)
	caKey, leafKey, otherKey := newECKey(t), newECKey(t), newECKey(t)
	ca := testCert(t, "CA", caKey, nil, nil, nb, nb.Add(365*24*time.Hour))
	leaf := testCert(t, "mx", leafKey, caKey, ca, nb, nb.Add(90*24*time.Hour+time.Hour))
	// Same issuer name as subject, but signed by another key.
	fake := testCert(t, "CA", otherKey, caKey, ca, nb, nb.Add(24*time.Hour))

	if !keystore.IsSelfSigned(ca) || keystore.IsSelfSigned(leaf) || keystore.IsSelfSigned(fake) {
		t.Errorf("isSelfSigned: ca %v leaf %v fake %v; want true false false", keystore.IsSelfSigned(ca), keystore.IsSelfSigned(leaf), keystore.IsSelfSigned(fake))
	}
	if got := keystore.ValidityDays(ca); got != 365 {
		t.Errorf("keystore.ValidityDays(ca) = %d, want 365", got)
	}
	if got := keystore.ValidityDays(leaf); got != 90 {
		t.Errorf("keystore.ValidityDays(leaf) = %d, want 90 (rounded)", got)
	}
	if got := keystore.ValidityDays(testCert(t, "short", otherKey, nil, nil, nb, nb.Add(time.Hour))); got != 1 {
		t.Errorf("keystore.ValidityDays(one hour) = %d, want 1", got)
	}

	if got := installedRoots([]*x509.Certificate{leaf, ca}); len(got) != 1 || !got[0].Equal(ca) {
		t.Errorf("installedRoots(leaf, ca) = %v, want the CA", got)
	}
	if got := installedRoots([]*x509.Certificate{ca}); got != nil {
		t.Errorf("installedRoots(self-signed leaf) = %v, want none", got)
	}
	if got := installedRoots([]*x509.Certificate{leaf, fake}); got != nil {
		t.Errorf("installedRoots(chain ending at a non-root) = %v, want none", got)
	}

	reply := string(keystore.EncodeCertificatesPEM([]*x509.Certificate{ca, leaf}))
	renewed := testCert(t, "mx", leafKey, caKey, ca, nb, nb.Add(200*24*time.Hour))
	for _, tc := range []struct {
		name  string
		reply string
		leaf  *x509.Certificate
		want  bool
	}{
		{"same leaf, CA first", reply, leaf, true},
		{"a renewed certificate for the key", string(keystore.EncodeCertificatesPEM([]*x509.Certificate{renewed, ca})), leaf, false},
		{"no certificate for the key", string(keystore.EncodeCertificatesPEM([]*x509.Certificate{ca})), leaf, false},
		{"not PEM", "garbage", leaf, false},
		{"no leaf in state", reply, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := replyKeepsLeaf(tc.reply, tc.leaf); got != tc.want {
				t.Errorf("replyKeepsLeaf = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestKeystoreHint(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{keystore.ErrWrongStorePassword, "keytool -storepasswd"},
		{keystore.ErrWrongKeyPassword, "key_password"},
		{keystore.ErrNotKeystore, "PEM certificates"},
		{keystore.ErrKeyMismatch, "csr_pem"},
		{keystore.ErrUntrustedChain, "intermediate"},
		{keystore.ErrCertificateValidity, "clock"},
		{keystore.ErrTypeMismatch, "type"},
		{keystore.ErrAmbiguousAlias, "<path>:<alias>"},
		{fmt.Errorf("reading: %w", os.ErrNotExist), "does not exist"},
		{errors.New("something else"), ""},
	} {
		t.Run(fmt.Sprint(tc.err), func(t *testing.T) {
			wrapped := &keystore.Error{Path: "/x", Alias: "a", Err: tc.err}
			if hint := keystoreHint(wrapped); tc.want == "" && hint != "" || !strings.Contains(hint, tc.want) {
				t.Errorf("hint %q, want it to contain %q", hint, tc.want)
			}
		})
	}
}

// writeKeystore writes a JKS keystore under password with a private key
// entry "ours" (store password), "theirs" (its own key password) and a
// trusted certificate "root".
func writeKeystore(t *testing.T, file, password string) {
	t.Helper()
	nb := time.Now().Add(-time.Hour)
	ks := keystore.New(keystore.JKS)
	for alias, kp := range map[string]string{"ours": "", "theirs": "their-key-pass"} {
		k := newECKey(t)
		if err := ks.SetPrivateKeyEntry(alias, k, []*x509.Certificate{testCert(t, alias, k, nil, nil, nb, nb.Add(48*time.Hour))}, []byte(kp)); err != nil {
			t.Fatal(err)
		}
	}
	rk := newECKey(t)
	if err := ks.SetTrustedCertificate("root", testCert(t, "root", rk, nil, nil, nb, nb.Add(48*time.Hour))); err != nil {
		t.Fatal(err)
	}
	data, err := ks.Encode([]byte(password))
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, file, data)
}

// keystore.Edit as updateEntry calls it for a new store password keeps
// every entry: the key it sets again moves to the new store password, the
// others keep their own, as after keytool -storepasswd.
func TestEditChangesPassword(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fileAt string // the password the file has before the update
	}{
		{"changed by terraform", "old-pass"},
		{"already changed with keytool -storepasswd", "new-pass"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "ks.jks")
			writeKeystore(t, file, tc.fileAt)
			opts := keystore.EditOptions{Passwords: [][]byte{[]byte("old-pass"), []byte("new-pass")}, Password: []byte("new-pass"), Type: keystore.JKS}
			err := keystore.Edit(context.Background(), host.LocalFile(file), opts, func(ks *keystore.Keystore) error {
				key, chain, used, err := openPrivateKey(ks, "ours", "", "old-pass")
				if err != nil {
					return err
				}
				if tc.fileAt == "old-pass" && used != "" {
					t.Errorf("key opened with %q, want the store password", used)
				}
				return ks.SetPrivateKeyEntry("ours", key, chain, nil)
			})
			if err != nil {
				t.Fatal(err)
			}
			if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, %v; want 0600", st.Mode(), err)
			}
			if _, err := keystore.Open(context.Background(), host.LocalFile(file), []byte("old-pass")); !errors.Is(err, keystore.ErrWrongStorePassword) {
				t.Errorf("old password still opens the file: %v", err)
			}
			ks, err := keystore.Open(context.Background(), host.LocalFile(file), []byte("new-pass"))
			if err != nil {
				t.Fatal(err)
			}
			if len(ks.Entries()) != 3 {
				t.Errorf("%d entries, want 3", len(ks.Entries()))
			}
			if _, _, err := ks.PrivateKeyEntry("ours", nil); err != nil {
				t.Errorf("ours does not open with the new store password: %v", err)
			}
			if _, _, err := ks.PrivateKeyEntry("theirs", []byte("their-key-pass")); err != nil {
				t.Errorf("theirs lost its own key password: %v", err)
			}
		})
	}
}

// An edit that changes nothing, or fails, leaves the file's bytes alone.
func TestEditLeavesFileAlone(t *testing.T) {
	for _, tc := range []struct {
		name    string
		newPass string
		fnErr   error
		wantErr bool
	}{
		{"no change, same password", "pass", nil, false},
		{"failure, same password", "pass", keystore.ErrKeyMismatch, true},
		{"failure, new password", "other", keystore.ErrKeyMismatch, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "ks.jks")
			writeKeystore(t, file, "pass")
			before := readTestFile(t, file)
			opts := keystore.EditOptions{Passwords: [][]byte{[]byte("pass")}, Password: []byte(tc.newPass)}
			err := keystore.Edit(context.Background(), host.LocalFile(file), opts, func(*keystore.Keystore) error { return tc.fnErr })
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr && !strings.Contains(err.Error(), file) {
				t.Errorf("error %q does not name the file", err)
			}
			if !bytes.Equal(before, readTestFile(t, file)) {
				t.Error("file changed")
			}
		})
	}
	file := filepath.Join(t.TempDir(), "ks.jks")
	writeKeystore(t, file, "pass")
	opts := keystore.EditOptions{Passwords: [][]byte{[]byte("pass")}, Password: []byte("other"), Type: keystore.PKCS12}
	if err := keystore.Edit(context.Background(), host.LocalFile(file), opts, func(*keystore.Keystore) error { return nil }); !errors.Is(err, keystore.ErrTypeMismatch) {
		t.Errorf("type mismatch: err = %v", err)
	}
}

func TestAliasPattern(t *testing.T) {
	for alias, ok := range map[string]bool{
		"james": true, "root-1": true, "mail.example.com": true, "clé": true,
		"James": false, "ÉLAN": false, "": false,
	} {
		if got := aliasPattern.MatchString(alias); got != ok {
			t.Errorf("aliasPattern matches %q: %v, want %v", alias, got, ok)
		}
	}
}
