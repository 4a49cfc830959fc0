package keystore

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGenerateKey(t *testing.T) {
	cases := []struct {
		name string
		spec KeySpec
		bits int    // RSA modulus size
		crv  string // ECDSA curve
		bad  bool
	}{
		{"default is RSA 2048", KeySpec{}, 2048, "", false},
		{"RSA 0 bits means 2048", KeySpec{Algorithm: "RSA"}, 2048, "", false},
		{"RSA 3072", KeySpec{Algorithm: "rsa", RSABits: 3072}, 3072, "", false},
		{"ECDSA default P256", KeySpec{Algorithm: "ECDSA"}, 0, "P-256", false},
		{"ECDSA P384", KeySpec{Algorithm: "ECDSA", ECDSACurve: "P384"}, 0, "P-384", false},
		{"EC secp384r1", KeySpec{Algorithm: "EC", ECDSACurve: "secp384r1"}, 0, "P-384", false},
		{"RSA 1024 refused", KeySpec{Algorithm: "RSA", RSABits: 1024}, 0, "", true},
		{"ECDSA P521", KeySpec{Algorithm: "ECDSA", ECDSACurve: "P521"}, 0, "P-521", false},
		{"EC secp521r1", KeySpec{Algorithm: "ec", ECDSACurve: "secp521r1"}, 0, "P-521", false},
		{"Ed25519", KeySpec{Algorithm: "Ed25519"}, 0, "", false},
		{"EdDSA is Ed25519", KeySpec{Algorithm: "eddsa"}, 0, "", false},
		{"P224 refused", KeySpec{Algorithm: "ECDSA", ECDSACurve: "P224"}, 0, "", true},
		{"DSA refused", KeySpec{Algorithm: "DSA"}, 0, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key, err := GenerateKey(tc.spec)
			if tc.bad {
				wantErr(t, err, ErrInvalidInput)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch k := key.(type) {
			case *rsa.PrivateKey:
				if k.N.BitLen() != tc.bits {
					t.Errorf("RSA %d bits, want %d", k.N.BitLen(), tc.bits)
				}
			case *ecdsa.PrivateKey:
				if k.Curve.Params().Name != tc.crv {
					t.Errorf("curve %s, want %s", k.Curve.Params().Name, tc.crv)
				}
			case ed25519.PrivateKey:
				if tc.bits != 0 || tc.crv != "" {
					t.Errorf("Ed25519 key for %+v", tc.spec)
				}
			default:
				t.Fatalf("key %T", key)
			}
		})
	}
}

func TestSelfSign(t *testing.T) {
	subject := Subject{CommonName: "mail.example.com", OrganizationalUnit: "Mail", Organization: "Example",
		Locality: "Paris", Province: "IDF", Country: "FR"}
	for _, tc := range []struct {
		name  string
		key   int
		usage x509.KeyUsage
	}{
		{"RSA", 0, x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment},
		{"ECDSA", -1, x509.KeyUsageDigitalSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nb := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
			c, err := SelfSign(testKey(t, tc.key), CertificateRequest{Subject: subject,
				DNSNames: []string{"mail.example.com", "mx.example.com"}, IPAddresses: []net.IP{net.ParseIP("192.0.2.1")},
				NotBefore: nb, NotAfter: nb.AddDate(1, 0, 0)})
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Subject.String(); got != "CN=mail.example.com,OU=Mail,O=Example,L=Paris,ST=IDF,C=FR" {
				t.Errorf("subject %q", got)
			}
			if c.KeyUsage != tc.usage {
				t.Errorf("key usage %v, want %v", c.KeyUsage, tc.usage)
			}
			if len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
				t.Errorf("EKU %v", c.ExtKeyUsage)
			}
			if c.SerialNumber.BitLen() != 128 || c.IsCA || len(c.SubjectKeyId) != 20 {
				t.Errorf("serial %d bits, CA %v, SKI %x", c.SerialNumber.BitLen(), c.IsCA, c.SubjectKeyId)
			}
			if !c.NotBefore.Equal(nb) || !c.NotAfter.Equal(nb.AddDate(1, 0, 0)) {
				t.Errorf("validity %s - %s", c.NotBefore, c.NotAfter)
			}
			if strings.Join(c.DNSNames, ",") != "mail.example.com,mx.example.com" || len(c.IPAddresses) != 1 {
				t.Errorf("SANs %v %v", c.DNSNames, c.IPAddresses)
			}
			if err := c.CheckSignatureFrom(c); err == nil {
				t.Error("a leaf is not a CA, yet it verifies as its own CA")
			}
			if !selfSigned(c) {
				t.Error("not self-signed")
			}
			if err := c.VerifyHostname("mx.example.com"); err != nil {
				t.Error(err)
			}
		})
	}
	t.Run("defaults", func(t *testing.T) {
		c, err := SelfSign(testKey(t, 0), CertificateRequest{Subject: Subject{CommonName: "x"}})
		if err != nil {
			t.Fatal(err)
		}
		if d := c.NotAfter.Sub(c.NotBefore); d != 90*24*time.Hour {
			t.Errorf("default validity %s", d)
		}
	})
	t.Run("inverted dates", func(t *testing.T) {
		_, err := SelfSign(testKey(t, 0), CertificateRequest{NotBefore: time.Now(), NotAfter: time.Now().Add(-time.Hour)})
		wantErr(t, err, ErrInvalidInput)
	})
}

func TestCreateCSR(t *testing.T) {
	out, err := CreateCSR(testKey(t, -1), CertificateRequest{Subject: Subject{CommonName: "mail.example.com", Country: "US"},
		DNSNames: []string{"mail.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(out)
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		t.Fatalf("not a PEM CSR: %q", out)
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Error(err)
	}
	if csr.Subject.String() != "CN=mail.example.com,C=US" || csr.DNSNames[0] != "mail.example.com" {
		t.Errorf("CSR %q %v", csr.Subject, csr.DNSNames)
	}
	if pub, ok := csr.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CSR key %T", csr.PublicKey)
	}
}

// Fingerprint prints what openssl and keytool print.
func TestFingerprint(t *testing.T) {
	c := selfSignedCert(t, testKey(t, 0), "fp.example.com")
	got := Fingerprint(c)
	if len(got) != 32*3-1 || strings.ToUpper(got) != got {
		t.Errorf("format %q", got)
	}
	if _, err := needToolOK("openssl"); err != nil {
		t.Skip(err)
	}
	path := filepath.Join(t.TempDir(), "c.pem")
	writeFile(t, path, EncodeCertificatesPEM([]*x509.Certificate{c}))
	out := run(t, "openssl", "x509", "-in", path, "-noout", "-fingerprint", "-sha256")
	if want := "sha256 Fingerprint=" + got; strings.TrimSpace(out) != want {
		t.Errorf("openssl says %q, want %q", out, want)
	}
}
