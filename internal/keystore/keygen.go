package keystore

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
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
	"slices"
	"strings"
	"time"
)

// Key algorithms and elliptic curves, named as the provider's key block
// names them. keytool's own words are synonyms (see CanonicalAlgorithm and
// CanonicalCurve).
const (
	RSA     = "RSA"
	ECDSA   = "ECDSA"
	Ed25519 = "Ed25519"

	P256 = "P256"
	P384 = "P384"
	P521 = "P521"
)

// KeyAlgorithms, Curves and RSASizes list what GenerateKey makes, in
// documentation order.
var (
	KeyAlgorithms = []string{RSA, ECDSA, Ed25519}
	Curves        = []string{P256, P384, P521}
	RSASizes      = []int{2048, 3072, 4096}
)

// CanonicalAlgorithm names a key algorithm as KeyAlgorithms does. It
// accepts any case and keytool's -keyalg words: "EC" for ECDSA, "EdDSA"
// for Ed25519.
func CanonicalAlgorithm(s string) (string, error) {
	switch strings.ToUpper(s) {
	case "RSA":
		return RSA, nil
	case "ECDSA", "EC":
		return ECDSA, nil
	case "ED25519", "EDDSA":
		return Ed25519, nil
	}
	return "", newErr(ErrInvalidInput, "", nil, "key algorithm %q: want RSA, ECDSA (EC) or Ed25519 (EdDSA)", s)
}

// CanonicalCurve names an elliptic curve as Curves does. It accepts any
// case, NIST's names ("P-256") and keytool's -groupname words
// ("secp256r1", "prime256v1").
func CanonicalCurve(s string) (string, error) {
	switch strings.ToUpper(strings.ReplaceAll(s, "-", "")) {
	case "P256", "SECP256R1", "PRIME256V1":
		return P256, nil
	case "P384", "SECP384R1":
		return P384, nil
	case "P521", "SECP521R1":
		return P521, nil
	}
	return "", newErr(ErrInvalidInput, "", nil, "ECDSA curve %q: want P256, P384 or P521 (secp256r1, secp384r1, secp521r1)", s)
}

// KeySpec says which key to generate.
type KeySpec struct {
	// Algorithm is RSA (also ""), ECDSA or Ed25519, as CanonicalAlgorithm
	// reads it.
	Algorithm  string
	RSABits    int    // 2048, 3072 or 4096; 0 means 2048
	ECDSACurve string // as CanonicalCurve reads it; "" means P256
}

// SpecOf describes a public key as the KeySpec that generates its kind;
// false for a key of another kind (DSA, an unusual curve or RSA size).
func SpecOf(pub crypto.PublicKey) (KeySpec, bool) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return KeySpec{Algorithm: RSA, RSABits: k.N.BitLen()}, slices.Contains(RSASizes, k.N.BitLen())
	case *ecdsa.PublicKey:
		curve, err := CanonicalCurve(k.Curve.Params().Name)
		return KeySpec{Algorithm: ECDSA, ECDSACurve: curve}, err == nil
	case ed25519.PublicKey:
		return KeySpec{Algorithm: Ed25519}, true
	}
	return KeySpec{}, false
}

// GenerateKey generates a private key as spec says.
func GenerateKey(spec KeySpec) (crypto.Signer, error) {
	alg := RSA
	if spec.Algorithm != "" {
		var err error
		if alg, err = CanonicalAlgorithm(spec.Algorithm); err != nil {
			return nil, err
		}
	}
	switch alg {
	case ECDSA:
		curve, err := parseCurve(spec.ECDSACurve)
		if err != nil {
			return nil, err
		}
		return ecdsa.GenerateKey(curve, rand.Reader)
	case Ed25519:
		_, key, err := ed25519.GenerateKey(rand.Reader)
		return key, err
	}
	bits := spec.RSABits
	if bits == 0 {
		bits = 2048
	}
	if !slices.Contains(RSASizes, bits) {
		return nil, newErr(ErrInvalidInput, "", nil, "RSA key size %d: want 2048, 3072 or 4096", bits)
	}
	return rsa.GenerateKey(rand.Reader, bits)
}

func parseCurve(name string) (elliptic.Curve, error) {
	if name == "" {
		return elliptic.P256(), nil
	}
	c, err := CanonicalCurve(name)
	if err != nil {
		return nil, err
	}
	return map[string]elliptic.Curve{P256: elliptic.P256(), P384: elliptic.P384(), P521: elliptic.P521()}[c], nil
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
	// NotBefore and NotAfter bound the validity (Issue only). A zero
	// NotBefore means now; a zero NotAfter means NotBefore plus 90 days,
	// keytool's default.
	NotBefore, NotAfter time.Time
	// IsCA makes a CA certificate: basic constraints CA:TRUE, as keytool's
	// -ext bc:c (Issue only).
	IsCA bool
	// KeyUsage is the key usage extension (Issue only); zero means the
	// default: keyCertSign, cRLSign and digitalSignature for a CA,
	// digitalSignature (and keyEncipherment for an RSA key) otherwise.
	KeyUsage x509.KeyUsage
	// ExtKeyUsage is the extended key usage extension (Issue only); nil
	// means the default, serverAuth, and none for a CA; an empty slice
	// means none.
	ExtKeyUsage []x509.ExtKeyUsage
}

// SelfSign issues a self-signed certificate for key: Issue with key as
// its own issuer.
func SelfSign(key crypto.Signer, req CertificateRequest) (*x509.Certificate, error) {
	if key == nil {
		return nil, newErr(ErrInvalidInput, "", nil, "no private key")
	}
	return Issue(key.Public(), req, key, nil)
}

// Issue issues an X.509 v3 certificate for the public key pub, signed by
// signer with the certificate parent, or self-signed when parent is nil
// (signer must then be pub's key): random 128-bit serial, subject key
// identifier, the key usages of req (see CertificateRequest), and the
// authority key identifier of parent. parent must be a CA certificate
// allowed to sign certificates, or the result would verify nowhere.
func Issue(pub crypto.PublicKey, req CertificateRequest, signer crypto.Signer, parent *x509.Certificate) (*x509.Certificate, error) {
	if signer == nil || pub == nil {
		return nil, newErr(ErrInvalidInput, "", nil, "no private key")
	}
	if parent != nil {
		if !parent.BasicConstraintsValid || !parent.IsCA {
			return nil, newErr(ErrInvalidInput, "", nil, "the issuer %q is not a CA certificate (no basic constraints CA:TRUE): make it with keytool -ext bc:c, openssl's basicConstraints=CA:TRUE or is_ca_certificate", parent.Subject)
		}
		if parent.KeyUsage != 0 && parent.KeyUsage&x509.KeyUsageCertSign == 0 {
			return nil, newErr(ErrInvalidInput, "", nil, "the issuer %q may not sign certificates (its key usage lacks keyCertSign)", parent.Subject)
		}
		if !publicKeysEqual(signer.Public(), parent.PublicKey) {
			return nil, newErr(ErrKeyMismatch, "", nil, "the issuer's private key does not match its certificate %q", parent.Subject)
		}
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
	ski, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	usage, extUsage := req.KeyUsage, req.ExtKeyUsage
	if usage == 0 {
		usage = x509.KeyUsageDigitalSignature
		if req.IsCA {
			usage |= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		} else if _, ok := pub.(*rsa.PublicKey); ok {
			usage |= x509.KeyUsageKeyEncipherment
		}
	}
	if extUsage == nil && !req.IsCA {
		extUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               req.Subject.name(),
		DNSNames:              req.DNSNames,
		IPAddresses:           req.IPAddresses,
		NotBefore:             notBefore.UTC().Truncate(time.Second),
		NotAfter:              notAfter.UTC().Truncate(time.Second),
		KeyUsage:              usage,
		ExtKeyUsage:           extUsage,
		BasicConstraintsValid: true,
		IsCA:                  req.IsCA,
		SubjectKeyId:          ski,
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
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
