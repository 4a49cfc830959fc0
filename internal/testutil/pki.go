package testutil

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

// Certificate is a private key and a self-signed certificate for it, which
// clients trust directly: there is no separate CA.
type Certificate struct {
	// TLS holds the key and the certificate, with Leaf set.
	TLS tls.Certificate
}

// ServerConfig is a TLS 1.2+ server config that presents c.
func (c *Certificate) ServerConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{c.TLS}, MinVersion: tls.VersionTLS12}
}

// ClientConfig is a TLS 1.2+ client config that trusts c alone and expects
// it for serverName (a host name or an IP address).
func (c *Certificate) ClientConfig(serverName string) *tls.Config {
	return &tls.Config{RootCAs: c.Pool(), ServerName: serverName, MinVersion: tls.VersionTLS12}
}

// Pool is a certificate pool holding c.
func (c *Certificate) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(c.TLS.Leaf)
	return pool
}

// PEM is the certificate in PEM.
func (c *Certificate) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.TLS.Leaf.Raw})
}

// WriteCAFile writes the certificate as PEM to dir/ca.pem, for external
// clients (openssl, curl, Python) to trust, and returns the path.
func (c *Certificate) WriteCAFile(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(path, c.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// WriteFiles writes the certificate and its private key as PEM to
// dir/cert.pem and dir/key.pem, for servers run as peers (Dovecot,
// Postfix), and returns the paths.
func (c *Certificate) WriteFiles(t testing.TB, dir string) (certFile, keyFile string) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.TLS.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, c.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

var (
	selfSignedMu sync.Mutex
	selfSigned   = map[string]*Certificate{}
)

// SelfSigned returns an ECDSA P-256 certificate for hosts (host names or IP
// addresses; the first is also the common name), valid from an hour ago
// for a day, self-signed and marked as a CA so that every client accepts it
// as its own trust anchor.
//
// It is made once per test binary for each list of hosts, so that a server
// and the clients a test sets up apart agree on it without passing it
// along.
func SelfSigned(t testing.TB, hosts ...string) *Certificate {
	t.Helper()
	selfSignedMu.Lock()
	defer selfSignedMu.Unlock()
	id := strings.Join(hosts, ",")
	if c, ok := selfSigned[id]; ok {
		return c
	}
	c, err := NewSelfSigned(hosts...)
	if err != nil {
		t.Fatal(err)
	}
	selfSigned[id] = c
	return c
}

// NewSelfSigned makes a certificate as SelfSigned does, every time anew and
// without a test, for benchmarks and helpers that run outside one.
func NewSelfSigned(hosts ...string) (*Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	dnsNames, ips := splitHosts(hosts)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: hosts[0]},
		DNSNames:              dnsNames,
		IPAddresses:           ips,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	c := &Certificate{TLS: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}}
	return c, nil
}

// Keystore says what WriteKeystore puts into a keystore file.
type Keystore struct {
	// Path is the keystore file; it is created if it does not exist.
	Path string
	// Password is the store password.
	Password string
	// Format is keystore.JKS or keystore.PKCS12; "" keeps the format of an
	// existing file and makes a new one JKS.
	Format keystore.Type
	// Alias names the private key entry.
	Alias string
	// Key is the kind of key to generate; zero means ECDSA P-256, which is
	// fast (unlike keystore.GenerateKey, where it means RSA 2048).
	Key keystore.KeySpec
	// Hosts are the certificate's host names and IP addresses; the first is
	// also its common name.
	Hosts []string
	// Trusted become trusted certificate entries "ca0", "ca1" and so on.
	Trusted []*x509.Certificate
}

// WriteKeystore generates a new key as ks.Key says, self-signs it with
// keystore.SelfSign for ks.Hosts and stores it under ks.Alias (replacing
// the entry there, as a renewal would) with the trusted entries, in one
// atomic update of ks.Path. It returns the key and certificate.
func WriteKeystore(t testing.TB, ks Keystore) *Certificate {
	t.Helper()
	spec := ks.Key
	if spec.Algorithm == "" {
		spec.Algorithm = "ECDSA"
	}
	key, err := keystore.GenerateKey(spec)
	if err != nil {
		t.Fatal(err)
	}
	dnsNames, ips := splitHosts(ks.Hosts)
	cert, err := keystore.SelfSign(key, keystore.CertificateRequest{
		Subject:     keystore.Subject{CommonName: ks.Hosts[0]},
		DNSNames:    dnsNames,
		IPAddresses: ips,
	})
	if err != nil {
		t.Fatal(err)
	}
	err = keystore.Update(context.Background(), host.LocalFile(ks.Path), []byte(ks.Password), ks.Format, func(k *keystore.Keystore) error {
		if err := k.SetPrivateKeyEntry(ks.Alias, key, []*x509.Certificate{cert}, nil); err != nil {
			return err
		}
		for i, c := range ks.Trusted {
			if err := k.SetTrustedCertificate("ca"+strconv.Itoa(i), c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("writing keystore %s: %v", ks.Path, err)
	}
	return &Certificate{TLS: tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}}
}

// splitHosts sorts hosts into DNS names and IP addresses.
func splitHosts(hosts []string) (dnsNames []string, ips []net.IP) {
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			dnsNames = append(dnsNames, h)
		}
	}
	return dnsNames, ips
}
