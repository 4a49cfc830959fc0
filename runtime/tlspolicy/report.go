package tlspolicy

import (
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/mailstack/terraform-provider-mailstack/runtime/tlsrpt"
)

// ReportPolicy is the policy a TLS report (runtime/tlsrpt) counts a
// connection to MX host of domain under: the DANE TLSA records when p is
// DANE, the MTA-STS policy when p is one or reports to one (testing mode)
// or when the domain's could not be fetched (STSFailure), else
// no-policy-found (opportunistic TLS, and the operator's tls_policy
// blocks, which the domain did not publish).
func (p *Policy) ReportPolicy(domain, host string) tlsrpt.Policy {
	rp := tlsrpt.Policy{Type: tlsrpt.PolicyNotFound, Domain: domain}
	sts := p.STS
	if sts == nil && p.Report != nil {
		sts = p.Report.STS
	}
	switch {
	case p.STSFailure != nil:
		rp.Type = tlsrpt.PolicySTS // the policy could not be had: no strings
	case p.Level == DANE:
		rp.Type, rp.MXHosts = tlsrpt.PolicyTLSA, []string{host}
		for _, r := range p.TLSA {
			rp.Strings = append(rp.Strings, fmt.Sprintf("%d %d %d %s", r.Usage, r.Selector, r.MatchingType, hex.EncodeToString(r.Data)))
		}
	case sts != nil:
		rp.Type, rp.MXHosts = tlsrpt.PolicySTS, sts.MX
		rp.Strings = sts.Lines()
	}
	return rp
}

// DANEReportPolicy is the policy of a connection to MX host that DANE
// could not be ruled out for (its TLSA lookup failed): tlsa, records
// unknown.
func DANEReportPolicy(domain, host string) tlsrpt.Policy {
	return tlsrpt.Policy{Type: tlsrpt.PolicyTLSA, Domain: domain, MXHosts: []string{host}}
}

// ReportPolicy is the policy of the domain's MTA-STS policy (enforce or
// testing) for a TLS report; no-policy-found without one.
func (d *Domain) ReportPolicy() tlsrpt.Policy {
	return (&Policy{STS: d.STS}).ReportPolicy(d.Name, "")
}

// Lines are the policy's lines as RFC 8460 section 4.4's policy-string
// gives them.
func (p *STSPolicy) Lines() []string {
	lines := []string{"version: STSv1", "mode: " + p.Mode}
	for _, mx := range p.MX {
		lines = append(lines, "mx: "+mx)
	}
	return append(lines, fmt.Sprintf("max_age: %d", p.MaxAge))
}

// ResultOf is the TLS report result type of a policy error;
// validation-failure for any other error.
func ResultOf(err error) tlsrpt.ResultType {
	var pe *Error
	if errors.As(err, &pe) && pe.Result != "" {
		return pe.Result
	}
	return tlsrpt.ValidationFailure
}

// resultOfArgs classifies the first error among args that is a failed
// certificate verification (RFC 8460 section 4.3.1).
func resultOfArgs(args []any) tlsrpt.ResultType {
	for _, a := range args {
		err, ok := a.(error)
		if !ok {
			continue
		}
		var host x509.HostnameError
		var invalid x509.CertificateInvalidError
		var unknown x509.UnknownAuthorityError
		switch {
		case errors.As(err, &host):
			return tlsrpt.CertificateHostMismatch
		case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
			return tlsrpt.CertificateExpired
		case errors.As(err, &unknown), errors.As(err, &invalid):
			return tlsrpt.CertificateNotTrusted
		}
	}
	return tlsrpt.ValidationFailure
}
