package keystore

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
)

// ParseCertificatesPEM parses every CERTIFICATE block in data (other blocks
// are skipped). Raw DER of one certificate is accepted too. It is an error if
// there is no certificate.
func ParseCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" && b.Type != "X509 CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, newErr(ErrInvalidInput, "", err, "certificate %d in PEM", len(out)+1)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		if len(bytes.TrimSpace(data)) > 0 && data[0] == 0x30 {
			c, err := x509.ParseCertificate(data)
			if err != nil {
				return nil, newErr(ErrInvalidInput, "", err, "DER certificate")
			}
			return []*x509.Certificate{c}, nil
		}
		return nil, newErr(ErrInvalidInput, "", nil, "no CERTIFICATE block found")
	}
	return out, nil
}

// EncodeCertificatesPEM PEM-encodes certs, in order.
func EncodeCertificatesPEM(certs []*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// ParsePrivateKeyPEM parses the first private key in data: PKCS#8
// ("PRIVATE KEY", what openssl genpkey and hashicorp/tls write), PKCS#1
// ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY"). Encrypted keys are
// refused: decrypt them first (openssl pkey).
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, newErr(ErrInvalidInput, "", nil, "no PRIVATE KEY block found")
		}
		var key any
		var err error
		switch b.Type {
		case "RSA PRIVATE KEY", "EC PRIVATE KEY":
			if _, encrypted := b.Headers["Proc-Type"]; encrypted {
				return nil, newErr(ErrUnsupported, "", nil, "the private key is encrypted: decrypt it first (openssl pkey -in key.pem -out plain.pem)")
			}
		}
		switch b.Type {
		case "PRIVATE KEY":
			return parsePKCS8(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, newErr(ErrUnsupported, "", nil, "the private key is encrypted: decrypt it first (openssl pkey -in key.pem -out plain.pem)")
		default:
			continue
		}
		if err != nil {
			return nil, newErr(ErrInvalidInput, "", err, "%s", b.Type)
		}
		return key.(crypto.Signer), nil
	}
}
