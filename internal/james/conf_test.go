package james

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

// smtpConf is an smtpserver.xml with one block whose <bind> and <tls> are
// bind and tls.
func smtpConf(bind, tls string) string {
	return "<smtpservers><smtpserver><jmxName>mx</jmxName><bind>" + bind + "</bind>" + tls + "</smtpserver></smtpservers>"
}

const keystoreTLS = `<tls socketTLS="true" startTLS="false"><keystore>file://conf/keystore</keystore><secret>s3cret</secret></tls>`

// Input the command cannot translate faithfully fails with an error that
// names the file, the block and the setting, and writes nothing.
func TestImportErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		args  []string
		want  string // regexp
	}{
		{"not a James conf directory", map[string]string{"other.xml": "<x/>"}, nil,
			`has none of smtpserver.xml, lmtpserver.xml, imapserver.xml, pop3server.xml`},
		{"malformed XML", map[string]string{"smtpserver.xml": "<smtpservers><smtpserver>"}, nil,
			`smtpserver.xml: XML syntax error on line 1`},
		{"wrong root", map[string]string{"imapserver.xml": "<smtpservers/>"}, nil,
			`imapserver.xml line 1: root element <smtpservers>: want <imapservers>`},
		{"both TLS modes", map[string]string{"smtpserver.xml": smtpConf("0.0.0.0:25",
			`<tls socketTLS="true" startTLS="true"><keystore>file://conf/keystore</keystore><secret>x</secret></tls>`)}, nil,
			`smtpserver.xml <smtpserver> "mx" line 1: <tls socketTLS="true" startTLS="true">: James refuses both`},
		{"host name in bind", map[string]string{"smtpserver.xml": smtpConf("mail.example.com:25", "")}, nil,
			`"mx" line 1: <bind>mail.example.com:25</bind>: .*not an IP address.*-bind mail.example.com:25=ADDRESS:PORT`},
		{"port out of range", map[string]string{"smtpserver.xml": smtpConf("0.0.0.0:70000", "")}, nil,
			`port "70000" is not 1-65535`},
		{"no bind", map[string]string{"smtpserver.xml": "<smtpservers><smtpserver/></smtpservers>"}, nil,
			`<smtpserver> #1 line 1: no <bind>`},
		{"not a boolean", map[string]string{"smtpserver.xml": `<smtpservers><smtpserver enabled="maybe"/></smtpservers>`}, nil,
			`enabled="maybe": "maybe" is not a boolean`},
		{"TLS without certificate", map[string]string{"smtpserver.xml": smtpConf("0.0.0.0:465", `<tls socketTLS="true"/>`)}, nil,
			`<tls> turns TLS on but names no <keystore>`},
		{"same bind twice", map[string]string{
			"smtpserver.xml": smtpConf("0.0.0.0:25", ""),
			"pop3server.xml": "<pop3servers><pop3server><bind>0.0.0.0:25</bind></pop3server></pop3servers>"}, nil,
			`smtpserver.xml <smtpserver> "mx" and pop3server.xml <pop3server> #1 both bind 0.0.0.0:25`},
		{"missing keystore", map[string]string{"smtpserver.xml": smtpConf("0.0.0.0:465", keystoreTLS)}, nil,
			`"mx": keystore .*/conf/keystore does not open with its <secret>: .*no such file`},
		{"classpath keystore", map[string]string{"smtpserver.xml": smtpConf("0.0.0.0:465",
			`<tls socketTLS="true"><keystore>classpath:keystore</keystore><secret>x</secret></tls>`)}, nil,
			`"mx": <keystore>: "classpath:keystore" is inside James's jars`},
		{"PEM files missing", map[string]string{"smtpserver.xml": smtpConf("0.0.0.0:465",
			`<tls socketTLS="true"><privateKey>file://conf/k.pem</privateKey><certificates>file://conf/c.pem</certificates><secret>x</secret></tls>`)}, nil,
			`"mx": <certificates>file://conf/c.pem</certificates> with <privateKey>file://conf/k.pem</privateKey>: reading certificate .*/conf/c.pem: .*no such file.*an encrypted key \(<secret>\) is not supported`},
		{"empty secret", map[string]string{"smtpserver.xml": smtpConf("0.0.0.0:465",
			`<tls socketTLS="true"><keystore>file://conf/keystore</keystore><secret></secret></tls>`)}, nil,
			`keystore .*/conf/keystore has an empty <secret>`},
		{"unknown -bind", map[string]string{"smtpserver.xml": smtpConf("0.0.0.0:25", "")},
			[]string{"-bind", "0.0.0.0:26=127.0.0.1:2526"},
			`-bind 0.0.0.0:26: no enabled server block binds that address`},
		{"bad -bind target", map[string]string{"smtpserver.xml": smtpConf("0.0.0.0:25", "")},
			[]string{"-bind", "0.0.0.0:25=localhost:25"},
			`-bind 0.0.0.0:25=localhost:25: want one IP address:port`},
		{"-bind onto another listener", map[string]string{"smtpserver.xml": "<smtpservers>" +
			"<smtpserver><jmxName>a</jmxName><bind>0.0.0.0:25</bind></smtpserver>" +
			"<smtpserver><jmxName>b</jmxName><bind>127.0.0.1:2525</bind></smtpserver></smtpservers>"},
			[]string{"-bind", "0.0.0.0:25=127.0.0.1:2525"},
			`listeners a and b would both bind 127.0.0.1:2525`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			conf, out := filepath.Join(dir, "conf"), filepath.Join(dir, "out")
			for name, data := range tc.files {
				writeFile(t, filepath.Join(conf, name), []byte(data))
			}
			err := Main(append([]string{"import", conf, "-out", out}, tc.args...), new(bytes.Buffer), new(bytes.Buffer))
			if err == nil || !regexp.MustCompile(tc.want).MatchString(err.Error()) {
				t.Fatalf("error %v; want it to match %q", err, tc.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("the command failed but made %s (%v)", out, err)
			}
		})
	}
}

// A keystore that does not open with its <secret>, or has no key to
// serve, fails generation with the block and the file named.
func TestImportKeystoreErrors(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "conf")
	writeFile(t, filepath.Join(conf, "smtpserver.xml"), []byte(smtpConf("0.0.0.0:465", keystoreTLS)))
	makeKeystore(t, conf, strings.Fields("keystore PKCS12 other-secret james ECDSA mail.example.test"))
	c, err := Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Generate(c, Options{Hostname: "mx", Now: time.Now()})
	if err == nil || !strings.Contains(err.Error(), `smtpserver.xml <smtpserver> "mx": keystore `+filepath.Join(conf, "keystore")+` does not open with its <secret>`) {
		t.Errorf("wrong secret: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the error shows the secret: %v", err)
	}

	ks := keystore.New(keystore.JKS)
	cert := mustSelfSigned(t)
	if err := ks.SetTrustedCertificate("root", cert); err != nil {
		t.Fatal(err)
	}
	data, err := ks.Encode([]byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(conf, "keystore"), data)
	if _, err = Generate(c, Options{Hostname: "mx", Now: time.Now()}); err == nil || !strings.Contains(err.Error(), "holds no private key entry") {
		t.Errorf("keystore with only a trusted entry: %v", err)
	}
}

func mustSelfSigned(t *testing.T) *x509.Certificate {
	t.Helper()
	key, err := keystore.GenerateKey(keystore.KeySpec{Algorithm: "ECDSA"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := keystore.SelfSign(key, keystore.CertificateRequest{Subject: keystore.Subject{CommonName: "root"}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The command refuses to replace files the output folder has, unless
// -force; it writes the secrets file with mode 0600 either way.
func TestImportOutputFolder(t *testing.T) {
	dir := t.TempDir()
	conf, out := filepath.Join(dir, "conf"), filepath.Join(dir, "out")
	writeFile(t, filepath.Join(conf, "smtpserver.xml"), []byte(smtpConf("0.0.0.0:465", keystoreTLS)))
	makeKeystore(t, conf, strings.Fields("keystore PKCS12 s3cret james ECDSA mail.example.test"))
	writeFile(t, filepath.Join(out, MainFile), []byte("# mine\n"))
	err := Main([]string{"import", conf, "-out", out, "-hostname", "mx"}, new(bytes.Buffer), new(bytes.Buffer))
	if err == nil || !strings.Contains(err.Error(), "already has main.tf") {
		t.Fatalf("existing main.tf: %v", err)
	}
	if got := string(readBytes(t, filepath.Join(out, MainFile))); got != "# mine\n" {
		t.Fatalf("main.tf was replaced: %q", got)
	}
	if _, err := os.Stat(filepath.Join(out, SecretsFile)); !os.IsNotExist(err) {
		t.Fatalf("a refused run wrote %s: %v", SecretsFile, err)
	}
	var stdout bytes.Buffer
	if err := Main([]string{"import", "-force", conf, "-out", out, "-hostname", "mx"}, &stdout, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(out, SecretsFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, mode %v; want 0600", SecretsFile, err, info.Mode().Perm())
	}
	if !strings.Contains(stdout.String(), filepath.Join(out, MainFile)) {
		t.Errorf("stdout does not name what was written: %q", stdout.String())
	}
}

// The test fixtures of James's protocols library: a root that is one
// server block, <clientAuth> with and without a truststore, and secrets
// that notes never show.
func TestProtocolsLibraryFixtures(t *testing.T) {
	tests := []struct {
		file                string
		socketTLS, startTLS bool
		clientAuth          string // the note's setting, "" for none
	}{
		{"testServerStartTLS.xml", false, true, ""},
		{"testServerTLS.xml", true, false, ""},
		{"testServerTLSDefaultAuth.xml", true, false, "<tls><clientAuth/></tls>"},
		{"testServerTLSNeedAuth.xml", true, false, "<tls><clientAuth><truststore>file://conf/truststore</truststore>" +
			"<truststoreType>JKS</truststoreType><truststoreSecret>(not shown)</truststoreSecret></clientAuth></tls>"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			root, err := parseXML(readBytes(t, filepath.Join("testdata", "james", "protocols-library-tests", tc.file)))
			if err != nil {
				t.Fatal(err)
			}
			s, err := parseServer(tc.file, "testserver", 1, root)
			if err == nil {
				t.Fatal("a block without <bind> was accepted")
			}
			if !strings.Contains(err.Error(), "no <bind>") {
				t.Fatalf("error %v; want no <bind>", err)
			}
			root.Children = append(root.Children, &node{Name: "bind", Text: "127.0.0.1:2525"})
			if s, err = parseServer(tc.file, "testserver", 1, root); err != nil {
				t.Fatal(err)
			}
			got := s.TLS
			if got.SocketTLS != tc.socketTLS || got.StartTLS != tc.startTLS || got.Keystore != "file://conf/keystore" ||
				got.KeystoreType != "JKS" || got.Secret != "james72laBalle" {
				t.Errorf("tls = %+v", got)
			}
			var clientAuth string
			for _, n := range s.Notes {
				if strings.Contains(n.Setting, "james72laBalle") || strings.Contains(n.Why, "james72laBalle") {
					t.Errorf("note shows a secret: %s", n)
				}
				if strings.Contains(n.Setting, "clientAuth") {
					clientAuth = n.Setting
				}
			}
			if clientAuth != tc.clientAuth {
				t.Errorf("clientAuth note %q; want %q", clientAuth, tc.clientAuth)
			}
		})
	}
}

func TestResolvePath(t *testing.T) {
	conf := "/opt/james/conf"
	tests := []struct{ ref, want, err string }{
		{"file://conf/keystore", "/opt/james/conf/keystore", ""},
		{"file://conf/tls/mx.p12", "/opt/james/conf/tls/mx.p12", ""},
		{"file://var/keystore", "/opt/james/var/keystore", ""},
		{"file:///etc/james/keystore", "/etc/james/keystore", ""},
		{"file://keystore", "/opt/james/keystore", ""},
		{"/etc/ssl/mx.jks", "/etc/ssl/mx.jks", ""},
		{"conf/keystore", "/opt/james/conf/keystore", ""},
		{"classpath:keystore", "", "inside James's jars"},
		{"https://example.com/keystore", "", "only file:// resources"},
	}
	for _, tc := range tests {
		got, err := resolvePath(conf, tc.ref)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("resolvePath(%q) = %q, %v; want %q, %q", tc.ref, got, err, tc.want, tc.err)
		}
	}
}

func TestParseBinds(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"0.0.0.0:25", "0.0.0.0:25", ""},
		{" 0.0.0.0:25 , [::]:25 ", "0.0.0.0:25 [::]:25", ""},
		{"127.0.0.1:24,", "127.0.0.1:24", ""},
		{"0.0.0.0", "", "not address:port"},
		{"0.0.0.0:0", "", "not 1-65535"},
		{"0.0.0.0:smtp", "", "not 1-65535"},
		{"mx:25", "", "not an IP address"},
		{"", "", "empty <bind>"},
	}
	for _, tc := range tests {
		binds, err := parseBinds(tc.in)
		var got []string
		for _, b := range binds {
			got = append(got, b.String())
		}
		if strings.Join(got, " ") != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("parseBinds(%q) = %v, %v; want %q, %q", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestUniqueName(t *testing.T) {
	taken := map[string]bool{}
	for _, tc := range []struct{ in, want string }{
		{"smtpserver-TLS", "smtpserver_tls"},
		{"smtpserver TLS", "smtpserver_tls_2"},
		{"keystore.p12", "keystore_p12"},
		{"993", "james_993"},
		{"--", "james"},
		{"Ünïcode", "n_code"},
	} {
		if got := uniqueName(tc.in, taken); got != tc.want {
			t.Errorf("uniqueName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseBool(t *testing.T) {
	for in, want := range map[string]bool{"true": true, "TRUE": true, " yes ": true, "on": true, "false": false, "No": false, "off": false} {
		if got, err := parseBool(in); err != nil || got != want {
			t.Errorf("parseBool(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseBool("1"); err == nil {
		t.Error(`parseBool("1") accepted`)
	}
}
