package keystore

import (
	"bytes"
	"crypto/x509"
	"errors"
	"slices"
	"time"
)

// maxChain bounds chain building against loops and absurd inputs.
const maxChain = 10

// buildChain returns leaf followed by its issuers found in pool by name,
// preferring one whose signature verifies, until a self-signed certificate or
// one whose issuer is not in pool.
func buildChain(leaf *x509.Certificate, pool []*x509.Certificate) []*x509.Certificate {
	chain := []*x509.Certificate{leaf}
	for cur := leaf; len(chain) < maxChain && !selfSigned(cur); {
		next := findIssuer(cur, pool, chain)
		if next == nil {
			break
		}
		chain = append(chain, next)
		cur = next
	}
	return chain
}

func findIssuer(c *x509.Certificate, pool, exclude []*x509.Certificate) *x509.Certificate {
	var byName *x509.Certificate
	for _, p := range pool {
		if !bytes.Equal(p.RawSubject, c.RawIssuer) || slices.ContainsFunc(exclude, p.Equal) {
			continue
		}
		if signedBy(c, p) == nil {
			return p
		}
		if byName == nil {
			byName = p
		}
	}
	return byName
}

// signedBy checks c's signature with parent's key (names and CA flags aside:
// keytool's own certificates carry no basic constraints).
func signedBy(c, parent *x509.Certificate) error {
	return parent.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature)
}

func selfSigned(c *x509.Certificate) bool {
	if !bytes.Equal(c.RawSubject, c.RawIssuer) {
		return false
	}
	err := signedBy(c, c)
	var insecure x509.InsecureAlgorithmError
	return err == nil || errors.As(err, &insecure)
}

// verifyChain checks that chain is in order (each certificate signed by the
// next), ends at a self-signed root or at a certificate signed by one of
// anchors (returned, to complete the chain), and that every certificate is
// valid at t.
func verifyChain(chain, anchors []*x509.Certificate, t time.Time) (anchor *x509.Certificate, err error) {
	for i := 0; i+1 < len(chain); i++ {
		if !bytes.Equal(chain[i].RawIssuer, chain[i+1].RawSubject) {
			return nil, newErr(ErrUntrustedChain, "", nil, "certificate %d %q is not issued by certificate %d %q",
				i, chain[i].Subject, i+1, chain[i+1].Subject)
		}
		if err := signedBy(chain[i], chain[i+1]); err != nil {
			return nil, newErr(ErrUntrustedChain, "", err, "certificate %d %q is not signed by %q", i, chain[i].Subject, chain[i+1].Subject)
		}
	}
	top := chain[len(chain)-1]
	switch {
	case slices.ContainsFunc(anchors, top.Equal):
	case selfSigned(top):
	default:
		for _, a := range anchors {
			if bytes.Equal(a.RawSubject, top.RawIssuer) && signedBy(top, a) == nil {
				anchor = a
				break
			}
		}
		if anchor == nil {
			return nil, newErr(ErrUntrustedChain, "", nil,
				"chain ends at %q, issued by %q, which is neither in the chain nor a trusted certificate (missing intermediate or root?)",
				top.Subject, top.Issuer)
		}
	}
	full := chain
	if anchor != nil {
		full = append(slices.Clip(chain), anchor)
	}
	if err := checkValidity(full, t); err != nil {
		return nil, err
	}
	return anchor, nil
}

func checkValidity(chain []*x509.Certificate, t time.Time) error {
	for _, c := range chain {
		if t.Before(c.NotBefore) {
			return newErr(ErrCertificateValidity, "", nil, "%q is not valid before %s", c.Subject, fmtTime(c.NotBefore))
		}
		if t.After(c.NotAfter) {
			return newErr(ErrCertificateValidity, "", nil, "%q expired on %s", c.Subject, fmtTime(c.NotAfter))
		}
	}
	return nil
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
