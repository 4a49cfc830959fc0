package keystore

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math"
	"math/big"
	"net"
	"strings"
	"time"
)

// KeySpec says which key to generate.
type KeySpec struct {
	Algorithm  string // "RSA" (also "" ) or "ECDSA" (also "EC"); case-insensitive
	RSABits    int    // 2048, 3072 or 4096; 0 means 2048
	ECDSACurve string // "P256" or "P384" (also "P-256", "secp256r1", ...); "" means P256
}

// GenerateKey generates a private key as spec says.
func GenerateKey(spec KeySpec) (crypto.Signer, error) {
	switch strings.ToUpper(spec.Algorithm) {
	case "", "RSA":
		bits := spec.RSABits
		if bits == 0 {
			bits = 2048
		}
		if bits != 2048 && bits != 3072 && bits != 4096 {
			return nil, newErr(ErrInvalidInput, "", nil, "RSA key size %d: want 2048, 3072 or 4096", bits)
		}
		return rsa.GenerateKey(rand.Reader, bits)
	case "ECDSA", "EC":
		curve, err := parseCurve(spec.ECDSACurve)
		if err != nil {
			return nil, err
		}
		return ecdsa.GenerateKey(curve, rand.Reader)
	default:
		return nil, newErr(ErrInvalidInput, "", nil, "key algorithm %q: want RSA or ECDSA", spec.Algorithm)
	}
}

func parseCurve(name string) (elliptic.Curve, error) {
	switch strings.ToUpper(strings.ReplaceAll(name, "-", "")) {
	case "", "P256", "SECP256R1", "PRIME256V1":
		return elliptic.P256(), nil
	case "P384", "SECP384R1":
		return elliptic.P384(), nil
	}
	return nil, newErr(ErrInvalidInput, "", nil, "ECDSA curve %q: want P256 or P384", name)
}

// Subject is an X.500 distinguished name as keytool -dname writes it
// ("CN=..., OU=..., O=..., L=..., ST=..., C=..."). Empty fields are left out.
type Subject struct {
	CommonName         string
	OrganizationalUnit string
	Organization       string
	Locality           string
	Province           string
	Country            string
}

func (s Subject) name() pkix.Name {
	one := func(v string) []string {
		if v == "" {
			return nil
		}
		return []string{v}
	}
	return pkix.Name{
		CommonName:         s.CommonName,
		OrganizationalUnit: one(s.OrganizationalUnit),
		Organization:       one(s.Organization),
		Locality:           one(s.Locality),
		Province:           one(s.Province),
		Country:            one(s.Country),
	}
}

// CertificateRequest describes the certificate to issue or request.
type CertificateRequest struct {
	Subject     Subject
	DNSNames    []string
	IPAddresses []net.IP
	// NotBefore and NotAfter bound the validity (SelfSign only). A zero
	// NotBefore means now; a zero NotAfter means NotBefore plus 90 days,
	// keytool's default.
	NotBefore, NotAfter time.Time
}

// SelfSign issues a self-signed X.509 v3 certificate for key: random 128-bit
// serial, serverAuth extended key usage, key usage digitalSignature (plus
// keyEncipherment for RSA), subject key identifier, not a CA.
func SelfSign(key crypto.Signer, req CertificateRequest) (*x509.Certificate, error) {
	if key == nil {
		return nil, newErr(ErrInvalidInput, "", nil, "no private key")
	}
	notBefore := req.NotBefore
	if notBefore.IsZero() {
		notBefore = time.Now()
	}
	notAfter := req.NotAfter
	if notAfter.IsZero() {
		notAfter = notBefore.Add(90 * 24 * time.Hour)
	}
	if !notAfter.After(notBefore) {
		return nil, newErr(ErrInvalidInput, "", nil, "not after (%s) is not after not before (%s)",
			notAfter.UTC().Format(time.RFC3339), notBefore.UTC().Format(time.RFC3339))
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	serial.SetBit(serial, 127, 1) // always 16 bytes, never zero
	usage := x509.KeyUsageDigitalSignature
	if _, ok := key.Public().(*rsa.PublicKey); ok {
		usage |= x509.KeyUsageKeyEncipherment
	}
	ski, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               req.Subject.name(),
		DNSNames:              req.DNSNames,
		IPAddresses:           req.IPAddresses,
		NotBefore:             notBefore.UTC().Truncate(time.Second),
		NotAfter:              notAfter.UTC().Truncate(time.Second),
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		SubjectKeyId:          ski,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, newErr(ErrInvalidInput, "", err, "signing certificate")
	}
	return x509.ParseCertificate(der)
}

// subjectKeyID is RFC 5280 4.2.1.2 method (1): SHA-1 of the public key bits.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, newErr(ErrInvalidInput, "", err, "public key")
	}
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, err
	}
	sum := sha1.Sum(spki.PublicKey.Bytes)
	return sum[:], nil
}

// CreateCSR makes a PKCS#10 certificate signing request for key, PEM-encoded
// ("CERTIFICATE REQUEST"), with req's subject and SANs. NotBefore and
// NotAfter are ignored: the CA decides.
func CreateCSR(key crypto.Signer, req CertificateRequest) ([]byte, error) {
	if key == nil {
		return nil, newErr(ErrInvalidInput, "", nil, "no private key")
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:     req.Subject.name(),
		DNSNames:    req.DNSNames,
		IPAddresses: req.IPAddresses,
	}, key)
	if err != nil {
		return nil, newErr(ErrInvalidInput, "", err, "creating CSR")
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// IsSelfSigned reports whether c is issued by itself: issuer and subject
// are the same name and c's own key verifies its signature (with an
// algorithm Go considers secure). keytool -genkeypair makes such
// certificates; a CA reply is never one.
func IsSelfSigned(c *x509.Certificate) bool {
	if !bytes.Equal(c.RawIssuer, c.RawSubject) {
		return false
	}
	return c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// ValidityDays is a certificate's validity period in whole days (at least
// one), as keytool's -validity counts it.
func ValidityDays(c *x509.Certificate) int64 {
	d := int64(math.Round(c.NotAfter.Sub(c.NotBefore).Hours() / 24))
	return max(d, 1)
}

// Fingerprint is the SHA-256 fingerprint of cert as keytool -list prints it:
// upper-case hex byte pairs joined by ':'.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	const hexdigits = "0123456789ABCDEF"
	b := make([]byte, 0, len(sum)*3-1)
	for i, c := range sum {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hexdigits[c>>4], hexdigits[c&0xf])
	}
	return string(b)
}
