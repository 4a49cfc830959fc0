package dnstest

import (
	"slices"
	"testing"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/miekg/dns"
)

// TestUnboundValidates checks the test zones through a real validating
// resolver: signed data comes back with AD, bogus data as SERVFAIL,
// unsigned data without AD, and negative answers in the signed zone
// validate (NSEC).
func TestUnboundValidates(t *testing.T) {
	s := Start(t,
		Zone{Origin: "test.", Signed: true, Bogus: []string{"bogus.test."}, Records: []string{
			"mx.test. 60 IN A 127.0.0.1",
			"bogus.test. 60 IN A 127.0.0.2",
			"_25._tcp.mx.test. 60 IN TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		}},
		Zone{Origin: "example.", Records: []string{"mx.example. 60 IN A 127.0.0.3"}},
	)
	resolver := StartUnbound(t, s)
	c := &dns.Client{Timeout: testutil.HangGuard}
	for _, tc := range []struct {
		name  string
		qtype uint16
		rcode int
		ad    bool
	}{
		{"mx.test.", dns.TypeA, dns.RcodeSuccess, true},
		{"_25._tcp.mx.test.", dns.TypeTLSA, dns.RcodeSuccess, true},
		{"mx.test.", dns.TypeAAAA, dns.RcodeSuccess, true},           // NODATA, proven
		{"_mta-sts.mx.test.", dns.TypeTXT, dns.RcodeNameError, true}, // NXDOMAIN, proven
		{"bogus.test.", dns.TypeA, dns.RcodeServerFailure, false},
		{"mx.example.", dns.TypeA, dns.RcodeSuccess, false},
	} {
		m := new(dns.Msg)
		m.SetQuestion(tc.name, tc.qtype)
		m.SetEdns0(1232, true)
		m.AuthenticatedData = true
		r, _, err := c.Exchange(m, resolver)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.name, dns.TypeToString[tc.qtype], err)
		}
		if r.Rcode != tc.rcode || r.AuthenticatedData != tc.ad {
			t.Errorf("%s %s: rcode %s ad %v, want %s ad %v", tc.name, dns.TypeToString[tc.qtype],
				dns.RcodeToString[r.Rcode], r.AuthenticatedData, dns.RcodeToString[tc.rcode], tc.ad)
		}
	}
}

// TestBogusSignaturesGoOnTheWire checks what a Bogus name serves: an
// RRSIG that packs into a message (a signature spoilt into text that is
// not base64 cannot be sent, so the server answered nothing and Unbound
// timed out instead of finding bogus data) and does not verify. Each build
// signs with a new key, so many builds try many signatures.
func TestBogusSignaturesGoOnTheWire(t *testing.T) {
	for i := range 200 {
		z, err := build(Zone{Origin: "test.", Signed: true, Bogus: []string{"bogus.test."},
			Records: []string{"bogus.test. 60 IN A 127.0.0.2"}})
		if err != nil {
			t.Fatal(err)
		}
		sig := z.sigs["bogus.test."][dns.TypeA]
		m := new(dns.Msg)
		m.SetQuestion("bogus.test.", dns.TypeA)
		m.Answer = append(slices.Clone(z.rrs["bogus.test."][dns.TypeA]), sig)
		if _, err := m.Pack(); err != nil {
			t.Fatalf("build %d: the bogus answer cannot be sent (signature %q): %v", i, sig.Signature, err)
		}
		if err := sig.Verify(z.key, z.rrs["bogus.test."][dns.TypeA]); err == nil {
			t.Fatalf("build %d: the bogus signature verifies", i)
		}
	}
}
