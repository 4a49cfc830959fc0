package acme

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/mailstack/terraform-provider-mailstack/internal/atomicfile"
	"github.com/mailstack/terraform-provider-mailstack/internal/errkind"
	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

// Status is what one ACME keystore really holds and does.
type Status struct {
	// Fingerprint is the SHA-256 fingerprint of the certificate in the
	// keystore, in keytool's notation; empty until one is issued.
	Fingerprint string    `json:"fingerprint,omitempty"`
	NotBefore   time.Time `json:"not_before,omitzero"`
	NotAfter    time.Time `json:"not_after,omitzero"`
	// Issuer is the issuing CA's distinguished name.
	Issuer string `json:"issuer,omitempty"`
	// LastAttempt is when the runtime last asked the CA for a certificate.
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	// LastIssued is when the CA last issued one.
	LastIssued time.Time `json:"last_issued,omitzero"`
	// NextRenewal is when the runtime will next ask the CA: the renewal
	// time of the certificate, or the next retry after a failure.
	NextRenewal time.Time `json:"next_renewal,omitzero"`
	// LastError is why the latest attempt failed, with the CA's problem
	// document; empty after a success. The keystore keeps the previous
	// certificate.
	LastError string `json:"last_error,omitempty"`
	// ChallengeAddress is the bound challenge listener's address; empty
	// when it is not bound.
	ChallengeAddress string `json:"challenge_address,omitempty"`
}

// File names in a manager's folder besides the autocert cache entries.
const (
	configFile = "config.json"
	statusFile = "status.json"
)

// manager keeps one ACME keystore.
type manager struct {
	id         string
	cfg        Config // with defaults, valid
	dir        string // state folder acme/<id>
	cache      autocert.Cache
	log        *slog.Logger
	opts       *Options
	servers    *challengeServers
	httpClient *http.Client

	work   sync.Mutex // serializes syncs; guards client and chal
	client *acme.Client
	chal   *challengeServer

	mu     sync.Mutex // guards status
	status Status

	stop chan struct{} // renewal loop; nil when not running
	done chan struct{}
}

func newManager(id string, cfg Config, dir string, opts *Options, servers *challengeServers) (*manager, error) {
	hc, err := newHTTPClient(cfg.CACertificatesPEM)
	if err != nil {
		return nil, errkind.With(ErrInvalid, err)
	}
	m := &manager{
		id: id, cfg: cfg, dir: dir, cache: autocert.DirCache(dir),
		log: opts.Logger.With("acme_keystore", id), opts: opts, servers: servers, httpClient: hc,
	}
	if data, err := os.ReadFile(filepath.Join(dir, statusFile)); err == nil {
		_ = json.Unmarshal(data, &m.status)
	}
	m.status.ChallengeAddress = ""
	return m, nil
}

// Status returns a copy of the status.
func (m *manager) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status
}

func (m *manager) updateStatus(fn func(*Status)) {
	m.mu.Lock()
	fn(&m.status)
	st := m.status
	m.mu.Unlock()
	data, _ := json.MarshalIndent(st, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(m.dir, statusFile), append(data, '\n'), 0o600); err != nil {
		m.log.Warn("saving ACME status", "err", err)
	}
}

// sync makes the keystore hold a current certificate for the config:
// the cached one if it matches and is not due for renewal, else a new one
// from the CA. With nothing cached, a keystore entry with fingerprint
// keep (if not empty) counts as cached (adoptKept). It writes the
// keystore only when its entry differs. A failure leaves the keystore as
// it was and is recorded in the status.
func (m *manager) sync(ctx context.Context, keep string) error {
	m.work.Lock()
	defer m.work.Unlock()
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return fmt.Errorf("ACME state folder: %w", err)
	}
	err := m.syncLocked(ctx, keep)
	if err != nil && errors.Is(err, context.Canceled) {
		return err // the runtime or the caller stopped it: not the CA's doing
	}
	m.updateStatus(func(s *Status) {
		s.LastError = ""
		if err != nil {
			s.LastError = err.Error()
		}
	})
	return err
}

func (m *manager) syncLocked(ctx context.Context, keep string) error {
	if m.chal == nil {
		chal, err := m.servers.acquire(m.cfg.Challenge, m.cfg.ChallengeAddress)
		if err != nil {
			return err
		}
		m.chal = chal
	}
	m.updateStatus(func(s *Status) { s.ChallengeAddress = m.chal.Addr() })

	cert := m.loadCached(ctx)
	if cert == nil && keep != "" {
		cert = m.adoptKept(ctx, keep)
	}
	fresh := false
	if cert == nil || !time.Now().Before(m.cfg.RenewAt(cert.leaf())) {
		start := time.Now()
		m.updateStatus(func(s *Status) { s.LastAttempt = start })
		m.log.Info("requesting a certificate from the ACME CA", "domains", m.cfg.Domains, "directory", m.cfg.DirectoryURL, "challenge", m.cfg.Challenge)
		next, err := m.obtain(ctx)
		if err != nil {
			return errkind.With(ErrIssuance, fmt.Errorf("ACME keystore %q (keystore %s, alias %q): %w", m.id, m.cfg.KeystorePath, m.cfg.Alias, err))
		}
		if err := m.storeCached(ctx, next); err != nil {
			// The keystore still gets it; a later renewal decides again.
			m.log.Warn("caching the issued certificate", "err", err)
		}
		cert, fresh = next, true
		m.log.Info("ACME CA issued a certificate", "fingerprint", keystore.Fingerprint(cert.leaf()), "not_after", cert.leaf().NotAfter, "took", time.Since(start).Round(time.Millisecond))
	}
	wrote, err := m.install(ctx, cert)
	if err != nil {
		what := "the cached certificate"
		if fresh {
			what = "the issued certificate"
		}
		return errkind.With(ErrIssuance, fmt.Errorf("ACME keystore %q: writing %s into keystore: %w", m.id, what, err))
	}
	if wrote && !fresh {
		m.log.Warn("keystore entry was changed outside the runtime; wrote the ACME certificate back", "keystore", m.cfg.KeystorePath, "alias", m.cfg.Alias)
	} else if wrote {
		m.log.Info("certificate written into the keystore", "keystore", m.cfg.KeystorePath, "alias", m.cfg.Alias)
	}
	leaf := cert.leaf()
	m.updateStatus(func(s *Status) {
		s.Fingerprint = keystore.Fingerprint(leaf)
		s.NotBefore, s.NotAfter = leaf.NotBefore, leaf.NotAfter
		s.Issuer = leaf.Issuer.String()
		s.NextRenewal = m.cfg.RenewAt(leaf)
		if fresh {
			s.LastIssued = time.Now()
		}
	})
	return nil
}

// certificateName is the cache entry of the certificate from one
// directory: switching CAs does not reuse the other's certificate.
func (m *manager) certificateName() string {
	sum := sha256.Sum256([]byte(m.cfg.DirectoryURL))
	return "certificate-" + hex.EncodeToString(sum[:6]) + ".pem"
}

// loadCached returns the cached certificate if it is one for the current
// config (same domains, same kind of key) that has not expired, else nil.
func (m *manager) loadCached(ctx context.Context) *issued {
	data, err := m.cache.Get(ctx, m.certificateName())
	if err != nil {
		if !errors.Is(err, autocert.ErrCacheMiss) {
			m.log.Warn("reading the cached certificate", "err", err)
		}
		return nil
	}
	c, err := decodeIssued(data)
	if err != nil {
		m.log.Warn("cached certificate is unreadable; requesting a new one", "err", err)
		return nil
	}
	if !m.cfg.covers(c.leaf()) || !time.Now().Before(c.leaf().NotAfter) {
		return nil
	}
	return c
}

// adoptKept returns the keystore entry's certificate, and caches it, when
// it is the one with fingerprint keep and a current one for the config
// (Config.Current): the caller vouches that it was issued for this config,
// so a runtime that lost its record of the keystore (acme/<id>/) keeps it
// instead of ordering another. Else nil.
func (m *manager) adoptKept(ctx context.Context, keep string) *issued {
	ks, err := keystore.Open(ctx, m.opts.keystoreFile(m.cfg.KeystorePath), []byte(m.cfg.KeystorePassword))
	if err != nil {
		m.log.Warn("reading the keystore's certificate to keep it", "keystore", m.cfg.KeystorePath, "err", err)
		return nil
	}
	key, chain, err := ks.PrivateKeyEntry(m.cfg.Alias, nil)
	if err != nil || len(chain) == 0 || keystore.Fingerprint(chain[0]) != keep || !m.cfg.Current(chain[0], time.Now()) {
		return nil
	}
	c := &issued{key: key, chain: chain}
	if err := m.storeCached(ctx, c); err != nil {
		m.log.Warn("caching the kept certificate", "err", err)
	}
	m.log.Info("kept the certificate the keystore holds; no order", "fingerprint", keep, "not_after", chain[0].NotAfter)
	return c
}

func (m *manager) storeCached(ctx context.Context, c *issued) error {
	data, err := encodeIssued(c)
	if err != nil {
		return err
	}
	return m.cache.Put(ctx, m.certificateName(), data)
}

// keyMatches reports whether pub is a key of k's kind.
func keyMatches(pub crypto.PublicKey, k Key) bool {
	k = k.withDefaults()
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		return k.Algorithm == "RSA" && pub.N.BitLen() == k.RSABits
	case *ecdsa.PublicKey:
		want := map[string]string{"P256": "P-256", "P384": "P-384"}[k.ECDSACurve]
		return k.Algorithm == "ECDSA" && pub.Curve.Params().Name == want
	}
	return false
}

// install writes c into the keystore's alias unless it is there already;
// it reports whether it wrote. Other entries are kept.
func (m *manager) install(ctx context.Context, c *issued) (wrote bool, err error) {
	err = keystore.Update(ctx, m.opts.keystoreFile(m.cfg.KeystorePath), []byte(m.cfg.KeystorePassword), m.cfg.keystoreType(), func(ks *keystore.Keystore) error {
		if e, ok := ks.Entry(m.cfg.Alias); ok {
			if e.Kind != keystore.PrivateKey {
				return fmt.Errorf("alias %q is a %s entry, not a private key entry", m.cfg.Alias, e.Kind)
			}
			if sameChain(e.Chain, c.chain) {
				return nil
			}
		}
		wrote = true
		return ks.SetPrivateKeyEntry(m.cfg.Alias, c.key, c.chain, nil)
	})
	return wrote && err == nil, err
}

// keystoreFile is the keystore at path, locked where LockRoot says.
func (o *Options) keystoreFile(path string) host.File {
	f := host.LocalFile(path)
	if o.LockRoot != "" {
		f.LockPath = host.LockPathFor(o.LockRoot, path)
	}
	return f
}

func sameChain(a, b []*x509.Certificate) bool {
	return slices.EqualFunc(a, b, func(x, y *x509.Certificate) bool { return bytes.Equal(x.Raw, y.Raw) })
}

// checkKeystore refuses a config whose keystore cannot take the
// certificate, before the CA is asked for one.
func checkKeystore(ctx context.Context, cfg Config) error {
	ks, err := keystore.Open(ctx, host.LocalFile(cfg.KeystorePath), []byte(cfg.KeystorePassword))
	if errors.Is(err, fs.ErrNotExist) {
		dir := filepath.Dir(cfg.KeystorePath)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return fmt.Errorf("keystore %s cannot be created: folder %s does not exist", cfg.KeystorePath, dir)
		}
		// A password JKS cannot take is refused now rather than after
		// the CA issued.
		if _, err := keystore.New(cfg.keystoreType()).Encode([]byte(cfg.KeystorePassword)); err != nil {
			return fmt.Errorf("keystore %s: %w", cfg.KeystorePath, err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if ks.Type() != cfg.keystoreType() {
		return fmt.Errorf("keystore %s is %s, but keystore_type is %s", cfg.KeystorePath, ks.Type(), cfg.KeystoreType)
	}
	if e, ok := ks.Entry(cfg.Alias); ok && e.Kind != keystore.PrivateKey {
		return fmt.Errorf("keystore %s: alias %q is a %s entry; the ACME certificate needs an alias of its own", cfg.KeystorePath, cfg.Alias, e.Kind)
	}
	return nil
}

// start runs the renewal loop, first waking after delay.
func (m *manager) start(delay time.Duration) {
	m.stop, m.done = make(chan struct{}), make(chan struct{})
	go m.run(m.stop, m.done, delay)
}

// halt stops the renewal loop and waits for it; an attempt in flight is
// cancelled.
func (m *manager) halt() {
	if m.stop == nil {
		return
	}
	close(m.stop)
	<-m.done
	m.stop, m.done = nil, nil
}

// releaseChallenge gives the challenge listener back.
func (m *manager) releaseChallenge() {
	m.work.Lock()
	defer m.work.Unlock()
	m.servers.release(m.chal)
	m.chal = nil
	m.updateStatus(func(s *Status) { s.ChallengeAddress = "" })
}

// maxRetryInterval caps the backoff between failed attempts: CAs limit
// failed validations per hour.
const maxRetryInterval = time.Hour

func (m *manager) run(stop <-chan struct{}, done chan<- struct{}, delay time.Duration) {
	defer close(done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	failures := 0
	for {
		t := time.NewTimer(max(delay, 0))
		select {
		case <-stop:
			t.Stop()
			return
		case <-t.C:
		}
		actx, acancel := context.WithTimeout(ctx, m.opts.ObtainTimeout)
		err := m.sync(actx, "")
		acancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			delay = min(m.opts.RetryInterval<<min(failures-1, 20), max(maxRetryInterval, m.opts.RetryInterval))
			next := time.Now().Add(delay)
			m.updateStatus(func(s *Status) { s.NextRenewal = next })
			m.log.Error("ACME certificate renewal failed; the keystore keeps its certificate", "err", err, "retry_at", next)
			continue
		}
		failures = 0
		delay = min(time.Until(m.Status().NextRenewal), m.opts.CheckInterval)
	}
}
