package keystore

import (
	"bufio"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// jvmFlags make each keytool/java start about twice as fast.
var jvmFlags = []string{"-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto"}

func keytool(t *testing.T, args ...string) string {
	t.Helper()
	var full []string
	for _, f := range jvmFlags {
		full = append(full, "-J"+f)
	}
	return run(t, "keytool", append(full, args...)...)
}

// keytoolGen makes a keystore with keytool -genkeypair.
func keytoolGen(t *testing.T, path, storetype, alias, keyalg, keypass string, extra ...string) {
	t.Helper()
	args := append(extra, "-genkeypair", "-noprompt", "-keystore", path, "-storetype", storetype,
		"-storepass", storePW, "-alias", alias, "-keyalg", keyalg, "-validity", "30",
		"-dname", "CN="+strings.ToLower(alias)+".example.com, OU=Mail, O=Example, L=Paris, ST=IDF, C=FR")
	if keypass != "" {
		args = append(args, "-keypass", keypass)
	}
	keytool(t, args...)
}

// Keystores made by keytool are read, and still read by keytool after we
// add an entry to them.
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
			k, err := Open(bg, lf(path), []byte(storePW))
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
			if tc.keypass != "" {
				_, _, err := k.PrivateKeyEntry("mail", nil)
				wantErr(t, err, ErrWrongKeyPassword, path, `"mail"`)
			}
			c, err := LoadCertificate(bg, lf(path), []byte(storePW), []byte(tc.keypass), "")
			if err != nil {
				t.Fatal(err)
			}
			if isEC(c.PrivateKey.(crypto.Signer)) != (tc.keyalg == "EC") {
				t.Errorf("key type %T", c.PrivateKey)
			}
			// Rewrite with one more entry: keytool still reads it, and
			// prints the same certificate it generated.
			extra := selfSignedCert(t, testKey(t, 1), "extra")
			err = Update(bg, lf(path), []byte(storePW), "", func(k *Keystore) error {
				return k.SetTrustedCertificate("extra", extra)
			})
			if err != nil {
				t.Fatal(err)
			}
			out := keytool(t, "-list", "-rfc", "-keystore", path, "-storepass", storePW)
			for _, want := range []string{"Alias name: mail", "Entry type: PrivateKeyEntry", "Alias name: extra", "Entry type: trustedCertEntry"} {
				if !strings.Contains(out, want) {
					t.Errorf("keytool -list -rfc lacks %q:\n%s", want, out)
				}
			}
			printed, err := ParseCertificatesPEM([]byte(strings.ReplaceAll(out, "\r", "")))
			if err != nil || len(printed) != 2 || !slices.ContainsFunc(printed, leaf.Equal) || !slices.ContainsFunc(printed, extra.Equal) {
				t.Errorf("keytool -list -rfc printed other certificates (%v):\n%s", err, out)
			}
			if _, err := LoadCertificate(bg, lf(path), []byte(storePW), []byte(tc.keypass), "mail"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func pemOf(c *x509.Certificate) string {
	return string(EncodeCertificatesPEM([]*x509.Certificate{c}))
}

// opensslCA makes a root and an intermediate CA with openssl in dir and
// returns a function that signs a CSR with the intermediate.
func opensslCA(t *testing.T, dir string) (rootPEM, intPEM string, sign func(csrPEM []byte) string) {
	t.Helper()
	f := func(name string) string { return filepath.Join(dir, name) }
	writeFile(t, f("ca.ext"), []byte("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n"))
	run(t, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f("root.key"), "-out", f("root.pem"),
		"-subj", "/CN=Test Root CA/O=Example", "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
	run(t, "openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f("int.key"), "-out", f("int.csr"), "-subj", "/CN=Test Intermediate CA/O=Example")
	run(t, "openssl", "x509", "-req", "-in", f("int.csr"), "-CA", f("root.pem"), "-CAkey", f("root.key"), "-set_serial", "2",
		"-days", "2", "-extfile", f("ca.ext"), "-out", f("int.pem"))
	return string(readFile(t, f("root.pem"))), string(readFile(t, f("int.pem"))), func(csr []byte) string {
		writeFile(t, f("leaf.csr"), csr)
		run(t, "openssl", "x509", "-req", "-in", f("leaf.csr"), "-CA", f("int.pem"), "-CAkey", f("int.key"), "-set_serial", "3",
			"-days", "1", "-copy_extensions", "copy", "-out", f("leaf.pem"))
		return string(readFile(t, f("leaf.pem")))
	}
}

// Keystores we write are read by keytool -list -v and openssl pkcs12, and
// serve TLS from a JVM KeyManager: a JKS with a distinct key password holding
// a CSR signed by an openssl CA, and a PKCS#12 with a self-signed EC key.
func TestOurKeystoresInKeytoolOpensslAndJava(t *testing.T) {
	needTool(t, "keytool")
	needTool(t, "openssl")
	needTool(t, "java")
	dir := t.TempDir()
	rootPEM, intPEM, sign := opensslCA(t, dir)

	// JKS: CSR, openssl-signed reply (leaf + intermediate), root trusted.
	jksPath := filepath.Join(dir, "james.jks")
	rsaKey := testKey(t, 0)
	req := CertificateRequest{Subject: Subject{CommonName: "mail.example.com", OrganizationalUnit: "Mail", Organization: "Example",
		Locality: "Paris", Province: "IDF", Country: "FR"}, DNSNames: []string{"mail.example.com"}}
	err := Update(bg, lf(jksPath), []byte(storePW), JKS, func(k *Keystore) error {
		cert, err := SelfSign(rsaKey, req)
		if err != nil {
			return err
		}
		if err := k.SetPrivateKeyEntry("james", rsaKey, []*x509.Certificate{cert}, []byte("keypass1")); err != nil {
			return err
		}
		_, err = k.ImportTrustedPEM("root", []byte(rootPEM))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	csr, err := CreateCSR(rsaKey, req)
	if err != nil {
		t.Fatal(err)
	}
	reply := sign(csr) + intPEM
	if err := Update(bg, lf(jksPath), []byte(storePW), JKS, func(k *Keystore) error {
		return k.InstallReply("james", []byte("keypass1"), []byte(reply))
	}); err != nil {
		t.Fatal(err)
	}
	jk, err := Open(bg, lf(jksPath), []byte(storePW))
	if err != nil {
		t.Fatal(err)
	}
	jksEntry, _ := jk.Entry("james")
	if len(jksEntry.Chain) != 3 || jksEntry.Chain[2].Subject.CommonName != "Test Root CA" {
		t.Fatalf("chain after reply: %s", subjects(jksEntry.Chain))
	}
	if err := jk.Validate("", []byte("keypass1"), time.Time{}); err != nil {
		t.Fatal(err)
	}

	// PKCS#12: self-signed EC key plus a trusted certificate.
	p12Path := filepath.Join(dir, "mx.p12")
	ecCert := selfSignedCert(t, testKey(t, -1), "mx.example.com")
	if err := Update(bg, lf(p12Path), []byte(storePW), PKCS12, func(k *Keystore) error {
		if err := k.SetPrivateKeyEntry("mx", testKey(t, -1), []*x509.Certificate{ecCert}, nil); err != nil {
			return err
		}
		_, err := k.ImportTrustedPEM("root", []byte(rootPEM))
		return err
	}); err != nil {
		t.Fatal(err)
	}

	t.Run("keytool -list -v", func(t *testing.T) {
		t.Parallel()
		for _, c := range []struct {
			path, alias, owner, keyText string
			leaf                        *x509.Certificate
			chainLen                    int
		}{
			{jksPath, "james", "CN=mail.example.com, OU=Mail, O=Example, L=Paris, ST=IDF, C=FR", "2048-bit RSA key", jksEntry.Chain[0], 3},
			{p12Path, "mx", "CN=mx.example.com, O=Example, C=US", "256-bit EC (secp256r1) key", ecCert, 1},
		} {
			out := keytool(t, "-list", "-v", "-keystore", c.path, "-storepass", storePW)
			for _, want := range []string{
				"Alias name: " + c.alias, "Entry type: PrivateKeyEntry", "Owner: " + c.owner, c.keyText,
				fmt.Sprintf("Certificate chain length: %d", c.chainLen), "SHA256: " + Fingerprint(c.leaf),
				"Alias name: root", "Entry type: trustedCertEntry", "Your keystore contains 2 entries",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("%s: keytool -list -v lacks %q:\n%s", c.path, want, out)
				}
			}
		}
	})
	t.Run("openssl pkcs12 -info", func(t *testing.T) {
		t.Parallel()
		out := run(t, "openssl", "pkcs12", "-info", "-in", p12Path, "-passin", "pass:"+storePW, "-nodes")
		for _, want := range []string{"MAC: sha256, Iteration 10000", "PBES2, PBKDF2, AES-256-CBC, Iteration 10000, PRF hmacWithSHA256",
			"friendlyName: mx", "friendlyName: root", "subject=C = US, O = Example, CN = mx.example.com", "-----BEGIN PRIVATE KEY-----", pemOf(ecCert)} {
			if !strings.Contains(out, strings.TrimSpace(want)) {
				t.Errorf("openssl pkcs12 -info lacks %q:\n%s", want, out)
			}
		}
		keyOut := run(t, "openssl", "pkcs12", "-in", p12Path, "-passin", "pass:"+storePW, "-nodes", "-nocerts")
		block, _ := pem.Decode([]byte(keyOut[strings.Index(keyOut, "-----BEGIN"):]))
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil || !testKey(t, -1).(interface{ Equal(crypto.PrivateKey) bool }).Equal(key) {
			t.Errorf("openssl extracted another key (%v)", err)
		}
	})
	t.Run("JVM KeyManager serves TLS", func(t *testing.T) {
		t.Parallel()
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM([]byte(rootPEM))
		roots.AddCert(ecCert)
		javaServe(t, roots, []javaStore{
			{"JKS", jksPath, "keypass1", "mail.example.com", jksEntry.Chain[0]},
			{"PKCS12", p12Path, storePW, "mx.example.com", ecCert},
		})
	})
}

type javaStore struct {
	typ, path, keyPass, serverName string
	leaf                           *x509.Certificate
}

// javaServe runs a JVM (testdata/ServeKeystore.java, also used by the
// provider's tests) that loads each keystore into a SunX509 KeyManager and
// serves one TLS connection from it; a Go client verifies the chain.
func javaServe(t *testing.T, roots *x509.CertPool, stores []javaStore) {
	args := append(append([]string{}, jvmFlags...), filepath.Join("testdata", "ServeKeystore.java"))
	for _, s := range stores {
		args = append(args, s.typ, s.path, storePW, s.keyPass)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "java", args...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cancel()
	lines := bufio.NewScanner(stdout)
	for _, s := range stores {
		if !lines.Scan() {
			t.Fatalf("java printed no port for %s: %v", s.path, lines.Err())
		}
		port, ok := strings.CutPrefix(lines.Text(), "PORT ")
		if !ok {
			t.Fatalf("java: %q", lines.Text())
		}
		conn, err := tls.Dial("tcp", "127.0.0.1:"+port, &tls.Config{RootCAs: roots, ServerName: s.serverName})
		if err != nil {
			t.Fatalf("%s %s: TLS handshake: %v", s.typ, s.path, err)
		}
		if got := conn.ConnectionState().PeerCertificates[0]; !got.Equal(s.leaf) {
			t.Errorf("%s: JVM served %q, want %q", s.typ, got.Subject, s.leaf.Subject)
		}
		line, err := bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		if err != nil || line != "served "+s.typ+"\n" {
			t.Errorf("%s: read %q, %v", s.typ, line, err)
		}
	}
}

// Ed25519 and ECDSA P-521 keys (JDK 15 and later handle both), signed by a
// CA issued here, in JKS and PKCS#12: keytool lists them and a JVM
// KeyManager serves them to a Go client that verifies the chain.
func TestNewKeyKindsInKeytoolAndJava(t *testing.T) {
	needTool(t, "keytool")
	needTool(t, "java")
	dir := t.TempDir()
	caKey := testKey(t, 1)
	ca, err := SelfSign(caKey, CertificateRequest{Subject: Subject{CommonName: "Test CA"}, IsCA: true})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	var stores []javaStore
	for _, tc := range []struct {
		typ     Type
		spec    KeySpec
		keyText string
	}{
		{JKS, KeySpec{Algorithm: Ed25519}, "Ed25519 key"},
		{PKCS12, KeySpec{Algorithm: "EC", ECDSACurve: "P521"}, "521-bit EC (secp521r1) key"},
	} {
		key, err := GenerateKey(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.ToLower(tc.spec.Algorithm) + ".example.com"
		leaf, err := Issue(key.Public(), CertificateRequest{Subject: Subject{CommonName: name}, DNSNames: []string{name}}, caKey, ca)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name+".ks")
		must(t, Update(bg, lf(path), []byte(storePW), tc.typ, func(k *Keystore) error {
			return k.SetPrivateKeyEntry("mail", key, []*x509.Certificate{leaf, ca}, nil)
		}))
		out := keytool(t, "-list", "-v", "-keystore", path, "-storepass", storePW)
		for _, want := range []string{"Entry type: PrivateKeyEntry", "Certificate chain length: 2", tc.keyText, "SHA256: " + Fingerprint(leaf)} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: keytool -list -v lacks %q:\n%s", path, want, out)
			}
		}
		stores = append(stores, javaStore{string(tc.typ), path, storePW, name, leaf})
	}
	javaServe(t, roots, stores)
}
