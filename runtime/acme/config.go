package acme

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/idna"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

// Challenge types a manager answers.
const (
	ChallengeHTTP01    = "http-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
)

// Challenges lists the accepted challenge types, default first.
var Challenges = []string{ChallengeHTTP01, ChallengeTLSALPN01}

// Well-known directories and the defaults applied where a field is zero.
const (
	LetsEncryptProduction = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStaging    = "https://acme-staging-v02.api.letsencrypt.org/directory"

	DefaultDirectoryURL       = LetsEncryptProduction
	DefaultChallenge          = ChallengeHTTP01
	DefaultHTTP01Address      = ":80"
	DefaultTLSALPN01Address   = ":443"
	DefaultRenewBeforeDays    = 30
	MaxRenewBeforeDays        = 365
	MaxDomains                = 100 // Let's Encrypt's limit of names per certificate
	defaultKeystoreTypeString = string(keystore.JKS)
)

// Config is one ACME keystore: the body of PUT /v1/acme/{id}. Zero fields
// take the defaults WithDefaults fills in; GET answers with them filled in
// and the secrets (KeystorePassword, EABHMACKey) blanked.
type Config struct {
	// KeystorePath is the keystore file, an absolute path. It is created
	// when it does not exist; other entries in it are kept. Required.
	KeystorePath string `json:"keystore_path"`
	// KeystoreType is JKS or PKCS12 (as keystore.ParseType reads it); an
	// existing file must be of this type. Empty means JKS.
	KeystoreType string `json:"keystore_type,omitempty"`
	// KeystorePassword opens the keystore and protects the private key.
	// Required.
	KeystorePassword string `json:"keystore_password"`
	// Alias is the private key entry the manager owns and rewrites on every
	// issuance. It must not name a trusted certificate entry. Required.
	Alias string `json:"alias"`
	// Key is the certificate key generated for every issuance. The zero
	// value means RSA 2048, keytool's default.
	Key Key `json:"key,omitzero"`

	// Domains are the DNS names the certificate covers; the first is also
	// its subject common name. They are the challenge listener's host
	// policy: it answers for no other name. 1 to MaxDomains names, no
	// wildcards (http-01 and tls-alpn-01 cannot validate them) and no IP
	// addresses. Internationalized names are stored in their ASCII form.
	Domains []string `json:"domains"`
	// Email is the ACME account's contact, for the CA's expiry notices.
	// Optional.
	Email string `json:"email,omitempty"`
	// DirectoryURL is the CA's ACME directory, an https URL. Empty means
	// DefaultDirectoryURL, Let's Encrypt production; LetsEncryptStaging is
	// the place to try things out. Registering an account accepts the CA's
	// terms of service.
	DirectoryURL string `json:"directory_url,omitempty"`
	// CACertificatesPEM holds root certificates trusted for the directory's
	// HTTPS, in addition to the system roots: the way to reach a private
	// ACME CA such as step-ca or Pebble. Optional.
	CACertificatesPEM string `json:"ca_certificates_pem,omitempty"`
	// Challenge is one of Challenges; empty means DefaultChallenge.
	Challenge string `json:"challenge,omitempty"`
	// ChallengeAddress is where the challenge listener binds, host:port
	// with an IP address or an empty host (all addresses). The CA connects
	// to port 80 (http-01) or 443 (tls-alpn-01) of each domain, so anything
	// else needs a port forward. Empty means DefaultHTTP01Address or
	// DefaultTLSALPN01Address.
	ChallengeAddress string `json:"challenge_address,omitempty"`
	// RenewBeforeDays is how long before expiry the certificate is renewed;
	// zero means DefaultRenewBeforeDays. A certificate whose whole lifetime
	// is shorter than 1.5 times that is renewed once a third of its
	// lifetime has passed, so that short-lived certificates are not renewed
	// back to back.
	RenewBeforeDays int `json:"renew_before_days,omitempty"`
	// EABKeyID and EABHMACKey are the external account binding some CAs
	// require to register an account (RFC 8555 section 7.3.4): the key id
	// and the MAC key, base64url-encoded, as the CA hands them out. Both or
	// neither.
	EABKeyID   string `json:"eab_key_id,omitempty"`
	EABHMACKey string `json:"eab_hmac_key,omitempty"`
}

// Key says which certificate key to generate, as the keystore resource's
// key block does.
type Key struct {
	// Algorithm is RSA or ECDSA; empty means RSA.
	Algorithm string `json:"algorithm,omitempty"`
	// RSABits is 2048, 3072 or 4096; zero means 2048.
	RSABits int `json:"rsa_bits,omitempty"`
	// ECDSACurve is P256 or P384; empty means P256.
	ECDSACurve string `json:"ecdsa_curve,omitempty"`
}

// WithDefaults returns c with every zero field that has a default set to
// it and the domains in their canonical form (lower case, ASCII, no final
// dot). The runtime keeps and reports this form.
func (c Config) WithDefaults() Config {
	if c.KeystoreType == "" {
		c.KeystoreType = defaultKeystoreTypeString
	} else if t, err := keystore.ParseType(c.KeystoreType); err == nil {
		c.KeystoreType = string(t)
	}
	c.Key = c.Key.withDefaults()
	if c.DirectoryURL == "" {
		c.DirectoryURL = DefaultDirectoryURL
	}
	if c.Challenge == "" {
		c.Challenge = DefaultChallenge
	}
	if c.ChallengeAddress == "" {
		switch c.Challenge {
		case ChallengeHTTP01:
			c.ChallengeAddress = DefaultHTTP01Address
		case ChallengeTLSALPN01:
			c.ChallengeAddress = DefaultTLSALPN01Address
		}
	}
	if c.RenewBeforeDays == 0 {
		c.RenewBeforeDays = DefaultRenewBeforeDays
	}
	domains := make([]string, len(c.Domains))
	for i, d := range c.Domains {
		domains[i] = canonicalDomain(d)
	}
	c.Domains = domains
	return c
}

func (k Key) withDefaults() Key {
	switch strings.ToUpper(k.Algorithm) {
	case "", "RSA":
		k.Algorithm = "RSA"
		if k.RSABits == 0 {
			k.RSABits = 2048
		}
	case "ECDSA", "EC":
		k.Algorithm = "ECDSA"
		switch strings.ToUpper(strings.ReplaceAll(k.ECDSACurve, "-", "")) {
		case "", "P256", "SECP256R1", "PRIME256V1":
			k.ECDSACurve = "P256"
		case "P384", "SECP384R1":
			k.ECDSACurve = "P384"
		}
	}
	return k
}

func (k Key) validate() error {
	k = k.withDefaults()
	switch k.Algorithm {
	case "RSA":
		if k.ECDSACurve != "" {
			return errors.New("key.ecdsa_curve is only for ECDSA keys")
		}
		if k.RSABits != 2048 && k.RSABits != 3072 && k.RSABits != 4096 {
			return fmt.Errorf("key.rsa_bits %d: want 2048, 3072 or 4096", k.RSABits)
		}
	case "ECDSA":
		if k.RSABits != 0 {
			return errors.New("key.rsa_bits is only for RSA keys")
		}
		if k.ECDSACurve != "P256" && k.ECDSACurve != "P384" {
			return fmt.Errorf("key.ecdsa_curve %q: want P256 or P384", k.ECDSACurve)
		}
	default:
		return fmt.Errorf("key.algorithm %q: want RSA or ECDSA", k.Algorithm)
	}
	return nil
}

func (k Key) spec() keystore.KeySpec {
	k = k.withDefaults()
	return keystore.KeySpec{Algorithm: k.Algorithm, RSABits: k.RSABits, ECDSACurve: k.ECDSACurve}
}

// Validate checks c as WithDefaults leaves it and reports every problem it
// finds, each naming its field. It reads no file: the keystore is checked
// when the config is applied.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	switch {
	case c.KeystorePath == "":
		bad("keystore_path is required")
	case !filepath.IsAbs(c.KeystorePath):
		bad("keystore_path %q must be absolute: the runtime runs in its own folder", c.KeystorePath)
	}
	if _, err := keystore.ParseType(c.KeystoreType); err != nil {
		bad("keystore_type %q: want JKS or PKCS12", c.KeystoreType)
	}
	if c.KeystorePassword == "" {
		bad("keystore_password is required")
	}
	if strings.TrimSpace(c.Alias) == "" {
		bad("alias is required")
	}
	if err := c.Key.validate(); err != nil {
		errs = append(errs, err)
	}

	switch n := len(c.Domains); {
	case n == 0:
		bad("domains: at least one domain is required")
	case n > MaxDomains:
		bad("domains: %d names, at most %d fit in one certificate", n, MaxDomains)
	}
	seen := map[string]bool{}
	for _, d := range c.Domains {
		if err := checkDomain(d); err != nil {
			errs = append(errs, fmt.Errorf("domains: %w", err))
			continue
		}
		if seen[canonicalDomain(d)] {
			bad("domains: %q is listed twice", d)
		}
		seen[canonicalDomain(d)] = true
	}
	if c.Email != "" {
		if a, err := mail.ParseAddress(c.Email); err != nil || a.Address != c.Email {
			bad("email %q is not a plain e-mail address", c.Email)
		}
	}
	if u, err := url.Parse(c.DirectoryURL); err != nil || u.Scheme != "https" || u.Host == "" {
		bad("directory_url %q must be an https URL (RFC 8555 requires HTTPS)", c.DirectoryURL)
	}
	if c.CACertificatesPEM != "" {
		if _, err := keystore.ParseCertificatesPEM([]byte(c.CACertificatesPEM)); err != nil {
			bad("ca_certificates_pem: %v", err)
		}
	}
	if !slices.Contains(Challenges, c.Challenge) {
		bad("challenge %q: want one of %s", c.Challenge, strings.Join(Challenges, ", "))
	}
	if err := checkAddress(c.ChallengeAddress); err != nil {
		bad("challenge_address %q: %v", c.ChallengeAddress, err)
	}
	if c.RenewBeforeDays < 0 || c.RenewBeforeDays > MaxRenewBeforeDays {
		bad("renew_before_days %d: want 1 to %d", c.RenewBeforeDays, MaxRenewBeforeDays)
	}
	switch {
	case c.EABKeyID == "" && c.EABHMACKey == "":
	case c.EABKeyID == "" || c.EABHMACKey == "":
		bad("eab_key_id and eab_hmac_key go together: set both or neither")
	default:
		if _, err := decodeEABKey(c.EABHMACKey); err != nil {
			bad("eab_hmac_key: %v", err)
		}
	}
	return errors.Join(errs...)
}

// Redacted returns c without its secrets, for answers and logs.
func (c Config) Redacted() Config {
	c.KeystorePassword = ""
	c.EABHMACKey = ""
	return c
}

// RenewAt is when leaf is renewed: RenewBeforeDays before it expires, but
// not before a third of its lifetime has passed. c has its defaults.
func (c Config) RenewAt(leaf *x509.Certificate) time.Time {
	return renewalTime(leaf.NotBefore, leaf.NotAfter, time.Duration(c.RenewBeforeDays)*24*time.Hour)
}

func renewalTime(notBefore, notAfter time.Time, before time.Duration) time.Time {
	if limit := notAfter.Sub(notBefore) * 2 / 3; before > limit {
		before = limit
	}
	return notAfter.Add(-before)
}

// Current reports whether leaf is a certificate for c that needs no
// renewal at now: it names exactly c's domains, has a key of c's kind and
// is not due (RenewAt). A keystore entry with such a certificate is kept
// rather than ordered again (Service.PutKeeping). c has its defaults.
func (c Config) Current(leaf *x509.Certificate, now time.Time) bool {
	return c.covers(leaf) && now.Before(c.RenewAt(leaf))
}

// covers reports whether leaf names exactly c's domains and has a key of
// c's kind.
func (c Config) covers(leaf *x509.Certificate) bool {
	names, want := slices.Clone(leaf.DNSNames), slices.Clone(c.Domains)
	slices.Sort(names)
	slices.Sort(want)
	return slices.Equal(names, want) && keyMatches(leaf.PublicKey, c.Key)
}

// equal reports whether a and b ask for the same thing.
func (c Config) equal(o Config) bool {
	return c.KeystorePath == o.KeystorePath && c.KeystoreType == o.KeystoreType &&
		c.KeystorePassword == o.KeystorePassword && c.Alias == o.Alias && c.Key == o.Key &&
		slices.Equal(c.Domains, o.Domains) && c.Email == o.Email && c.DirectoryURL == o.DirectoryURL &&
		c.CACertificatesPEM == o.CACertificatesPEM && c.Challenge == o.Challenge &&
		c.ChallengeAddress == o.ChallengeAddress && c.RenewBeforeDays == o.RenewBeforeDays &&
		c.EABKeyID == o.EABKeyID && c.EABHMACKey == o.EABHMACKey
}

func (c Config) keystoreType() keystore.Type {
	t, _ := keystore.ParseType(c.KeystoreType)
	return t
}

func decodeEABKey(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, errors.New("not base64url, the encoding CAs hand MAC keys out in")
	}
	if len(b) == 0 {
		return nil, errors.New("empty")
	}
	return b, nil
}

// canonicalDomain is d in lower-case ASCII without a final dot; d itself
// when it cannot be converted (Validate then says why).
func canonicalDomain(d string) string {
	d = strings.TrimSuffix(strings.TrimSpace(d), ".")
	if a, err := idna.Lookup.ToASCII(d); err == nil {
		return a
	}
	return strings.ToLower(d)
}

var labelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func checkDomain(d string) error {
	switch {
	case d == "":
		return errors.New("empty domain")
	case strings.Contains(d, "*"):
		return fmt.Errorf("%q: wildcard names need the dns-01 challenge, which this runtime does not answer", d)
	case net.ParseIP(strings.Trim(d, "[]")) != nil:
		return fmt.Errorf("%q: IP addresses are not supported, only DNS names", d)
	}
	a, err := idna.Lookup.ToASCII(strings.TrimSuffix(d, "."))
	if err != nil {
		return fmt.Errorf("%q is not a valid domain name: %v", d, err)
	}
	labels := strings.Split(a, ".")
	if len(labels) < 2 || len(a) > 253 {
		return fmt.Errorf("%q is not a fully qualified domain name", d)
	}
	for _, l := range labels {
		if !labelRE.MatchString(l) {
			return fmt.Errorf("%q is not a valid domain name (label %q)", d, l)
		}
	}
	return nil
}

func checkAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port, such as \":80\" or \"192.0.2.1:80\"")
	}
	if host != "" && net.ParseIP(host) == nil {
		return fmt.Errorf("host %q must be an IP address or empty (all addresses)", host)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("port %q: want 1 to 65535", port)
	}
	return nil
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidID reports whether id can name an ACME keystore: 1 to 128 letters,
// digits, '.', '_' or '-', starting with a letter or digit. The id names
// the keystore's folder in the state directory. IDFor makes one.
func ValidID(id string) bool { return idRE.MatchString(id) }

// IDFor returns a stable id for the ACME keystore that owns entry alias of
// the keystore file at path, for callers (such as the provider, whose
// keystore ids are paths) that have no id of the right shape.
func IDFor(path, alias string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(path) + "\x00" + strings.ToLower(alias)))
	return "ks-" + hex.EncodeToString(sum[:10])
}
