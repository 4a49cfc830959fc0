package listener

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

// leafSpec describes a server certificate for a testCA to issue.
type leafSpec struct {
	names      []string
	key        keystore.KeySpec
	ocspURL    string // the responder it names; "" for none
	mustStaple bool   // the TLS feature status_request (RFC 7633)
}

var serials atomic.Int64

// issue makes a key and a server certificate for spec, signed by ca; the
// chain holds the leaf and the CA.
func (ca *testCA) issue(t testing.TB, spec leafSpec) tls.Certificate {
	t.Helper()
	key, err := keystore.GenerateKey(spec.key)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(100 + serials.Add(1)),
		Subject:      pkix.Name{CommonName: spec.names[0]},
		DNSNames:     spec.names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if spec.ocspURL != "" {
		tmpl.OCSPServer = []string{spec.ocspURL}
	}
	if spec.mustStaple {
		value, err := asn1.Marshal([]int{5})
		if err != nil {
			t.Fatal(err)
		}
		tmpl.ExtraExtensions = []pkix.Extension{{Id: oidTLSFeature, Value: value}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key, Leaf: leaf}
}

// writePEMPair writes cert's chain and key as PEM files in dir, the way
// certbot does (fullchain.pem, privkey.pem), and returns their paths.
func writePEMPair(t testing.TB, dir, name string, cert tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	var chain []byte
	for _, der := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	writeAtomically(t, certFile, chain)
	writeAtomically(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	return certFile, keyFile
}

// writeAtomically replaces path as tools do (a new file renamed over it).
func writeAtomically(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// writeKeystoreEntry puts cert (key and chain) into the keystore at path
// under alias.
func writeKeystoreEntry(t testing.TB, path, alias string, cert tls.Certificate) {
	t.Helper()
	chain := make([]*x509.Certificate, len(cert.Certificate))
	for i, der := range cert.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		chain[i] = c
	}
	err := keystore.Update(context.Background(), host.LocalFile(path), []byte(testPassword), keystore.PKCS12, func(k *keystore.Keystore) error {
		return k.SetPrivateKeyEntry(alias, cert.PrivateKey.(crypto.Signer), chain, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
}
