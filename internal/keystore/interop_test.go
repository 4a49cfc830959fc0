package keystore

import (
	"crypto"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// keytoolGen makes a keystore with keytool -genkeypair.
func keytoolGen(t *testing.T, path, storetype, alias, keyalg, keypass string, extra ...string) {
	t.Helper()
	args := []string{"-genkeypair", "-noprompt", "-keystore", path, "-storetype", storetype,
		"-storepass", storePW, "-alias", alias, "-keyalg", keyalg, "-validity", "30",
		"-dname", "CN=" + strings.ToLower(alias) + ".example.com, OU=Mail, O=Example, L=Paris, ST=IDF, C=FR"}
	if keypass != "" {
		args = append(args, "-keypass", keypass)
	}
	run(t, "keytool", append(extra, args...)...)
}

func TestReadKeytoolKeystores(t *testing.T) {
	needTool(t, "keytool")
	dir := t.TempDir()
	cases := []struct {
		name, storetype, keyalg, keypass string
		extra                            []string
	}{
		{"jks-rsa-distinct-keypass", "JKS", "RSA", "keypass99", nil},
		{"jks-ec", "JKS", "EC", "", nil},
		{"pkcs12-rsa", "PKCS12", "RSA", "", nil},
		{"pkcs12-ec", "PKCS12", "EC", "", nil},
		{"pkcs12-legacy-rc2-3des", "PKCS12", "RSA", "", []string{"-J-Dkeystore.pkcs12.legacy"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(dir, tc.name+".ks")
			keytoolGen(t, path, tc.storetype, "Mail", tc.keyalg, tc.keypass, tc.extra...)
			run(t, "keytool", "-exportcert", "-keystore", path, "-storepass", storePW, "-alias", "mail", "-rfc", "-file", path+".pem")
			k, err := Open(path, []byte(storePW))
			if err != nil {
				t.Fatal(err)
			}
			if string(k.Type()) != tc.storetype {
				t.Errorf("type %s, want %s", k.Type(), tc.storetype)
			}
			entries := k.Entries()
			if len(entries) != 1 || entries[0].Alias != "mail" || entries[0].Kind != PrivateKey {
				t.Fatalf("entries %+v", entries)
			}
			if entries[0].CreatedAt.IsZero() {
				t.Error("no creation date")
			}
			leaf := entries[0].Chain[0]
			if got := leaf.Subject.String(); got != "CN=mail.example.com,OU=Mail,O=Example,L=Paris,ST=IDF,C=FR" {
				t.Errorf("subject %q", got)
			}
			exported, err := ParseCertificatesPEM(readFile(t, path+".pem"))
			if err != nil || !exported[0].Equal(leaf) {
				t.Fatalf("certificate differs from keytool -exportcert: %v", err)
			}
			if tc.keypass != "" {
				_, _, err := k.PrivateKeyEntry("mail", nil)
				wantErr(t, err, ErrWrongKeyPassword, path, `"mail"`)
			}
			c, err := LoadCertificate(path, []byte(storePW), []byte(tc.keypass), "")
			if err != nil {
				t.Fatal(err)
			}
			if isEC(c.PrivateKey.(crypto.Signer)) != (tc.keyalg == "EC") {
				t.Errorf("key type %T", c.PrivateKey)
			}
			// Rewrite with one more entry: keytool still reads it, key intact.
			err = Update(path, []byte(storePW), "", func(k *Keystore) error {
				return k.SetTrustedCertificate("extra", selfSignedCert(t, testKey(t, 1), "extra"))
			})
			if err != nil {
				t.Fatal(err)
			}
			out := run(t, "keytool", "-list", "-keystore", path, "-storepass", storePW)
			if !strings.Contains(out, "mail,") || !strings.Contains(out, "PrivateKeyEntry") || !strings.Contains(out, "extra,") {
				t.Errorf("keytool -list after rewrite:\n%s", out)
			}
			if _, err := LoadCertificate(path, []byte(storePW), []byte(tc.keypass), "mail"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

var _ = fmt.Sprint
