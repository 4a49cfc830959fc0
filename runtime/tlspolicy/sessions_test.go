package tlspolicy

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"strings"
	"testing"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/dnsclient"
)

// tlsPeer is a TLS server on loopback that greets every connection with
// one line, so that the client reads the TLS 1.3 session tickets.
func tlsPeer(t *testing.T, cert *testutil.Certificate) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cert.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write([]byte("220 hello\n"))
				bufio.NewReader(c).ReadString('\n')
			}()
		}
	}()
	return ln.Addr().String()
}

// connect makes one connection under p and reports whether it resumed.
func connect(t *testing.T, addr string, p *Policy, s *Sessions) (resumed bool, err error) {
	t.Helper()
	cfg := p.TLSConfig("mx.example.test", nil)
	cfg.ClientSessionCache = s.For(p, addr)
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return false, err
	}
	defer c.Close()
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("QUIT\n"))
	return c.ConnectionState().DidResume, nil
}

// TestSessionsResumeOnlyUnderTheSamePolicy: a second connection under the
// same policy resumes; a session made under a weaker policy, or under
// other pins or TLSA records, or to another address, is not offered; and a
// pin the certificate does not match fails, session or not.
func TestSessionsResumeOnlyUnderTheSamePolicy(t *testing.T) {
	cert := testutil.SelfSigned(t, "mx.example.test")
	addr, other := tlsPeer(t, cert), tlsPeer(t, cert)
	sum := sha256.Sum256(cert.TLS.Leaf.Raw)
	opportunistic := &Policy{Level: Opportunistic, Source: "opportunistic"}
	pinned := &Policy{Level: Pin, Source: "tls_policy for example.test", Pins: [][]byte{sum[:]}}
	wrongPin := &Policy{Level: Pin, Source: "tls_policy for example.test", Pins: [][]byte{make([]byte, 32)}}
	spki := sha256.Sum256(cert.TLS.Leaf.RawSubjectPublicKeyInfo)
	dane := &Policy{Level: DANE, Source: "DANE", TLSA: []dnsclient.TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: spki[:]}}}
	s := NewSessions(16)

	for i, step := range []struct {
		name    string
		addr    string
		p       *Policy
		resumed bool
		err     string
	}{
		{"first opportunistic connection", addr, opportunistic, false, ""},
		{"second opportunistic connection", addr, opportunistic, true, ""},
		{"pinned after opportunistic ones", addr, pinned, false, ""},
		{"pinned again", addr, pinned, true, ""},
		{"wrong pin", addr, wrongPin, false, "matches none of the pinned fingerprints"},
		{"DANE-EE after pinned ones", addr, dane, false, ""},
		{"DANE-EE again", addr, dane, true, ""},
		{"pinned, another address", other, pinned, false, ""},
	} {
		resumed, err := connect(t, step.addr, step.p, s)
		switch {
		case step.err != "" && (err == nil || !strings.Contains(err.Error(), step.err)):
			t.Errorf("%d %s: err = %v, want one about %q", i, step.name, err, step.err)
		case step.err == "" && err != nil:
			t.Errorf("%d %s: %v", i, step.name, err)
		case resumed != step.resumed:
			t.Errorf("%d %s: resumed = %v, want %v", i, step.name, resumed, step.resumed)
		}
	}
	if (*Sessions)(nil).For(pinned, addr) != nil {
		t.Error("a nil Sessions gives a cache")
	}
}

// TestSessionsCheckThePolicyOnResumption: a session is resumed only with
// the policy's checks run again on the certificates it carries, so a
// resumable session to a peer whose certificate a pin does not match
// fails even if the cache hands it out.
func TestSessionsCheckThePolicyOnResumption(t *testing.T) {
	cert := testutil.SelfSigned(t, "mx.example.test")
	addr := tlsPeer(t, cert)
	opportunistic := &Policy{Level: Opportunistic, Source: "opportunistic"}
	s := NewSessions(16)
	if _, err := connect(t, addr, opportunistic, s); err != nil {
		t.Fatal(err)
	}
	// The same scope as the opportunistic session, with a pin check: the
	// session is offered and resumed, and VerifyConnection still refuses.
	wrong := &Policy{Level: Pin, Source: "tls_policy for example.test", Pins: [][]byte{make([]byte, 32)}}
	cfg := wrong.TLSConfig("mx.example.test", nil)
	cfg.ClientSessionCache = s.For(opportunistic, addr)
	check, resumed := cfg.VerifyConnection, false
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		resumed = cs.DidResume
		return check(cs)
	}
	c, err := tls.Dial("tcp", addr, cfg)
	if err == nil {
		c.Close()
		t.Fatal("a resumed session passed a pin its certificate does not match")
	}
	if !strings.Contains(err.Error(), "matches none of the pinned fingerprints") {
		t.Fatalf("err = %v, want the pin violation", err)
	}
	if !resumed {
		t.Fatal("the handshake did not resume: the test proves nothing")
	}
}
