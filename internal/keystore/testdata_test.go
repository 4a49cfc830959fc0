package keystore

import (
	"path/filepath"
	"testing"
)

// The keystores in testdata/keytool were made by JDK 17 keytool (gen.sh);
// reading them needs no JDK.
func TestKeytoolTestdata(t *testing.T) {
	cases := []struct {
		file, keyPass string
		typ           Type
		aliases       string
		subject       string
	}{
		{"jks-rsa-keypass.jks", "keypass1", JKS, "james", "CN=james.example.com,OU=Mail,O=Example,L=Paris,ST=IDF,C=FR"},
		{"jks-ec.jks", "", JKS, "james", "CN=james.example.com,OU=Mail,O=Example,L=Paris,ST=IDF,C=FR"},
		{"p12-ec.p12", "", PKCS12, "james", "CN=james.example.com,OU=Mail,O=Example,L=Paris,ST=IDF,C=FR"},
		{"p12-legacy.p12", "", PKCS12, "james", "CN=james.example.com,OU=Mail,O=Example,L=Paris,ST=IDF,C=FR"},
		{"p12-two-keys.p12", "", PKCS12, "james postfix root", ""},
		{"jks-dsa.jks", "", JKS, "james", "DSA"},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", "keytool", tc.file)
			k, err := Open(bg, lf(path), []byte(storePW))
			must(t, err)
			if k.Type() != tc.typ {
				t.Errorf("type %s", k.Type())
			}
			var aliases string
			for i, e := range k.Entries() {
				if i > 0 {
					aliases += " "
				}
				aliases += e.Alias
			}
			if aliases != tc.aliases {
				t.Errorf("aliases %q, want %q", aliases, tc.aliases)
			}
			if tc.subject == "" {
				_, err := LoadCertificate(bg, lf(path), []byte(storePW), nil, "")
				wantErr(t, err, ErrAmbiguousAlias, path, "james", "postfix")
				for _, a := range []string{"james", "postfix"} {
					_, err := LoadCertificate(bg, lf(path), []byte(storePW), nil, a)
					must(t, err)
				}
				return
			}
			c, err := LoadCertificate(bg, lf(path), []byte(storePW), []byte(tc.keyPass), "")
			if tc.subject == "DSA" {
				wantErr(t, err, ErrUnsupported, path, `"james"`, "1.2.840.10040.4.1")
				return
			}
			must(t, err)
			if c.Leaf.Subject.String() != tc.subject {
				t.Errorf("subject %q", c.Leaf.Subject)
			}
		})
	}
}
