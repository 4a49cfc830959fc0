package tlspolicy

import (
	"crypto/sha256"
	"crypto/sha512"
	"strings"
	"testing"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/dnsclient"
)

// RFC 8461 section 3.2: the policy format.
func TestParseSTSPolicy(t *testing.T) {
	for _, tc := range []struct {
		name, body, err string
		mode            string
		mx              int
	}{
		{"enforce, CRLF", "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 86400\r\n", "", ModeEnforce, 2},
		{"testing, LF, unknown keys", "version: STSv1\nmode: testing\nmx: a.example\nmax_age: 1\nfoo: bar\n", "", ModeTesting, 1},
		{"none needs no mx", "version: STSv1\nmode: none\nmax_age: 1\n", "", ModeNone, 0},
		{"wrong version", "version: STSv2\nmode: enforce\nmx: a\nmax_age: 1\n", "version", "", 0},
		{"bad mode", "version: STSv1\nmode: strict\nmx: a\nmax_age: 1\n", "mode", "", 0},
		{"no max_age", "version: STSv1\nmode: enforce\nmx: a\n", "max_age", "", 0},
		{"no mx", "version: STSv1\nmode: enforce\nmax_age: 5\n", "mx", "", 0},
		{"garbage line", "version: STSv1\nnonsense\n", "key: value", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseSTSPolicy(tc.body)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one about %q", err, tc.err)
				}
				return
			}
			if err != nil || p.Mode != tc.mode || len(p.MX) != tc.mx {
				t.Fatalf("%+v, %v", p, err)
			}
		})
	}
	if p, _ := ParseSTSPolicy("version: STSv1\nmode: none\nmax_age: 99999999999\n"); p.MaxAge != maxPolicyAge {
		t.Errorf("max_age is not capped at %d: %d", maxPolicyAge, p.MaxAge)
	}
}

// RFC 8461 section 4.1: "*." matches exactly one leftmost label.
func TestMatchesMX(t *testing.T) {
	p := &STSPolicy{MX: []string{"mail.example.com", "*.example.net"}}
	for host, want := range map[string]bool{
		"mail.example.com": true, "MAIL.example.com.": true, "other.example.com": false,
		"mx1.example.net": true, "a.b.example.net": false, "example.net": false,
	} {
		if got := p.MatchesMX(host); got != want {
			t.Errorf("%s: %v, want %v", host, got, want)
		}
	}
}

// RFC 8461 section 3.1: the TXT record.
func TestSTSRecordID(t *testing.T) {
	for _, tc := range []struct {
		txts []string
		id   string
		ok   bool
		err  bool
	}{
		{[]string{"v=STSv1; id=20260301T000000;"}, "20260301T000000", true, false},
		{[]string{"v=spf1 -all", "v=STSv1;id=abc"}, "abc", true, false},
		{[]string{"v=spf1 -all"}, "", false, false},
		{[]string{"v=STSv1; id=a", "v=STSv1; id=b"}, "", false, true},
		{[]string{"v=STSv1;"}, "", false, true},
	} {
		id, ok, err := stsRecordID(tc.txts)
		if id != tc.id || ok != tc.ok || (err != nil) != tc.err {
			t.Errorf("%q: %q %v %v", tc.txts, id, ok, err)
		}
	}
}

// RFC 6698 section 2.1 selectors and matching types; RFC 7672 section
// 3.1.3 usable records.
func TestTLSAMatching(t *testing.T) {
	c := testutil.SelfSigned(t, "mx.example.test").TLS.Leaf
	spki256 := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	cert512 := sha512.Sum512(c.Raw)
	for _, tc := range []struct {
		name string
		r    dnsclient.TLSA
		want bool
	}{
		{"3 1 1", dnsclient.TLSA{Usage: 3, Selector: 1, MatchingType: 1, Data: spki256[:]}, true},
		{"3 0 2", dnsclient.TLSA{Usage: 3, Selector: 0, MatchingType: 2, Data: cert512[:]}, true},
		{"3 0 0", dnsclient.TLSA{Usage: 3, Selector: 0, MatchingType: 0, Data: c.Raw}, true},
		{"3 1 1 other", dnsclient.TLSA{Usage: 3, Selector: 1, MatchingType: 1, Data: make([]byte, 32)}, false},
		{"bad selector", dnsclient.TLSA{Usage: 3, Selector: 7, MatchingType: 1, Data: spki256[:]}, false},
	} {
		if got := matches(tc.r, c); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	for _, tc := range []struct {
		usage, selector, matching uint8
		want                      bool
	}{{3, 1, 1, true}, {2, 0, 2, true}, {1, 1, 1, false}, {0, 1, 1, false}, {3, 2, 1, false}, {3, 1, 3, false}} {
		if Usable(dnsclient.TLSA{Usage: tc.usage, Selector: tc.selector, MatchingType: tc.matching}) != tc.want {
			t.Errorf("Usable(%d %d %d) != %v", tc.usage, tc.selector, tc.matching, tc.want)
		}
	}
}

// An operator's tls_policy only tightens; a pin replaces everything else.
func TestTighten(t *testing.T) {
	dane := &Policy{Level: DANE, Source: "DANE"}
	opp := &Policy{Level: Opportunistic}
	for _, tc := range []struct {
		name string
		base *Policy
		o    config.TLSPolicy
		want Level
	}{
		{"require_tls raises opportunistic", opp, config.TLSPolicy{RequireTLS: true}, Encrypt},
		{"verify raises opportunistic", opp, config.TLSPolicy{VerifyCertificate: true}, Verify},
		{"require_tls leaves DANE", dane, config.TLSPolicy{RequireTLS: true}, DANE},
		{"verify leaves DANE", dane, config.TLSPolicy{VerifyCertificate: true}, DANE},
		{"a pin replaces DANE", dane, config.TLSPolicy{FingerprintsSHA256: []string{strings.Repeat("ab", 32)}}, Pin},
		{"nothing set leaves it", opp, config.TLSPolicy{}, Opportunistic},
	} {
		if got := tighten(tc.base, &tc.o, "example.org"); got.Level != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got.Level, tc.want)
		}
	}
}
