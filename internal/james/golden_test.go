package james

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

var update = flag.Bool("update", false, "rewrite the expected output of the golden files in testdata/golden")

// A golden file (testdata/golden/*.txt) is a case of `james import`: the
// input, then the expected output, each file after a "-- name --"
// separator line. Before the first separator come comment lines and these
// directives:
//
//	set: distributed-app          the conf directory starts as testdata/james/<set>
//	args: -hostname mx.example    more arguments of james import
//	keystore: FILE TYPE PASSWORD ALIAS ALGORITHM [ca] HOST...
//	                              a keystore under the conf directory, its
//	                              key self-signed (or signed by a test CA
//	                              with "ca") for the hosts, valid 365 days
//	pem: CERTFILE KEYFILE HOST    a PEM certificate and key under the conf
//	                              directory, self-signed for HOST
//
// Files named conf/... are input, written into the conf directory (over
// the set's). The rest are expected output: out/<file> for each file the
// command writes, or "error" for the error it must fail with. Paths under
// the test's temporary folder read as $TMP. -update rewrites the expected
// output from what the command now writes.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/golden/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runGolden(t, file)
		})
	}
}

type archiveFile struct {
	name string
	data []byte
}

// parseArchive splits a golden file into its comment and its files.
func parseArchive(data []byte) (comment []byte, files []archiveFile) {
	var cur *archiveFile
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		s := strings.TrimRight(string(line), "\n")
		if strings.HasPrefix(s, "-- ") && strings.HasSuffix(s, " --") && len(s) > 6 {
			files = append(files, archiveFile{name: strings.TrimSpace(s[3 : len(s)-3])})
			cur = &files[len(files)-1]
			continue
		}
		if cur == nil {
			comment = append(comment, line...)
		} else {
			cur.data = append(cur.data, line...)
		}
	}
	return comment, files
}

func formatArchive(comment []byte, files []archiveFile) []byte {
	out := bytes.Clone(comment)
	for _, f := range files {
		out = append(out, "-- "+f.name+" --\n"...)
		out = append(out, f.data...)
	}
	return out
}

func runGolden(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	comment, files := parseArchive(data)
	tmp := t.TempDir()
	conf, out := filepath.Join(tmp, "conf"), filepath.Join(tmp, "out")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	var args []string
	secrets := []string{"do-not-print-me"} // a truststoreSecret in features.txt
	for _, line := range strings.Split(string(comment), "\n") {
		key, value, _ := strings.Cut(line, ": ")
		switch key {
		case "set":
			copyDir(t, filepath.Join("testdata", "james", value), conf)
		case "args":
			args = append(args, strings.Fields(value)...)
		case "pem":
			makePEM(t, conf, strings.Fields(value))
		case "keystore":
			makeKeystore(t, conf, strings.Fields(value))
			secrets = append(secrets, strings.Fields(value)[2])
		}
	}
	var want []archiveFile
	for _, f := range files {
		if rel, ok := strings.CutPrefix(f.name, "conf/"); ok {
			writeFile(t, filepath.Join(conf, rel), f.data)
		} else {
			want = append(want, f)
		}
	}
	var stdout, stderr bytes.Buffer
	err = Main(append([]string{"import", conf, "-out", out}, args...), &stdout, &stderr)
	got := []archiveFile{}
	if err != nil {
		got = append(got, archiveFile{name: "error", data: []byte(err.Error() + "\n")})
		if _, statErr := os.Stat(out); statErr == nil {
			t.Errorf("the command failed but created %s", out)
		}
	} else {
		got = append(got, readOutput(t, out)...)
	}
	for i := range got {
		got[i].data = bytes.ReplaceAll(got[i].data, []byte(tmp), []byte("$TMP"))
		for _, secret := range secrets {
			if got[i].name != "out/"+SecretsFile && bytes.Contains(got[i].data, []byte(secret)) {
				t.Errorf("%s holds the secret %q", got[i].name, secret)
			}
		}
	}
	if *update {
		var keep []archiveFile
		for _, f := range files {
			if strings.HasPrefix(f.name, "conf/") {
				keep = append(keep, f)
			}
		}
		if err := os.WriteFile(file, formatArchive(comment, append(keep, got...)), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if len(got) != len(want) {
		t.Errorf("wrote %s; want %s", names(got), names(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i].name != want[i].name || !bytes.Equal(got[i].data, want[i].data) {
			t.Errorf("%s differs from %s (run go test -update to see the difference in git):\n%s", got[i].name, want[i].name, got[i].data)
		}
	}
}

func names(files []archiveFile) string {
	var n []string
	for _, f := range files {
		n = append(n, f.name)
	}
	return strings.Join(n, ", ")
}

// readOutput reads what the command wrote, checks what every file must
// be (main.tf valid HCL, the secrets file private, CA chains parseable)
// and returns the files a golden file compares. CA chains hold keys made
// by the test and are left out.
func readOutput(t *testing.T, dir string) []archiveFile {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []archiveFile
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := e.Info()
		switch {
		case strings.HasSuffix(e.Name(), "-chain.pem"):
			if _, err := keystore.ParseCertificatesPEM(data); err != nil {
				t.Errorf("%s: %v", e.Name(), err)
			}
			continue
		case e.Name() == SecretsFile && info.Mode().Perm() != 0o600:
			t.Errorf("%s has mode %v, want 0600", e.Name(), info.Mode().Perm())
		case strings.HasSuffix(e.Name(), ".tf") || strings.HasSuffix(e.Name(), ".tfvars"):
			if _, diags := hclparse.NewParser().ParseHCL(data, e.Name()); diags.HasErrors() {
				t.Errorf("%s is not valid HCL: %v", e.Name(), hcl.Diagnostics(diags))
			}
		}
		out = append(out, archiveFile{name: "out/" + e.Name(), data: data})
	}
	return out
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(to, e.Name()), data)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// makeKeystore writes the keystore a "keystore:" directive describes:
// FILE TYPE PASSWORD ALIAS ALGORITHM [ca] HOST...
func makeKeystore(t *testing.T, conf string, f []string) {
	t.Helper()
	if len(f) < 6 {
		t.Fatalf("keystore directive %q: want FILE TYPE PASSWORD ALIAS ALGORITHM [ca] HOST...", f)
	}
	typ, err := keystore.ParseType(f[1])
	if err != nil {
		t.Fatal(err)
	}
	spec := keystore.KeySpec{Algorithm: f[4]}
	if bits, ok := strings.CutPrefix(f[4], "RSA-"); ok {
		spec.Algorithm = "RSA"
		spec.RSABits = map[string]int{"2048": 2048, "3072": 3072, "4096": 4096}[bits]
	}
	key, err := keystore.GenerateKey(spec)
	if err != nil {
		t.Fatal(err)
	}
	hosts, signed := f[5:], false
	if hosts[0] == "ca" {
		hosts, signed = hosts[1:], true
	}
	now := time.Now()
	req := keystore.CertificateRequest{
		Subject:   keystore.Subject{CommonName: hosts[0], Organization: "Example", Country: "FR"},
		DNSNames:  hosts,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(-time.Hour + 365*24*time.Hour),
	}
	cert, err := keystore.SelfSign(key, req)
	if err != nil {
		t.Fatal(err)
	}
	chain := []*x509.Certificate{cert}
	if signed {
		chain = signByTestCA(t, cert)
	}
	file := filepath.Join(conf, f[0])
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	err = keystore.Update(context.Background(), host.LocalFile(file), []byte(f[2]), typ, func(k *keystore.Keystore) error {
		return k.SetPrivateKeyEntry(f[3], key, chain, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// makePEM writes the PEM pair a "pem:" directive describes.
func makePEM(t *testing.T, conf string, f []string) {
	t.Helper()
	if len(f) != 3 {
		t.Fatalf("pem directive %q: want CERTFILE KEYFILE HOST", f)
	}
	key, err := keystore.GenerateKey(keystore.KeySpec{Algorithm: "ECDSA"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := keystore.SelfSign(key, keystore.CertificateRequest{Subject: keystore.Subject{CommonName: f[2]}, DNSNames: f[2:]})
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(conf, f[0]), keystore.EncodeCertificatesPEM([]*x509.Certificate{cert}))
	writeFile(t, filepath.Join(conf, f[1]), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// signByTestCA returns cert issued again by a new test CA, with the CA:
// the chain a CA reply installs.
func signByTestCA(t *testing.T, cert *x509.Certificate) []*x509.Certificate {
	t.Helper()
	caKey, err := keystore.GenerateKey(keystore.KeySpec{Algorithm: "ECDSA"})
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test CA"},
		NotBefore: cert.NotBefore, NotAfter: cert.NotAfter.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafDER, err := x509.CreateCertificate(rand.Reader, cert, ca, cert.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	return []*x509.Certificate{leaf, ca}
}
