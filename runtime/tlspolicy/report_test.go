package tlspolicy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/mailstack/terraform-provider-mailstack/runtime/dnsclient"
	"github.com/mailstack/terraform-provider-mailstack/runtime/tlsrpt"
)

// RFC 8460 section 4.3: a policy error names its result type; a failed
// certificate verification is classified by the x509 error it carries,
// also inside crypto/tls's CertificateVerificationError.
func TestResultOf(t *testing.T) {
	p := &Policy{Level: Verify, Source: "MTA-STS (enforce) for example.org"}
	wrapped := func(err error) error { return &tls.CertificateVerificationError{Err: err} }
	for _, tc := range []struct {
		name string
		err  error
		want tlsrpt.ResultType
	}{
		{"no STARTTLS", p.NoTLS("mx did not offer STARTTLS"), tlsrpt.StartTLSNotSupported},
		{"host mismatch", p.Violation("handshake: %v", wrapped(x509.HostnameError{Host: "mx"})), tlsrpt.CertificateHostMismatch},
		{"expired", p.Violation("handshake: %v", wrapped(x509.CertificateInvalidError{Reason: x509.Expired})), tlsrpt.CertificateExpired},
		{"unknown CA", p.Violation("handshake: %v", wrapped(x509.UnknownAuthorityError{})), tlsrpt.CertificateNotTrusted},
		{"not a CA", p.Violation("%v", x509.CertificateInvalidError{Reason: x509.NotAuthorizedToSign}), tlsrpt.CertificateNotTrusted},
		{"other handshake failure", p.Violation("handshake: %v", errors.New("tls: protocol version not supported")), tlsrpt.ValidationFailure},
		{"no error argument", p.Violation("the server sent no certificate"), tlsrpt.ValidationFailure},
		{"pin", (&Policy{Level: Pin, Source: "pin"}).verifyPin(tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Raw: []byte("x")}}}), tlsrpt.CertificateNotTrusted},
		{"wrapped policy error", fmt.Errorf("mx: %w", p.NoTLS("no TLS")), tlsrpt.StartTLSNotSupported},
		{"not a policy error", errors.New("connection refused"), tlsrpt.ValidationFailure},
	} {
		if got := ResultOf(tc.err); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// RFC 8460 section 4.4: the policy a session is reported under.
func TestReportPolicy(t *testing.T) {
	sts := &STSPolicy{Mode: ModeTesting, MX: []string{"mx.example.org", "*.example.net"}, MaxAge: 86400}
	stsPolicy := &Policy{Level: Verify, Source: "MTA-STS", STS: sts}
	for _, tc := range []struct {
		name    string
		p       *Policy
		typ     tlsrpt.PolicyType
		strings []string
		mx      []string
	}{
		{"DANE", &Policy{Level: DANE, TLSA: []dnsclient.TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: []byte{0xab, 0xcd}}}},
			tlsrpt.PolicyTLSA, []string{"3 1 1 abcd"}, []string{"mx.example.org"}},
		{"MTA-STS", stsPolicy, tlsrpt.PolicySTS,
			[]string{"version: STSv1", "mode: testing", "mx: mx.example.org", "mx: *.example.net", "max_age: 86400"}, sts.MX},
		{"MTA-STS testing, reported", &Policy{Level: Opportunistic, Report: stsPolicy}, tlsrpt.PolicySTS, nil, sts.MX},
		{"opportunistic", &Policy{Level: Opportunistic}, tlsrpt.PolicyNotFound, nil, nil},
		{"an operator's pin", &Policy{Level: Pin}, tlsrpt.PolicyNotFound, nil, nil},
	} {
		got := tc.p.ReportPolicy("example.org", "mx.example.org")
		if got.Type != tc.typ || got.Domain != "example.org" || !slices.Equal(got.MXHosts, tc.mx) ||
			tc.strings != nil && !slices.Equal(got.Strings, tc.strings) {
			t.Errorf("%s: %+v", tc.name, got)
		}
	}
}
