package acme

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
)

func validConfig() Config {
	return Config{
		KeystorePath:     "/etc/mail/james.keystore",
		KeystorePassword: "changeit",
		Alias:            "james",
		Domains:          []string{"mail.example.com"},
	}
}

func TestWithDefaults(t *testing.T) {
	got := Config{Domains: []string{"Mail.Example.COM.", "bücher.example"}, KeystoreType: "p12"}.WithDefaults()
	if got.KeystoreType != "PKCS12" || got.DirectoryURL != LetsEncryptProduction || got.Challenge != ChallengeHTTP01 ||
		got.ChallengeAddress != ":80" || got.RenewBeforeDays != 30 || got.Key != (Key{Algorithm: "RSA", RSABits: 2048}) {
		t.Errorf("defaults: %+v", got)
	}
	if got.Domains[0] != "mail.example.com" || got.Domains[1] != "xn--bcher-kva.example" {
		t.Errorf("canonical domains: %v", got.Domains)
	}
	alpn := Config{Challenge: ChallengeTLSALPN01, Key: Key{Algorithm: "ec", ECDSACurve: "secp384r1"}}.WithDefaults()
	if alpn.ChallengeAddress != ":443" || alpn.Key != (Key{Algorithm: "ECDSA", ECDSACurve: "P384"}) {
		t.Errorf("tls-alpn-01 defaults: %+v", alpn)
	}
	if got := (Config{KeystoreType: "JKS"}).WithDefaults(); got.KeystoreType != "JKS" {
		t.Errorf("JKS: %q", got.KeystoreType)
	}
	// Defaults are stable: applying them twice changes nothing.
	once := validConfig().WithDefaults()
	if !once.WithDefaults().equal(once) {
		t.Error("WithDefaults is not idempotent")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   string // "" means valid
	}{
		{"minimal", func(*Config) {}, ""},
		{"everything", func(c *Config) {
			c.KeystoreType, c.Key = "PKCS12", Key{Algorithm: "ECDSA", ECDSACurve: "P-256"}
			c.Domains = []string{"mail.example.com", "smtp.example.com"}
			c.Email, c.DirectoryURL = "postmaster@example.com", LetsEncryptStaging
			c.Challenge, c.ChallengeAddress, c.RenewBeforeDays = ChallengeTLSALPN01, "192.0.2.1:8443", 10
			c.EABKeyID, c.EABHMACKey = "kid", "c2VjcmV0"
		}, ""},
		{"relative path", func(c *Config) { c.KeystorePath = "james.keystore" }, `keystore_path "james.keystore" must be absolute`},
		{"no path", func(c *Config) { c.KeystorePath = "" }, "keystore_path is required"},
		{"bad type", func(c *Config) { c.KeystoreType = "JCEKS" }, `keystore_type "JCEKS": want JKS or PKCS12`},
		{"no password", func(c *Config) { c.KeystorePassword = "" }, "keystore_password is required"},
		{"no alias", func(c *Config) { c.Alias = " " }, "alias is required"},
		{"rsa bits", func(c *Config) { c.Key = Key{RSABits: 1024} }, "key.rsa_bits 1024: want 2048, 3072 or 4096"},
		{"curve", func(c *Config) { c.Key = Key{Algorithm: "ECDSA", ECDSACurve: "P521"} }, `key.ecdsa_curve "P521": want P256 or P384`},
		{"algorithm", func(c *Config) { c.Key = Key{Algorithm: "DSA"} }, `key.algorithm "DSA": want RSA or ECDSA`},
		{"curve for RSA", func(c *Config) { c.Key = Key{ECDSACurve: "P256"} }, "key.ecdsa_curve is only for ECDSA keys"},
		{"no domains", func(c *Config) { c.Domains = nil }, "domains: at least one domain is required"},
		{"wildcard", func(c *Config) { c.Domains = []string{"*.example.com"} }, "wildcard names need the dns-01 challenge"},
		{"ip", func(c *Config) { c.Domains = []string{"192.0.2.1"} }, "IP addresses are not supported"},
		{"single label", func(c *Config) { c.Domains = []string{"localhost"} }, `"localhost" is not a fully qualified domain name`},
		{"bad label", func(c *Config) { c.Domains = []string{"mail_x.example.com"} }, `"mail_x.example.com" is not a valid domain name`},
		{"duplicate", func(c *Config) { c.Domains = []string{"mail.example.com", "MAIL.example.com"} }, `"mail.example.com" is listed twice`},
		{"email", func(c *Config) { c.Email = "Postmaster <pm@example.com>" }, "is not a plain e-mail address"},
		{"http directory", func(c *Config) { c.DirectoryURL = "http://ca.example.com/dir" }, "must be an https URL"},
		{"ca pem", func(c *Config) { c.CACertificatesPEM = "not pem" }, "ca_certificates_pem:"},
		{"challenge", func(c *Config) { c.Challenge = "dns-01" }, `challenge "dns-01": want one of http-01, tls-alpn-01`},
		{"address host name", func(c *Config) { c.ChallengeAddress = "localhost:80" }, `host "localhost" must be an IP address`},
		{"address port", func(c *Config) { c.ChallengeAddress = ":0" }, `port "0": want 1 to 65535`},
		{"address form", func(c *Config) { c.ChallengeAddress = "80" }, "want host:port"},
		{"renew", func(c *Config) { c.RenewBeforeDays = -1 }, "renew_before_days -1: want 1 to 365"},
		{"eab half", func(c *Config) { c.EABKeyID = "kid" }, "eab_key_id and eab_hmac_key go together"},
		{"eab encoding", func(c *Config) { c.EABKeyID, c.EABHMACKey = "kid", "not base64!" }, "eab_hmac_key: not base64url"},
		{"every problem", func(c *Config) { c.KeystorePassword, c.Alias = "", "" }, "keystore_password is required\nalias is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.change(&c)
			err := c.WithDefaults().Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("valid config refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

func TestRedacted(t *testing.T) {
	c := validConfig()
	c.EABKeyID, c.EABHMACKey = "kid", "c2VjcmV0"
	r := c.Redacted()
	if r.KeystorePassword != "" || r.EABHMACKey != "" || r.EABKeyID != "kid" || c.KeystorePassword == "" {
		t.Errorf("Redacted: %+v", r)
	}
}

func TestIDs(t *testing.T) {
	for id, want := range map[string]bool{
		"mx": true, "ks-0a1b": true, "mail.example.com_1": true,
		"": false, ".hidden": false, "../x": false, "a/b": false, strings.Repeat("a", 129): false,
	} {
		if ValidID(id) != want {
			t.Errorf("ValidID(%q) = %v", id, !want)
		}
	}
	a := IDFor("/etc/mail/james.keystore", "James")
	if !ValidID(a) || a != IDFor("/etc/mail/../mail/james.keystore", "james") || a == IDFor("/etc/mail/james.keystore", "other") {
		t.Errorf("IDFor: %q", a)
	}
}

func TestRenewalTime(t *testing.T) {
	day := 24 * time.Hour
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		lifetime time.Duration
		before   time.Duration
		want     time.Duration // after notBefore
	}{
		{"90-day certificate, 30 days before", 90 * day, 30 * day, 60 * day},
		{"45-day certificate, 30 days before", 45 * day, 30 * day, 15 * day},
		{"6-day certificate, 30 days before: a third in", 6 * day, 30 * day, 2 * day},
		{"12-second certificate, 1 day before", 12 * time.Second, day, 4 * time.Second},
		{"90-day certificate, 1 day before", 90 * day, day, 89 * day},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := renewalTime(nb, nb.Add(tc.lifetime), tc.before)
			if want := nb.Add(tc.want); !got.Equal(want) {
				t.Errorf("renewal at %s, want %s", got, want)
			}
		})
	}
}

func TestProblemText(t *testing.T) {
	tests := []struct {
		name string
		err  *acme.Error
		want string
	}{
		{"problem document", &acme.Error{StatusCode: 400, ProblemType: "urn:ietf:params:acme:error:rejectedIdentifier", Detail: "Policy forbids issuing for name"},
			"urn:ietf:params:acme:error:rejectedIdentifier: Policy forbids issuing for name (HTTP 400)"},
		{"subproblems", &acme.Error{StatusCode: 400, ProblemType: "urn:ietf:params:acme:error:malformed", Detail: "bad names",
			Subproblems: []acme.Subproblem{{Type: "urn:ietf:params:acme:error:rejectedIdentifier", Detail: "no", Identifier: &acme.AuthzID{Type: "dns", Value: "a.example"}}}},
			"urn:ietf:params:acme:error:malformed: bad names; a.example: urn:ietf:params:acme:error:rejectedIdentifier: no (HTTP 400)"},
		{"plain 404", &acme.Error{StatusCode: 404, Detail: "404 page not found\n"}, "HTTP 404 Not Found: 404 page not found"},
		{"empty 404", &acme.Error{StatusCode: 404, Detail: "404 Not Found"}, "HTTP 404 Not Found"},
		{"html", &acme.Error{StatusCode: 502, Detail: "<html><body>Bad Gateway</body></html>"}, "HTTP 502 Bad Gateway"},
		{"long body", &acme.Error{StatusCode: 500, Detail: strings.Repeat("x", 300)}, "HTTP 500 Internal Server Error: " + strings.Repeat("x", 200) + "..."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := caError(tc.err).Error(); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
	oe := caError(&acme.OrderError{Status: "invalid", Problem: &acme.Error{StatusCode: 403, ProblemType: "urn:ietf:params:acme:error:unauthorized", Detail: "no"}})
	if want := "order is invalid: urn:ietf:params:acme:error:unauthorized: no (HTTP 403)"; oe.Error() != want {
		t.Errorf("order error %q, want %q", oe, want)
	}
}

// The http-01 listener answers a token only on its domain's Host, and
// nothing else (its host policy).
func TestHTTP01HostPolicy(t *testing.T) {
	s := &challengeServer{typ: ChallengeHTTP01, tokens: map[string]httpToken{}, log: slog.New(slog.DiscardHandler)}
	client := &acme.Client{Key: mustKey(t)}
	cleanup, err := s.present(context.Background(), client, &acme.Challenge{Type: ChallengeHTTP01, Token: "tok"}, "mail.example.com")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := client.HTTP01ChallengeResponse("tok")
	tests := []struct {
		name, method, host, path string
		code                     int
	}{
		{"token on its domain", "GET", "mail.example.com:80", "/.well-known/acme-challenge/tok", 200},
		{"host without port, other case", "GET", "MAIL.example.com", "/.well-known/acme-challenge/tok", 200},
		{"other domain", "GET", "evil.example.com", "/.well-known/acme-challenge/tok", 404},
		{"unknown token", "GET", "mail.example.com", "/.well-known/acme-challenge/other", 404},
		{"other path", "GET", "mail.example.com", "/", 404},
		{"POST", "POST", "mail.example.com", "/.well-known/acme-challenge/tok", 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "http://x"+tc.path, nil)
			r.Host = tc.host
			w := httptest.NewRecorder()
			s.serveHTTP(w, r)
			body, _ := io.ReadAll(w.Result().Body)
			if w.Code != tc.code || (tc.code == 200 && string(body) != want) {
				t.Errorf("%d %q", w.Code, body)
			}
		})
	}
	cleanup()
	r := httptest.NewRequest("GET", "http://mail.example.com/.well-known/acme-challenge/tok", nil)
	w := httptest.NewRecorder()
	s.serveHTTP(w, r)
	if w.Code != http.StatusNotFound {
		t.Errorf("token still answered after cleanup: %d", w.Code)
	}
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
