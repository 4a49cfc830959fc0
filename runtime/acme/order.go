package acme

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

// Cache keys in a manager's autocert.Cache.
const (
	accountKeyName  = "account.key"
	certificateName = "certificate.pem"
)

// userAgent names the runtime to the CA.
const userAgent = "mailstack-runtime"

// issued is a certificate the CA issued: its key and chain, leaf first.
type issued struct {
	key   crypto.Signer
	chain []*x509.Certificate
}

func (c *issued) leaf() *x509.Certificate { return c.chain[0] }

// client returns the ACME client with a registered account, making it on
// first use. Called with m.work held.
func (m *manager) acmeClient(ctx context.Context) (*acme.Client, error) {
	if m.client != nil {
		return m.client, nil
	}
	key, err := m.accountKey(ctx)
	if err != nil {
		return nil, err
	}
	c := &acme.Client{
		Key:          key,
		DirectoryURL: m.cfg.DirectoryURL,
		HTTPClient:   m.httpClient,
		UserAgent:    userAgent,
	}
	dir, err := c.Discover(ctx)
	if err != nil {
		return nil, fmt.Errorf("ACME directory %s: %w", m.cfg.DirectoryURL, caError(err))
	}
	acct := &acme.Account{}
	if m.cfg.Email != "" {
		acct.Contact = []string{"mailto:" + m.cfg.Email}
	}
	if m.cfg.EABKeyID != "" {
		hmacKey, err := decodeEABKey(m.cfg.EABHMACKey)
		if err != nil {
			return nil, err
		}
		acct.ExternalAccountBinding = &acme.ExternalAccountBinding{KID: m.cfg.EABKeyID, Key: hmacKey}
	} else if dir.ExternalAccountRequired {
		return nil, fmt.Errorf("ACME CA %s requires an external account binding: set eab_key_id and eab_hmac_key", m.cfg.DirectoryURL)
	}
	if _, err := c.Register(ctx, acct, acme.AcceptTOS); err != nil && !errors.Is(err, acme.ErrAccountAlreadyExists) {
		return nil, fmt.Errorf("registering an ACME account with %s: %w", m.cfg.DirectoryURL, caError(err))
	}
	m.client = c
	return c, nil
}

// accountKey loads the account key from the cache, or makes and stores one.
func (m *manager) accountKey(ctx context.Context) (crypto.Signer, error) {
	data, err := m.cache.Get(ctx, accountKeyName)
	if err == nil {
		if key, err := parseKeyPEM(data); err == nil {
			return key, nil
		}
		m.log.Warn("ACME account key in the cache is unreadable; registering a new account", "cache", accountKeyName)
	} else if !errors.Is(err, autocert.ErrCacheMiss) {
		return nil, fmt.Errorf("reading the ACME account key: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	pemKey, err := encodeKeyPEM(key)
	if err != nil {
		return nil, err
	}
	if err := m.cache.Put(ctx, accountKeyName, pemKey); err != nil {
		return nil, fmt.Errorf("storing the ACME account key: %w", err)
	}
	return key, nil
}

// obtain runs one order for every configured domain and returns the
// certificate with a fresh key. Called with m.work held.
func (m *manager) obtain(ctx context.Context) (*issued, error) {
	client, err := m.acmeClient(ctx)
	if err != nil {
		return nil, err
	}
	if m.chal == nil {
		return nil, fmt.Errorf("challenge listener on %s is not bound", m.cfg.ChallengeAddress)
	}
	names := strings.Join(m.cfg.Domains, ", ")
	order, err := client.AuthorizeOrder(ctx, acme.DomainIDs(m.cfg.Domains...))
	if err != nil {
		return nil, fmt.Errorf("ACME CA refused the order for %s: %w", names, caError(err))
	}
	if err := m.authorize(ctx, client, order); err != nil {
		return nil, err
	}
	if order, err = client.WaitOrder(ctx, order.URI); err != nil {
		return nil, fmt.Errorf("ACME order for %s: %w", names, caError(err))
	}

	key, err := keystore.GenerateKey(m.cfg.Key.spec())
	if err != nil {
		return nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: m.cfg.Domains[0]},
		DNSNames: m.cfg.Domains,
	}, key)
	if err != nil {
		return nil, fmt.Errorf("making the certificate request: %w", err)
	}
	der, _, err := client.CreateCertFromOrder(ctx, order, csr, true)
	if err != nil {
		return nil, fmt.Errorf("ACME CA did not issue the certificate for %s: %w", names, caError(err))
	}
	cert, err := checkIssued(key, der, m.cfg.Domains)
	if err != nil {
		return nil, fmt.Errorf("ACME CA issued an unusable certificate for %s: %w", names, err)
	}
	return cert, nil
}

// authorize proves control of every domain of order that is not yet
// authorized: it presents all challenges, accepts them, then waits for
// each. Authorizations left pending by a failure are deactivated.
func (m *manager) authorize(ctx context.Context, client *acme.Client, order *acme.Order) (err error) {
	type pending struct {
		authz  *acme.Authorization
		chal   *acme.Challenge
		domain string
	}
	var todo []pending
	defer func() {
		if err == nil {
			return
		}
		// Pending authorizations count against the CA's limits; give them
		// back. Best effort, briefly.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for _, p := range todo {
			if z, gerr := client.GetAuthorization(dctx, p.authz.URI); gerr == nil && z.Status == acme.StatusPending {
				_ = client.RevokeAuthorization(dctx, p.authz.URI)
			}
		}
	}()

	for _, u := range order.AuthzURLs {
		z, err := client.GetAuthorization(ctx, u)
		if err != nil {
			return fmt.Errorf("ACME authorization %s: %w", u, caError(err))
		}
		domain := z.Identifier.Value
		switch z.Status {
		case acme.StatusValid:
			continue
		case acme.StatusPending:
		default:
			return fmt.Errorf("ACME authorization for %s is %s", domain, z.Status)
		}
		var chal *acme.Challenge
		var offered []string
		for _, c := range z.Challenges {
			offered = append(offered, c.Type)
			if c.Type == m.cfg.Challenge {
				chal = c
			}
		}
		if chal == nil {
			return fmt.Errorf("ACME CA offers no %s challenge for %s (it offers %s)", m.cfg.Challenge, domain, strings.Join(offered, ", "))
		}
		cleanup, err := m.chal.present(ctx, client, chal, domain)
		if err != nil {
			return fmt.Errorf("answering the %s challenge for %s: %w", chal.Type, domain, err)
		}
		defer cleanup()
		todo = append(todo, pending{z, chal, domain})
	}
	for _, p := range todo {
		if _, err := client.Accept(ctx, p.chal); err != nil {
			return fmt.Errorf("ACME CA did not accept the %s challenge for %s: %w", p.chal.Type, p.domain, caError(err))
		}
	}
	for _, p := range todo {
		if err := m.waitAuthorization(ctx, client, p.authz.URI, p.domain); err != nil {
			return err
		}
	}
	return nil
}

// waitAuthorization polls an authorization until the CA decides. A failed
// validation returns the challenge's problem document; a timeout says what
// the CA was still doing.
func (m *manager) waitAuthorization(ctx context.Context, client *acme.Client, url, domain string) error {
	how := fmt.Sprintf("%s at %s", m.cfg.Challenge, m.cfg.ChallengeAddress)
	delay := 100 * time.Millisecond
	var last *acme.Authorization
	for {
		z, err := client.GetAuthorization(ctx, url)
		switch {
		case err == nil:
			last = z
			switch z.Status {
			case acme.StatusValid:
				return nil
			case acme.StatusInvalid, acme.StatusDeactivated, acme.StatusExpired, acme.StatusRevoked:
				for _, c := range z.Challenges {
					if c.Type == m.cfg.Challenge && c.Error != nil {
						return fmt.Errorf("ACME CA could not validate %s over %s: %w", domain, how, caError(c.Error))
					}
				}
				return fmt.Errorf("ACME CA could not validate %s over %s: authorization is %s", domain, how, z.Status)
			}
		case ctx.Err() == nil:
			return fmt.Errorf("ACME authorization for %s: %w", domain, caError(err))
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			state := "no answer from the CA"
			if last != nil {
				state = "authorization " + last.Status
				for _, c := range last.Challenges {
					if c.Type == m.cfg.Challenge {
						state += ", challenge " + c.Status
					}
				}
			}
			return fmt.Errorf("timed out waiting for the ACME CA to validate %s over %s (%s): %w", domain, how, state, ctx.Err())
		case <-t.C:
		}
		delay = min(delay*2, 3*time.Second)
	}
}

// checkIssued parses the issued chain and checks that it is what was asked
// for: the leaf carries key and names every domain.
func checkIssued(key crypto.Signer, der [][]byte, domains []string) (*issued, error) {
	if len(der) == 0 {
		return nil, errors.New("empty certificate chain")
	}
	chain := make([]*x509.Certificate, len(der))
	for i, b := range der {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return nil, fmt.Errorf("certificate %d of the chain: %w", i+1, err)
		}
		chain[i] = c
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(chain[0].PublicKey) {
		return nil, errors.New("the leaf does not carry the key of the certificate request")
	}
	for _, d := range domains {
		if err := chain[0].VerifyHostname(d); err != nil {
			return nil, err
		}
	}
	return &issued{key: key, chain: chain}, nil
}

// The cached certificate is PEM: the key (PKCS#8) followed by the chain,
// leaf first, the layout autocert uses.

func encodeIssued(c *issued) ([]byte, error) {
	out, err := encodeKeyPEM(c.key)
	if err != nil {
		return nil, err
	}
	return append(out, keystore.EncodeCertificatesPEM(c.chain)...), nil
}

func decodeIssued(data []byte) (*issued, error) {
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("no private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("key cannot sign")
	}
	chain, err := keystore.ParseCertificatesPEM(rest)
	if err != nil {
		return nil, err
	}
	return &issued{key: key, chain: chain}, nil
}

func encodeKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func parseKeyPEM(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("key cannot sign")
	}
	return key, nil
}

// newHTTPClient trusts the system roots plus pemRoots for the CA's HTTPS.
func newHTTPClient(pemRoots string) (*http.Client, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if pemRoots != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		certs, err := keystore.ParseCertificatesPEM([]byte(pemRoots))
		if err != nil {
			return nil, fmt.Errorf("ca_certificates_pem: %w", err)
		}
		for _, c := range certs {
			pool.AddCert(c)
		}
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: t, Timeout: 60 * time.Second}, nil
}
