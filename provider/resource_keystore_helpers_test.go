package provider

// Test helpers for the keystore resources and data source: keytool and
// openssl driven from tests (skipped when missing), an openssl CA, byte
// snapshots of keystore files, and error patterns that survive terraform's
// line wrapping.

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// jvmFlags make each keytool start faster. Not -XX:TieredStopAtLevel=1:
// it halves start-up but doubles RSA key generation (1.5 s instead of
// 0.6 s for RSA 2048 here).
var jvmFlags = []string{"-J-XX:+UseSerialGC", "-J-Xshare:auto"}

// keytool runs the JDK's keytool and returns its output.
func keytool(t *testing.T, args ...string) string {
	t.Helper()
	return runTool(t, "keytool", append(append([]string{}, jvmFlags...), args...)...)
}

// keytoolGenkeypair makes (or adds to) a keystore with keytool -genkeypair;
// extra holds further options (-keypass, -ext, -startdate, ...).
func keytoolGenkeypair(t *testing.T, file, storetype, storepass, alias, keyalg string, extra ...string) {
	t.Helper()
	args := []string{"-genkeypair", "-noprompt", "-keystore", file, "-storetype", storetype, "-storepass", storepass,
		"-alias", alias, "-keyalg", keyalg, "-validity", "365",
		"-dname", "CN=" + alias + ".example.test, OU=Mail, O=Example, L=Paris, ST=IDF, C=FR"}
	keytool(t, append(args, extra...)...)
}

// keytoolList returns keytool -list -v of a keystore.
func keytoolList(t *testing.T, file, storepass string) string {
	t.Helper()
	return keytool(t, "-list", "-v", "-keystore", file, "-storepass", storepass)
}

func writeTestFile(t *testing.T, file string, data []byte) {
	t.Helper()
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func readTestFile(t *testing.T, file string) []byte {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// snapshot remembers files' bytes to check later that nothing wrote them.
type snapshot struct {
	t     *testing.T
	files map[string][]byte
}

func newSnapshot(t *testing.T) *snapshot { return &snapshot{t: t, files: map[string][]byte{}} }

// Take records the current bytes of files.
func (s *snapshot) Take(files ...string) {
	for _, f := range files {
		s.files[f] = readTestFile(s.t, f)
	}
}

// Unchanged fails the test when a recorded file's bytes changed.
func (s *snapshot) Unchanged() {
	s.t.Helper()
	if len(s.files) == 0 {
		s.t.Fatal("snapshot: nothing recorded")
	}
	for f, want := range s.files {
		if got, err := os.ReadFile(f); err != nil || !bytes.Equal(got, want) {
			s.t.Fatalf("%s changed (%d bytes before, %d now, err %v)", f, len(want), len(got), err)
		}
	}
}

// errorNaming matches a diagnostic that says what (its words may be
// wrapped across lines) and names the keystore file and the alias.
func errorNaming(what, file, alias string) *regexp.Regexp {
	words := strings.Fields(what)
	for i, w := range words {
		words[i] = regexp.QuoteMeta(w)
	}
	return regexp.MustCompile(`(?s)` + strings.Join(words, `\s+`) + `.*Keystore file:\s+` + regexp.QuoteMeta(file) +
		`\s+Alias:\s+` + regexp.QuoteMeta(alias))
}

var serials atomic.Int64

// testCA is a certificate authority made with openssl in a folder.
type testCA struct {
	t         *testing.T
	dir, name string
	CertPEM   string
}

func (ca *testCA) file(ext string) string { return filepath.Join(ca.dir, ca.name+ext) }

// newRootCA makes a self-signed root CA (EC P-256, valid two days).
func newRootCA(t *testing.T, dir, name, cn string) *testCA {
	t.Helper()
	ca := &testCA{t: t, dir: dir, name: name}
	runTool(t, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", ca.file(".key"), "-out", ca.file(".pem"), "-subj", "/O=Example/CN="+cn, "-days", "2",
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	ca.CertPEM = string(readTestFile(t, ca.file(".pem")))
	return ca
}

// intermediate makes a CA signed by ca.
func (ca *testCA) intermediate(name, cn string) *testCA {
	t := ca.t
	t.Helper()
	sub := &testCA{t: t, dir: ca.dir, name: name}
	writeTestFile(t, sub.file(".ext"), []byte("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n"))
	runTool(t, "openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", sub.file(".key"), "-out", sub.file(".csr"), "-subj", "/O=Example/CN="+cn)
	runTool(t, "openssl", "x509", "-req", "-in", sub.file(".csr"), "-CA", ca.file(".pem"), "-CAkey", ca.file(".key"),
		"-set_serial", fmt.Sprint(1000+serials.Add(1)), "-days", "2", "-extfile", sub.file(".ext"), "-out", sub.file(".pem"))
	sub.CertPEM = string(readTestFile(t, sub.file(".pem")))
	return sub
}

// sign signs a CSR for one day with openssl x509 -req, copying its
// subject alternative names, and returns the certificate, PEM.
func (ca *testCA) sign(csrPEM string) string {
	t := ca.t
	t.Helper()
	n := serials.Add(1)
	in, out := filepath.Join(ca.dir, fmt.Sprintf("req-%d.csr", n)), filepath.Join(ca.dir, fmt.Sprintf("cert-%d.pem", n))
	writeTestFile(t, in, []byte(csrPEM))
	runTool(t, "openssl", "x509", "-req", "-in", in, "-CA", ca.file(".pem"), "-CAkey", ca.file(".key"),
		"-set_serial", fmt.Sprint(1000+n), "-days", "1", "-copy_extensions", "copy", "-out", out)
	return string(readTestFile(t, out))
}

// signExpired signs a CSR with validity dates in the past, with openssl ca
// -startdate/-enddate (openssl x509 cannot backdate).
func (ca *testCA) signExpired(csrPEM string) string {
	t := ca.t
	t.Helper()
	db := filepath.Join(ca.dir, ca.name+"-db")
	if err := os.MkdirAll(db, 0o700); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(db, "index.txt"), nil)
	writeTestFile(t, filepath.Join(db, "serial"), []byte(fmt.Sprintf("%X\n", 0x100000+serials.Add(1))))
	cnf := filepath.Join(db, "ca.cnf")
	writeTestFile(t, cnf, []byte(fmt.Sprintf(`[ca]
default_ca = default
[default]
database = %[1]s/index.txt
new_certs_dir = %[1]s
serial = %[1]s/serial
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[any]
commonName = supplied
`, db)))
	in, out := filepath.Join(db, "expired.csr"), filepath.Join(db, "expired.pem")
	writeTestFile(t, in, []byte(csrPEM))
	runTool(t, "openssl", "ca", "-batch", "-notext", "-config", cnf, "-cert", ca.file(".pem"), "-keyfile", ca.file(".key"),
		"-in", in, "-out", out, "-startdate", "20200101000000Z", "-enddate", "20200201000000Z")
	return string(readTestFile(t, out))
}

// otherKeyCSR makes a CSR for a fresh key that no keystore holds.
func otherKeyCSR(t *testing.T, dir string) string {
	t.Helper()
	csr := filepath.Join(dir, "other.csr")
	runTool(t, "openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", filepath.Join(dir, "other.key"), "-out", csr, "-subj", "/CN=mail.example.test/O=Example")
	return string(readTestFile(t, csr))
}

// mustParseCertPEM parses the first certificate of PEM text.
func mustParseCertPEM(t *testing.T, s string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		t.Fatalf("no PEM block in %q", s)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// keytoolField returns the values keytool -list -v prints after label
// ("Owner: ", "Serial number: ", "SHA256: "), in order.
func keytoolField(out, label string) []string {
	var vals []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, label); ok {
			vals = append(vals, strings.TrimSpace(v))
		}
	}
	return vals
}

// initOnly is a first step with no resources: it initializes the working
// folder, which an import step that persists its state needs first.
func initOnly(e *accEnv) resource.TestStep {
	return resource.TestStep{Config: e.SourcedProviderBlock()}
}

// inDays is a time n days from now.
func inDays(n int) time.Time { return time.Now().Add(time.Duration(n) * 24 * time.Hour) }
