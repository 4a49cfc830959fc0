package config

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Outbound defaults: Postfix's backoff (minimal_backoff_time 300s growing
// to hours), RFC 5321 section 4.5.4.1's give-up time of four to five days,
// and the delay warning RFC 3461 users expect after a few hours.
const (
	DefaultRetryMin     = 5 * time.Minute
	DefaultRetryMax     = 4 * time.Hour
	DefaultGiveUpAfter  = 5 * 24 * time.Hour
	DefaultDelayWarning = 4 * time.Hour
)

// DKIM key algorithms.
const (
	DKIMRSA     = "RSA"
	DKIMEd25519 = "Ed25519"
)

// DKIMAlgorithms lists the accepted DKIM key algorithms.
var DKIMAlgorithms = []string{DKIMRSA, DKIMEd25519}

// Relay sends all mail for other domains through one smarthost instead of
// looking up the recipients' MX records.
type Relay struct {
	// Address is the smarthost's host:port.
	Address string `json:"address"`
	// Mode is TLSStartTLS (the default when empty), TLSImplicit or TLSNone.
	// The relay's certificate is verified against the host's CAs and
	// CACertificatesPEM unless a TLS policy for its host name says otherwise.
	Mode string `json:"mode,omitempty"`
	// Username and Password log in with AUTH PLAIN, only over TLS.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// TLSPolicy is an operator's TLS requirement for one destination: a
// recipient domain, or the relay's host name. It only ever tightens what
// DANE and MTA-STS ask for.
type TLSPolicy struct {
	// Domain is the recipient domain (or relay host) the policy is for.
	Domain string `json:"domain"`
	// RequireTLS refuses to deliver without STARTTLS.
	RequireTLS bool `json:"require_tls,omitempty"`
	// VerifyCertificate requires a certificate valid for the MX host name
	// (or the relay's), from a trusted CA; implies RequireTLS.
	VerifyCertificate bool `json:"verify_certificate,omitempty"`
	// FingerprintsSHA256 pins the peer's leaf certificate: one of these
	// SHA-256 fingerprints (hex, with or without colons) must match, and
	// the CA and name are then not checked; implies RequireTLS.
	FingerprintsSHA256 []string `json:"fingerprints_sha256,omitempty"`
}

// Queue is the outbound queue's retry schedule. Durations are Go duration
// strings ("5m", "4h"); empty means the default.
type Queue struct {
	// RetryMin is the wait after the first failed attempt (DefaultRetryMin);
	// each further failure doubles it, up to RetryMax (DefaultRetryMax).
	RetryMin string `json:"retry_min,omitempty"`
	RetryMax string `json:"retry_max,omitempty"`
	// GiveUpAfter is how long a message may stay queued before it is
	// returned to its sender (DefaultGiveUpAfter).
	GiveUpAfter string `json:"give_up_after,omitempty"`
	// DelayWarning is the age at which the sender is told once that the
	// message is still queued (DefaultDelayWarning); "0s" turns it off.
	DelayWarning string `json:"delay_warning,omitempty"`
}

// DKIMKey is a DKIM signing key of the server. The key itself lives in the
// state directory (the runtime makes it); this is what it is for.
type DKIMKey struct {
	// Domain is the signing domain (d=); mail whose From is in it is signed.
	Domain string `json:"domain"`
	// Selector is the s= tag; the public key is published at
	// <selector>._domainkey.<domain>.
	Selector string `json:"selector"`
	// Algorithm is one of DKIMAlgorithms.
	Algorithm string `json:"algorithm"`
}

// Name is the DNS name a key's public part is published at, and the id
// the control API knows the key by.
func (k DKIMKey) Name() string {
	return strings.ToLower(k.Selector + "._domainkey." + k.Domain)
}

// Validate checks a DKIM key's settings.
func (k DKIMKey) Validate() error {
	var errs []error
	if !validHostname(k.Domain) {
		errs = append(errs, fmt.Errorf("dkim: domain %q is not a domain name", k.Domain))
	}
	if k.Selector == "" || !validHostname(k.Selector) {
		errs = append(errs, fmt.Errorf("dkim: selector %q must be one or more DNS labels", k.Selector))
	}
	if !slices.Contains(DKIMAlgorithms, k.Algorithm) {
		errs = append(errs, fmt.Errorf("dkim: algorithm %q is not one of %s", k.Algorithm, strings.Join(DKIMAlgorithms, ", ")))
	}
	return errors.Join(errs...)
}

// validateOutbound checks the server's outbound settings.
func (s *Server) validateOutbound() error {
	var errs []error
	if r := s.Relay; r != nil {
		if _, port, err := net.SplitHostPort(r.Address); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("server: relay.address %q must be host:port", r.Address))
		} else if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("server: relay.address %q: port must be 1..65535", r.Address))
		}
		if r.Mode != "" && !slices.Contains(TLSModes, r.Mode) {
			errs = append(errs, fmt.Errorf("server: relay.mode %q is not one of %s", r.Mode, strings.Join(TLSModes, ", ")))
		}
		if r.Mode == TLSNone && (r.Username != "" || r.Password != "") {
			errs = append(errs, errors.New(`server: relay.mode "none" cannot carry a username and password: they would cross the network in clear`))
		}
		if (r.Username == "") != (r.Password == "") {
			errs = append(errs, errors.New("server: relay.username and relay.password go together"))
		}
	}
	seen := map[string]bool{}
	for _, p := range s.TLSPolicies {
		d := strings.ToLower(p.Domain)
		switch {
		case d == "" || strings.ContainsAny(d, " \t\r\n@"):
			errs = append(errs, fmt.Errorf("server: tls_policy domain %q is not a domain name", p.Domain))
		case seen[d]:
			errs = append(errs, fmt.Errorf("server: tls_policy for %q is given twice", p.Domain))
		}
		seen[d] = true
		for _, fp := range p.FingerprintsSHA256 {
			if _, err := ParseFingerprint(fp); err != nil {
				errs = append(errs, fmt.Errorf("server: tls_policy %q: %w", p.Domain, err))
			}
		}
	}
	for _, r := range s.DNSResolvers {
		if _, err := ResolverAddr(r); err != nil {
			errs = append(errs, fmt.Errorf("server: dns_resolvers: %w", err))
		}
	}
	if s.CACertificatesPEM != "" {
		if _, err := ParseCertificates(s.CACertificatesPEM); err != nil {
			errs = append(errs, fmt.Errorf("server: ca_certificates_pem: %w", err))
		}
	}
	for _, f := range []struct{ name, v string }{
		{"retry_min", s.Queue.RetryMin}, {"retry_max", s.Queue.RetryMax},
		{"give_up_after", s.Queue.GiveUpAfter}, {"delay_warning", s.Queue.DelayWarning},
	} {
		if f.v == "" {
			continue
		}
		if d, err := time.ParseDuration(f.v); err != nil || d < 0 || d == 0 && f.name != "delay_warning" {
			errs = append(errs, fmt.Errorf("server: queue.%s %q is not a positive duration such as \"5m\" or \"4h\"", f.name, f.v))
		}
	}
	if s.Queue.RetryMin != "" && s.Queue.RetryMax != "" && s.Queue.Retry().Min > s.Queue.Retry().Max {
		errs = append(errs, fmt.Errorf("server: queue.retry_min %s is longer than queue.retry_max %s", s.Queue.RetryMin, s.Queue.RetryMax))
	}
	return errors.Join(errs...)
}

// RetrySchedule is the queue's schedule with the defaults applied.
type RetrySchedule struct {
	Min, Max, GiveUpAfter, DelayWarning time.Duration
}

// Retry returns the schedule in force. Call it on validated settings.
func (q Queue) Retry() RetrySchedule {
	d := func(s string, def time.Duration) time.Duration {
		if v, err := time.ParseDuration(s); err == nil && s != "" {
			return v
		}
		return def
	}
	return RetrySchedule{
		Min:          d(q.RetryMin, DefaultRetryMin),
		Max:          d(q.RetryMax, DefaultRetryMax),
		GiveUpAfter:  d(q.GiveUpAfter, DefaultGiveUpAfter),
		DelayWarning: d(q.DelayWarning, DefaultDelayWarning),
	}
}

// ParseFingerprint decodes a SHA-256 fingerprint in hex, with or without
// colons (keytool's notation): "AB:CD:..." or "abcd...".
func ParseFingerprint(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.ReplaceAll(s, ":", ""))
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("fingerprint %q is not a SHA-256 fingerprint in hex", s)
	}
	return b, nil
}

// ResolverAddr returns a DNS resolver's host:port, adding port 53 to a
// bare IP address.
func ResolverAddr(s string) (string, error) {
	if ip := net.ParseIP(strings.Trim(s, "[]")); ip != nil {
		return net.JoinHostPort(ip.String(), "53"), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || net.ParseIP(host) == nil {
		return "", fmt.Errorf("%q is not an IP address or IP:port", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("%q: port must be 1..65535", s)
	}
	return s, nil
}

// ParseCertificates decodes every CERTIFICATE block of a PEM bundle; a
// bundle without one is an error.
func ParseCertificates(bundle string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := []byte(bundle)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	return certs, nil
}

// validHostname accepts dot-separated labels of letters, digits, '-' and
// '_' (DKIM selectors and service names use it).
func validHostname(d string) bool {
	d = strings.TrimSuffix(d, ".")
	if d == "" || len(d) > 253 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return false
			}
		}
	}
	return true
}
