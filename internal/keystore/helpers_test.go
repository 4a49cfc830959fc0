package keystore

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
)

const storePW = "changeit"

// bg is the context of the tests' file operations.
var bg = context.Background()

// lf is the keystore file at path on the local host.
func lf(path string) File { return host.LocalFile(path) }

// needTool skips the test when name is not on PATH.
func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not on PATH", name)
	}
	return p
}

// run runs a tool and returns its combined output, failing the test on error.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	needTool(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

var (
	keysOnce sync.Once
	rsaKeys  []crypto.Signer
	ecKey    crypto.Signer
)

// testKey returns one of a few keys made once per test binary: i 0..3 are
// RSA 2048, -1 is ECDSA P-256.
func testKey(t testing.TB, i int) crypto.Signer {
	t.Helper()
	keysOnce.Do(func() {
		var wg sync.WaitGroup
		rsaKeys = make([]crypto.Signer, 4)
		for j := range rsaKeys {
			wg.Go(func() {
				k, err := GenerateKey(KeySpec{Algorithm: "RSA"})
				if err != nil {
					panic(err)
				}
				rsaKeys[j] = k
			})
		}
		k, err := GenerateKey(KeySpec{Algorithm: "ECDSA"})
		if err != nil {
			panic(err)
		}
		ecKey = k
		wg.Wait()
	})
	if i < 0 {
		return ecKey
	}
	return rsaKeys[i]
}

func selfSignedCert(t testing.TB, key crypto.Signer, cn string) *x509.Certificate {
	t.Helper()
	c, err := SelfSign(key, CertificateRequest{
		Subject:  Subject{CommonName: cn, Organization: "Example", Country: "US"},
		DNSNames: []string{cn},
		NotAfter: time.Now().Add(24 * time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testCA is a CA made in Go, for cases openssl is not needed for.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newTestCA(t testing.TB, cn string, key crypto.Signer, parent *testCA) *testCA {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(48 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	ca := &testCA{key: key}
	issuer, signer := tmpl, key
	if parent != nil {
		issuer, signer = parent.cert, parent.key
	}
	ca.cert = mustCreate(t, tmpl, issuer, key.Public(), signer)
	return ca
}

// issue signs a server certificate for pub valid from nb to na.
func (ca *testCA) issue(t testing.TB, cn string, pub crypto.PublicKey, nb, na time.Time) *x509.Certificate {
	t.Helper()
	return mustCreate(t, &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     []string{cn},
		NotBefore:    nb,
		NotAfter:     na,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca.cert, pub, ca.key)
}

func mustCreate(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantErr checks err wraps kind and that its text names every string in names.
func wantErr(t testing.TB, err, kind error, names ...string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("got error %v, want %v", err, kind)
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error %q does not name %q", err, n)
		}
	}
}

func isEC(k crypto.Signer) bool { _, ok := k.Public().(*ecdsa.PublicKey); return ok }

func tempPath(t testing.TB, name string) string { return filepath.Join(t.TempDir(), name) }

var _ = bytes.Equal

func asError(err error, target **Error) bool { return errors.As(err, target) }

func needToolOK(name string) (string, error) { return exec.LookPath(name) }
