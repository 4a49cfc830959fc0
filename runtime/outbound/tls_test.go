package outbound

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil/dnstest"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil/smtpstrip"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/queue"
	"github.com/mailstack/terraform-provider-mailstack/runtime/tlsrpt"
)

// outcome is what a test expects of one message.
type outcome struct {
	delivered bool
	reason    string // in the recipient's last error when it stays queued
}

// check submits one message for rcpt and waits for its outcome. A message
// that must stay queued must also never have crossed the proxy (if any)
// in clear: the capture may not hold its subject.
func (h *harness) check(rcpt string, want outcome, s *sink, proxy *smtpstrip.Proxy) {
	h.t.Helper()
	before := len(s.be.messages())
	en := h.submit("alice@ours.test", rcpt)
	if want.delivered {
		h.waitGone(en.ID)
		if got := len(s.be.messages()) - before; got != 1 {
			h.t.Errorf("%s: %d copies arrived, want 1", rcpt, got)
		}
		return
	}
	got := h.waitAttempted(en.ID, 1)
	r := got.Recipients[0]
	if r.State != queue.Queued || !strings.Contains(r.LastError, want.reason) {
		h.t.Errorf("%s: state %s, last error %q; want queued with %q", rcpt, r.State, r.LastError, want.reason)
	}
	if len(s.be.messages()) != before {
		h.t.Errorf("%s: the message arrived although the policy was not met", rcpt)
	}
	if proxy != nil && strings.Contains(proxy.Captured(), "Body of") {
		h.t.Errorf("%s: the message crossed the proxy in clear text:\n%s", rcpt, proxy.Captured())
	}
}

func tlsaOf(s *sink) string {
	sum := sha256.Sum256(s.cert.TLS.Leaf.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// TestDANE runs DANE for SMTP (RFC 7672) through Unbound validating a
// signed test zone: a matching DANE-EE record delivers; a record that
// matches nothing, a bogus signature and a stripped STARTTLS keep the
// message queued and never send it in clear; an unsigned zone's TLSA
// record is ignored.
func TestDANE(t *testing.T) {
	s := startSink(t, false, false, "mx.dane.test")
	strip := smtpstrip.Start(t, s.addr)
	ok := tlsaOf(s)
	wrong := strings.Repeat("ab", 32)
	zones := dnstest.Start(t,
		dnstest.Zone{Origin: "test.", Signed: true, Bogus: []string{"_25._tcp.mx.bogus.test."}, Records: []string{
			"dane.test. 60 IN MX 10 mx.dane.test.",
			"mx.dane.test. 60 IN A 127.0.0.1",
			"_25._tcp.mx.dane.test. 60 IN TLSA 3 1 1 " + ok,
			"wrong.test. 60 IN MX 10 mx.wrong.test.",
			"mx.wrong.test. 60 IN A 127.0.0.1",
			"_25._tcp.mx.wrong.test. 60 IN TLSA 3 1 1 " + wrong,
			"bogus.test. 60 IN MX 10 mx.bogus.test.",
			"mx.bogus.test. 60 IN A 127.0.0.1",
			"_25._tcp.mx.bogus.test. 60 IN TLSA 3 1 1 " + ok,
			"nodane.test. 60 IN MX 10 mx.nodane.test.",
			"mx.nodane.test. 60 IN A 127.0.0.1",
		}},
		dnstest.Zone{Origin: "example.", Records: []string{
			"insecure.example. 60 IN MX 10 mx.insecure.example.",
			"mx.insecure.example. 60 IN A 127.0.0.1",
			"_25._tcp.mx.insecure.example. 60 IN TLSA 3 1 1 " + wrong,
		}},
	)
	resolver := dnstest.StartUnbound(t, zones)
	srv := config.Server{DNSResolvers: []string{resolver}}

	h := newHarness(t, port(t, s.addr), srv)
	h.check("a@dane.test", outcome{delivered: true}, s, nil)
	h.check("a@wrong.test", outcome{reason: "matches none of the TLSA records"}, s, nil)
	h.check("a@bogus.test", outcome{reason: "DANE cannot be ruled out"}, s, nil)
	h.check("a@nodane.test", outcome{delivered: true}, s, nil)
	h.check("a@insecure.example", outcome{delivered: true}, s, nil)
	if !strings.Contains(h.logs.String(), "matches none of the TLSA records") {
		t.Error("the log does not say why wrong.test stays queued")
	}
	h.checkReport("dane.test", reportWant{typ: tlsrpt.PolicyTLSA, strings: []string{"3 1 1 " + ok}, mx: []string{"mx.dane.test"}, ok: 1})
	h.checkReport("wrong.test", reportWant{typ: tlsrpt.PolicyTLSA, strings: []string{"3 1 1 " + wrong}, mx: []string{"mx.wrong.test"},
		failures: []failureWant{{tlsrpt.TLSAInvalid, "mx.wrong.test", "127.0.0.1", "127.0.0.1", 1, "matches none of the TLSA records"}}})
	h.checkReport("bogus.test", reportWant{typ: tlsrpt.PolicyTLSA, mx: []string{"mx.bogus.test"},
		failures: []failureWant{{tlsrpt.DNSSECInvalid, "mx.bogus.test", "", "", 1, "DANE cannot be ruled out"}}})
	h.checkReport("nodane.test", reportWant{typ: tlsrpt.PolicyNotFound, ok: 1})
	h.checkReport("insecure.example", reportWant{typ: tlsrpt.PolicyNotFound, ok: 1})

	// The same MX behind a STARTTLS-stripping proxy: DANE keeps the
	// message; without DANE, opportunistic TLS lets it go in clear.
	hs := newHarness(t, port(t, strip.Addr), srv)
	hs.check("b@dane.test", outcome{reason: "did not offer STARTTLS"}, s, strip)
	hs.check("b@nodane.test", outcome{delivered: true}, s, nil)
	if !strings.Contains(strip.Captured(), "Body of") {
		t.Error("the opportunistic delivery through the stripping proxy did not go in clear: the test proves nothing")
	}
	hs.checkReport("dane.test", reportWant{typ: tlsrpt.PolicyTLSA, strings: []string{"3 1 1 " + ok}, mx: []string{"mx.dane.test"},
		failures: []failureWant{{tlsrpt.StartTLSNotSupported, "mx.dane.test", "127.0.0.1", "127.0.0.1", 1, "did not offer STARTTLS"}}})
	hs.checkReport("nodane.test", reportWant{typ: tlsrpt.PolicyNotFound,
		failures: []failureWant{{tlsrpt.StartTLSNotSupported, "mx.nodane.test", "127.0.0.1", "127.0.0.1", 1, "delivered without TLS"}}})
}

// TestMTASTS fetches policies over HTTPS from a server whose CA the engine
// is told to trust (ca_certificates_pem): under "enforce" a verified
// certificate from a listed MX delivers; a stripped STARTTLS or an MX the
// policy does not list keeps the message queued; "testing" only reports.
func TestMTASTS(t *testing.T) {
	s := startSink(t, false, false, "mx.sts.test")
	strip := smtpstrip.Start(t, s.addr)
	web := testutil.SelfSigned(t, "mta-sts.sts.test", "mta-sts.unlisted.test", "mta-sts.testing.test", "mta-sts.mismatch.test",
		"mta-sts.broken.test", "mta-sts.missing.test")
	policies := map[string]string{
		"mta-sts.sts.test":      "version: STSv1\r\nmode: enforce\r\nmx: mx.sts.test\r\nmax_age: 86400\r\n",
		"mta-sts.unlisted.test": "version: STSv1\nmode: enforce\nmx: *.elsewhere.test\nmax_age: 86400\n",
		"mta-sts.testing.test":  "version: STSv1\nmode: testing\nmx: mx.sts.test\nmax_age: 86400\n",
		"mta-sts.mismatch.test": "version: STSv1\nmode: enforce\nmx: *.sts.test\nmax_age: 86400\n",
		"mta-sts.broken.test":   "version: STSv1\nmode: strict\nmx: mx.sts.test\nmax_age: 86400\n",
		// mta-sts.missing.test serves no policy: 404.
	}
	var fetches atomic.Int32
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := policies[r.Host]
		if !ok || r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(w, r)
			return
		}
		fetches.Add(1)
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(p))
	}))
	hs.TLS = web.ServerConfig()
	hs.StartTLS()
	defer hs.Close()
	zones := dnstest.Start(t, dnstest.Zone{Origin: "test.", Records: []string{
		"sts.test. 60 IN MX 10 mx.sts.test.",
		"mx.sts.test. 60 IN A 127.0.0.1",
		"_smtp._tls.sts.test. 60 IN TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@sts.test,https://reports.sts.test/v1\"",
		"_mta-sts.sts.test. 60 IN TXT \"v=STSv1; id=20260301\"",
		"mta-sts.sts.test. 60 IN A 127.0.0.1",
		"unlisted.test. 60 IN MX 10 mx.sts.test.",
		"_mta-sts.unlisted.test. 60 IN TXT \"v=STSv1; id=1\"",
		"mta-sts.unlisted.test. 60 IN A 127.0.0.1",
		"testing.test. 60 IN MX 10 mx.sts.test.",
		"_mta-sts.testing.test. 60 IN TXT \"v=STSv1; id=1\"",
		"mta-sts.testing.test. 60 IN A 127.0.0.1",
		"plain.test. 60 IN MX 10 mx.sts.test.",
		// A listed MX whose certificate names another host.
		"mismatch.test. 60 IN MX 10 mx2.sts.test.",
		"mx2.sts.test. 60 IN A 127.0.0.1",
		"_mta-sts.mismatch.test. 60 IN TXT \"v=STSv1; id=1\"",
		"mta-sts.mismatch.test. 60 IN A 127.0.0.1",
		// TXT records whose policies cannot be had: the mail goes as
		// without MTA-STS, and the TLS report says why.
		"broken.test. 60 IN MX 10 mx.sts.test.",
		"_mta-sts.broken.test. 60 IN TXT \"v=STSv1; id=1\"",
		"mta-sts.broken.test. 60 IN A 127.0.0.1",
		"missing.test. 60 IN MX 10 mx.sts.test.",
		"_mta-sts.missing.test. 60 IN TXT \"v=STSv1; id=1\"",
		"mta-sts.missing.test. 60 IN A 127.0.0.1",
	}})
	srv := config.Server{DNSResolvers: []string{zones.Addr}, CACertificatesPEM: string(web.PEM()) + string(s.cert.PEM())}
	https := func(o *Options) { o.HTTPSPort = port(t, hs.Listener.Addr().String()) }

	h := newHarness(t, port(t, s.addr), srv, https)
	h.check("a@sts.test", outcome{delivered: true}, s, nil)
	h.check("b@sts.test", outcome{delivered: true}, s, nil)
	if n := fetches.Load(); n != 1 {
		t.Errorf("the policy was fetched %d times for two messages, want once (cached)", n)
	}
	h.check("a@unlisted.test", outcome{reason: "not listed in the MTA-STS policy"}, s, nil)
	h.check("a@mismatch.test", outcome{reason: "certificate is valid for mx.sts.test, not mx2.sts.test"}, s, nil)
	h.checkReport("sts.test", reportWant{typ: tlsrpt.PolicySTS, strings: []string{"version: STSv1", "mode: enforce", "mx: mx.sts.test", "max_age: 86400"},
		mx: []string{"mx.sts.test"}, ok: 1, okMax: 2, rua: []string{"mailto:tlsrpt@sts.test", "https://reports.sts.test/v1"}})
	h.checkReport("unlisted.test", reportWant{typ: tlsrpt.PolicySTS, mx: []string{"*.elsewhere.test"},
		failures: []failureWant{{tlsrpt.ValidationFailure, "mx.sts.test", "", "", 1, "not listed in the MTA-STS policy"}}})
	h.checkReport("mismatch.test", reportWant{typ: tlsrpt.PolicySTS, mx: []string{"*.sts.test"},
		failures: []failureWant{{tlsrpt.CertificateHostMismatch, "mx2.sts.test", "127.0.0.1", "127.0.0.1", 1, "not mx2.sts.test"}}})
	h.check("a@broken.test", outcome{delivered: true}, s, nil)
	h.check("a@missing.test", outcome{delivered: true}, s, nil)
	h.checkReport("broken.test", reportWant{typ: tlsrpt.PolicySTS,
		failures: []failureWant{{tlsrpt.STSPolicyInvalid, "mx.sts.test", "127.0.0.1", "127.0.0.1", 1, "mode"}}})
	h.checkReport("missing.test", reportWant{typ: tlsrpt.PolicySTS,
		failures: []failureWant{{tlsrpt.STSPolicyFetch, "mx.sts.test", "127.0.0.1", "127.0.0.1", 1, "404"}}})

	// Behind a STARTTLS-stripping proxy.
	hp := newHarness(t, port(t, strip.Addr), srv, https)
	hp.check("c@sts.test", outcome{reason: "MTA-STS (enforce) for sts.test"}, s, strip)
	hp.check("c@testing.test", outcome{delivered: true}, s, nil)
	if !strings.Contains(hp.logs.String(), "testing mode") && !strings.Contains(hp.logs.String(), "did not offer STARTTLS") {
		t.Errorf("the testing-mode failure is not reported:\n%s", hp.logs.String())
	}
	hp.checkReport("sts.test", reportWant{typ: tlsrpt.PolicySTS, mx: []string{"mx.sts.test"}, rua: []string{"mailto:tlsrpt@sts.test", "https://reports.sts.test/v1"},
		failures: []failureWant{{tlsrpt.StartTLSNotSupported, "mx.sts.test", "127.0.0.1", "127.0.0.1", 1, "did not offer STARTTLS"}}})
	hp.checkReport("testing.test", reportWant{typ: tlsrpt.PolicySTS, strings: []string{"mode: testing"}, mx: []string{"mx.sts.test"},
		failures: []failureWant{{tlsrpt.StartTLSNotSupported, "mx.sts.test", "127.0.0.1", "127.0.0.1", 1, "delivered without TLS"}}})

	// Without the CA, the policy cannot be fetched: no policy applies
	// (RFC 8461 section 5), unless one is cached.
	hn := newHarness(t, port(t, s.addr), config.Server{DNSResolvers: []string{zones.Addr}}, https)
	hn.check("d@sts.test", outcome{delivered: true}, s, nil)
	if !strings.Contains(hn.logs.String(), "MTA-STS policy fetch failed") {
		t.Error("an untrusted policy server is not reported")
	}
	hn.checkReport("sts.test", reportWant{typ: tlsrpt.PolicySTS, rua: []string{"mailto:tlsrpt@sts.test", "https://reports.sts.test/v1"},
		failures: []failureWant{{tlsrpt.STSWebPKIInvalid, "mx.sts.test", "127.0.0.1", "127.0.0.1", 1, "certificate"}}})
}

// TestTLSPolicyOverrides: an operator's tls_policy requires TLS of a
// domain without DANE or MTA-STS, and a pin refuses the wrong certificate.
func TestTLSPolicyOverrides(t *testing.T) {
	s := startSink(t, false, false, "mx.example.test")
	strip := smtpstrip.Start(t, s.addr)
	zones := dnstest.Start(t, mxZone("other.test. 60 IN MX 10 mx.example.test."))
	srv := config.Server{DNSResolvers: []string{zones.Addr}, TLSPolicies: []config.TLSPolicy{
		{Domain: "example.test", RequireTLS: true},
		{Domain: "other.test", FingerprintsSHA256: []string{strings.Repeat("AB:", 31) + "AB"}},
	}}
	hp := newHarness(t, port(t, strip.Addr), srv)
	hp.check("a@example.test", outcome{reason: "TLS required by tls_policy for example.test"}, s, strip)
	h := newHarness(t, port(t, s.addr), srv)
	h.check("b@example.test", outcome{delivered: true}, s, nil)
	h.check("b@other.test", outcome{reason: "matches none of the pinned fingerprints"}, s, nil)
	// The operator's policies are not the domain's: no-policy-found.
	hp.checkReport("example.test", reportWant{typ: tlsrpt.PolicyNotFound,
		failures: []failureWant{{tlsrpt.StartTLSNotSupported, "mx.example.test", "127.0.0.1", "127.0.0.1", 1, "TLS required by tls_policy for example.test"}}})
	h.checkReport("example.test", reportWant{typ: tlsrpt.PolicyNotFound, ok: 1})
	h.checkReport("other.test", reportWant{typ: tlsrpt.PolicyNotFound,
		failures: []failureWant{{tlsrpt.CertificateNotTrusted, "mx.example.test", "127.0.0.1", "127.0.0.1", 1, "pinned fingerprints"}}})
}

// issued is a leaf for host signed by ca, served with its chain.
func issued(t *testing.T, ca *testutil.Certificate, host string) *testutil.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.TLS.Leaf, &key.PublicKey, ca.TLS.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return &testutil.Certificate{TLS: tls.Certificate{Certificate: [][]byte{der, ca.TLS.Leaf.Raw}, PrivateKey: key, Leaf: leaf}}
}

// TestDANETA: a DANE-TA(2) record names the issuing CA; the MX's leaf must
// chain to it and be valid for the MX host name (RFC 7672 section 3.1.1).
func TestDANETA(t *testing.T) {
	ca := testutil.SelfSigned(t, "Test DANE CA")
	s := startSinkWith(t, issued(t, ca, "mx.ta.test"), false, false, "mx.ta.test")
	caSum := sha256.Sum256(ca.TLS.Leaf.Raw)
	ta := hex.EncodeToString(caSum[:])
	zones := dnstest.Start(t, dnstest.Zone{Origin: "test.", Signed: true, Records: []string{
		"ta.test. 60 IN MX 10 mx.ta.test.",
		"mx.ta.test. 60 IN A 127.0.0.1",
		"_25._tcp.mx.ta.test. 60 IN TLSA 2 0 1 " + ta,
		// The same MX under another name: the CA matches, the name does not.
		"taname.test. 60 IN MX 10 mx.taname.test.",
		"mx.taname.test. 60 IN A 127.0.0.1",
		"_25._tcp.mx.taname.test. 60 IN TLSA 2 0 1 " + ta,
	}})
	h := newHarness(t, port(t, s.addr), config.Server{DNSResolvers: []string{dnstest.StartUnbound(t, zones)}})
	h.check("a@ta.test", outcome{delivered: true}, s, nil)
	h.check("a@taname.test", outcome{reason: "matches none of the TLSA records"}, s, nil)
}
