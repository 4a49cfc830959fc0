// Package tlspolicy decides how much TLS outbound delivery demands of each
// destination, and checks that a peer meets it. It owns the three sources
// of such demands and how they combine:
//
//   - DANE for SMTP (RFC 7672): TLSA records of the MX host, trusted only
//     when the resolver validated them (see runtime/dnsclient) and the MX
//     lookup itself was validated; DANE-EE(3) and DANE-TA(2) are used,
//     PKIX usages are "unusable" and leave TLS mandatory but unauthenticated.
//   - MTA-STS (RFC 8461): the _mta-sts TXT record and the policy fetched
//     over HTTPS (certificate verified, no redirects), cached in memory and
//     in the state directory until max_age; "enforce" requires a verified
//     certificate from an MX host the policy lists, "testing" only reports.
//   - The operator's tls_policy blocks (config.TLSPolicy), which can only
//     tighten: require TLS, require a verified certificate, or pin the
//     leaf's SHA-256 fingerprint (which then replaces every other check).
//
// With none of these, delivery is opportunistic: STARTTLS when offered,
// without verification, plain text otherwise. A Policy that requires TLS is
// never downgraded: a peer that does not offer STARTTLS, fails the
// handshake or shows a certificate the policy does not accept is an error,
// and the message stays queued. Sessions (sessions.go) keeps TLS sessions
// for resumption, each offered only under the policy that made it.
package tlspolicy

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/mailstack/terraform-provider-mailstack/runtime/dnsclient"
	"github.com/mailstack/terraform-provider-mailstack/runtime/tlsrpt"
)

// Level is how much TLS a policy demands, weakest first.
type Level int

const (
	// Opportunistic: STARTTLS when offered, any certificate; plain text
	// when not offered or when the handshake fails.
	Opportunistic Level = iota
	// Encrypt: TLS required, the certificate is not checked.
	Encrypt
	// Verify: TLS required with a certificate from a trusted CA that is
	// valid for the peer's host name.
	Verify
	// DANE: TLS required with a certificate the TLSA records match.
	DANE
	// Pin: TLS required with a leaf certificate whose SHA-256 fingerprint
	// is one of the pinned ones.
	Pin
)

func (l Level) String() string {
	return [...]string{"opportunistic", "encrypt", "verify", "dane", "pin"}[l]
}

// Policy is what one connection to one host must meet.
type Policy struct {
	Level Level
	// Source names where the demand comes from, for errors and logs:
	// "opportunistic", "tls_policy for example.org", "MTA-STS (enforce)
	// for example.org", "DANE (TLSA _25._tcp.mx.example.org)".
	Source string
	// TLSA are the usable DANE records (Level DANE).
	TLSA []dnsclient.TLSA
	// Pins are SHA-256 fingerprints of acceptable leaf certificates
	// (Level Pin).
	Pins [][]byte
	// Report holds the policy that a connection is checked against only
	// for reporting (MTA-STS testing mode); nil when there is none.
	Report *Policy
	// STS is the MTA-STS policy this one comes from, for TLS reports; nil
	// when it comes from none.
	STS *STSPolicy
	// STSFailure is why the domain's published MTA-STS policy could not be
	// applied (fetch, certificate or syntax), for TLS reports; delivery
	// goes on without it (RFC 8461 section 5).
	STSFailure *Error
}

// RequiresTLS reports whether delivery must not happen without TLS.
func (p *Policy) RequiresTLS() bool { return p.Level > Opportunistic }

// Error is a peer that does not meet a policy that requires TLS.
type Error struct {
	Policy string // the policy's Source
	Reason string
	// Result is what kind of failure it is, for TLS reports.
	Result tlsrpt.ResultType
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Policy, e.Reason) }

// Violation returns an *Error for p with reason. Its Result is that of
// the first error among args that tells (a certificate that failed
// verification), else validation-failure.
func (p *Policy) Violation(format string, args ...any) error {
	return p.violation(resultOfArgs(args), format, args...)
}

// NoTLS returns the *Error of a peer that offers no TLS under p:
// starttls-not-supported.
func (p *Policy) NoTLS(format string, args ...any) error {
	return p.violation(tlsrpt.StartTLSNotSupported, format, args...)
}

func (p *Policy) violation(result tlsrpt.ResultType, format string, args ...any) error {
	return &Error{Policy: "TLS required by " + p.Source, Reason: fmt.Sprintf(format, args...), Result: result}
}

// TLSConfig returns the client configuration for a connection to host
// under p. roots are the CAs trusted for Verify (and DANE-TA chains need
// none: the TLSA record is the anchor).
func (p *Policy) TLSConfig(host string, roots *x509.CertPool) *tls.Config {
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	switch p.Level {
	case Verify:
		cfg.RootCAs = roots
	case DANE:
		cfg.InsecureSkipVerify = true // checked against the TLSA records below
		cfg.VerifyConnection = func(cs tls.ConnectionState) error { return p.verifyDANE(host, cs) }
	case Pin:
		cfg.InsecureSkipVerify = true // checked against the pins below
		cfg.VerifyConnection = func(cs tls.ConnectionState) error { return p.verifyPin(cs) }
	default:
		// Opportunistic and Encrypt: any certificate (RFC 7435); TLS 1.0
		// and 1.1 are still better than plain text there.
		cfg.InsecureSkipVerify = true
		cfg.MinVersion = tls.VersionTLS10
	}
	return cfg
}

func (p *Policy) verifyPin(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return p.Violation("the server sent no certificate")
	}
	sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
	for _, pin := range p.Pins {
		if bytes.Equal(pin, sum[:]) {
			return nil
		}
	}
	return p.violation(tlsrpt.CertificateNotTrusted, "certificate %s matches none of the pinned fingerprints", fingerprint(sum[:]))
}

// verifyDANE implements RFC 7672 section 3: DANE-EE(3) matches the leaf
// and needs no name or date check; DANE-TA(2) matches a certificate the
// server sent (or its key) and the leaf must chain to it and be valid for
// host.
func (p *Policy) verifyDANE(host string, cs tls.ConnectionState) error {
	certs := cs.PeerCertificates
	if len(certs) == 0 {
		return p.Violation("the server sent no certificate")
	}
	for _, r := range p.TLSA {
		if r.Usage == 3 && matches(r, certs[0]) {
			return nil
		}
	}
	for _, r := range p.TLSA {
		if r.Usage != 2 {
			continue
		}
		for i, c := range certs {
			if i == 0 || !matches(r, c) {
				continue // a TA record matching the leaf is not DANE-TA
			}
			anchor := x509.NewCertPool()
			anchor.AddCert(c)
			inter := x509.NewCertPool()
			for _, ic := range certs[1:i] {
				inter.AddCert(ic)
			}
			if _, err := certs[0].Verify(x509.VerifyOptions{DNSName: host, Roots: anchor, Intermediates: inter}); err == nil {
				return nil
			}
		}
	}
	sum := sha256.Sum256(certs[0].Raw)
	return p.violation(tlsrpt.TLSAInvalid, "certificate %s (subject %q) matches none of the TLSA records", fingerprint(sum[:]), certs[0].Subject.CommonName)
}

// matches reports whether TLSA record r matches certificate c (RFC 6698
// section 2.1: selector 0 full certificate, 1 SubjectPublicKeyInfo;
// matching type 0 exact, 1 SHA-256, 2 SHA-512).
func matches(r dnsclient.TLSA, c *x509.Certificate) bool {
	var data []byte
	switch r.Selector {
	case 0:
		data = c.Raw
	case 1:
		data = c.RawSubjectPublicKeyInfo
	default:
		return false
	}
	switch r.MatchingType {
	case 0:
		return bytes.Equal(r.Data, data)
	case 1:
		sum := sha256.Sum256(data)
		return bytes.Equal(r.Data, sum[:])
	case 2:
		sum := sha512Sum(data)
		return bytes.Equal(r.Data, sum)
	}
	return false
}

// Usable reports whether a TLSA record can be used for SMTP (RFC 7672
// section 3.1.3: only DANE-TA(2) and DANE-EE(3), known selectors and
// matching types).
func Usable(r dnsclient.TLSA) bool {
	return (r.Usage == 2 || r.Usage == 3) && r.Selector <= 1 && r.MatchingType <= 2
}

// Check verifies a finished handshake against p when p only reports
// (Report policies): Verify and Pin levels are checked the way TLSConfig
// would have. It returns nil when the connection meets it.
func (p *Policy) Check(host string, roots *x509.CertPool, cs tls.ConnectionState) error {
	switch p.Level {
	case Verify:
		if len(cs.PeerCertificates) == 0 {
			return p.Violation("the server sent no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		if _, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: host, Roots: roots, Intermediates: inter}); err != nil {
			return p.Violation("%v", err)
		}
	case DANE:
		return p.verifyDANE(host, cs)
	case Pin:
		return p.verifyPin(cs)
	}
	return nil
}

// fingerprint formats a digest in keytool's notation.
func fingerprint(sum []byte) string {
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// IsPolicyError reports whether err is a peer failing a policy.
func IsPolicyError(err error) bool {
	var pe *Error
	return errors.As(err, &pe)
}

func sha512Sum(b []byte) []byte {
	s := sha512.Sum512(b)
	return s[:]
}
