package keystore

import (
	"bytes"
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
