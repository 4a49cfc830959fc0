package listener

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

// certKey identifies one certificate source: the same keystore entry opened
// with the same passwords is loaded and watched once, however many
// listeners serve it, and outlives listener reloads.
type certKey struct {
	path, storePassword, keyPassword, alias string
}

func keyOf(t config.TLS) certKey {
	return certKey{t.KeystorePath, t.KeystorePassword, t.KeyPassword, t.Alias}
}

// certSource serves a keystore's certificate to TLS handshakes. A watcher
// reloads it when the file changes - at once where inotify reports the
// change, else at the next poll; a reload that fails keeps the previous
// certificate and records the error. GetCertificate does no I/O and takes
// no lock.
type certSource struct {
	key  certKey
	cert atomic.Pointer[tls.Certificate]
	err  atomic.Pointer[string]
	refs int // guarded by certCache.mu
	// trusted holds the keystore's trusted certificate entries, the
	// client CAs of listeners with client_auth; reloaded with cert.
	trusted atomic.Pointer[trustedCAs]

	stop  chan struct{}
	kicks chan struct{} // a change was reported: check now
	stat  os.FileInfo   // guarded by the watcher goroutine
}

// kick makes the watcher check the file now.
func (s *certSource) kick() {
	select {
	case s.kicks <- struct{}{}:
	default:
	}
}

func (s *certSource) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cert.Load(), nil
}

// lastError is the latest reload failure, or "".
func (s *certSource) lastError() string {
	if p := s.err.Load(); p != nil {
		return *p
	}
	return ""
}

func (s *certSource) load() error {
	st, err := os.Stat(s.key.path)
	if err != nil {
		return fmt.Errorf("loading keystore %q: %w", s.key.path, err)
	}
	ks, err := keystore.Open(context.Background(), host.LocalFile(s.key.path), []byte(s.key.storePassword))
	if err != nil {
		return err
	}
	cert, err := ks.TLSCertificate(s.key.alias, []byte(s.key.keyPassword))
	if err != nil {
		return err
	}
	s.stat = st
	s.trusted.Store(trustedOf(ks))
	s.cert.Store(&cert)
	s.err.Store(nil)
	return nil
}

// trustedCAs is a keystore's trusted certificate entries as a pool.
type trustedCAs struct {
	pool *x509.CertPool
	n    int
}

func trustedOf(ks *keystore.Keystore) *trustedCAs {
	t := &trustedCAs{pool: x509.NewCertPool()}
	for _, e := range ks.Entries() {
		if e.Kind == keystore.TrustedCertificate && len(e.Chain) > 0 {
			t.pool.AddCert(e.Chain[0])
			t.n++
		}
	}
	return t
}

func (s *certSource) watch(every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.kicks:
		}
		st, err := os.Stat(s.key.path)
		if err == nil && s.stat != nil && os.SameFile(st, s.stat) && st.ModTime().Equal(s.stat.ModTime()) && st.Size() == s.stat.Size() {
			continue
		}
		if err == nil {
			err = s.load()
		}
		if err != nil {
			msg := err.Error()
			if old := s.err.Swap(&msg); old == nil || *old != msg {
				log.Error("keystore reload failed; the previous certificate keeps serving", "keystore", s.key.path, "err", err)
			}
			continue
		}
		log.Info("keystore reloaded", "keystore", s.key.path, "fingerprint", keystore.Fingerprint(s.cert.Load().Leaf))
	}
}

// certCache shares certSources between listeners.
type certCache struct {
	mu      sync.Mutex
	sources map[certKey]*certSource
	poll    time.Duration
	log     *slog.Logger
	notify  dirNotifier
}

// acquire returns the source for t, loading it on first use. A keystore
// that cannot be loaded is an error and nothing is cached.
func (c *certCache) acquire(t config.TLS) (*certSource, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := keyOf(t)
	if s, ok := c.sources[k]; ok {
		s.refs++
		return s, nil
	}
	s := &certSource{key: k, stop: make(chan struct{}), kicks: make(chan struct{}, 1), refs: 1}
	if err := s.load(); err != nil {
		return nil, err
	}
	if c.sources == nil {
		c.sources = map[certKey]*certSource{}
	}
	c.sources[k] = s
	c.notify.add(s)
	go s.watch(c.poll, c.log)
	return s, nil
}

func (c *certCache) release(s *certSource) {
	if s == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s.refs--
	if s.refs == 0 {
		c.notify.remove(s)
		close(s.stop)
		delete(c.sources, s.key)
	}
}

// tlsConfig builds a listener's TLS configuration around src. Client
// certificates are checked against the keystore's trusted certificate
// entries, as a Java truststore would; like the certificate they follow the
// keystore file, so a CA imported later (mailstack_certificate_import,
// keytool -importcert) is trusted from the next handshake on.
func tlsConfig(t config.TLS, src *certSource) (*tls.Config, error) {
	suites, err := t.CipherSuiteIDs()
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		GetCertificate: src.GetCertificate,
		MinVersion:     t.MinTLSVersion(),
		CipherSuites:   suites,
	}
	switch t.ClientAuth {
	case "", config.ClientAuthNone:
		return cfg, nil
	case config.ClientAuthRequest:
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case config.ClientAuthRequire:
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if src.trusted.Load().n == 0 {
		return nil, errors.New("tls.client_auth needs trusted certificate entries in keystore " + t.KeystorePath + ", and it has none")
	}
	ca := &clientCAConfig{base: cfg, src: src}
	// The handshake runs on a copy of cfg with the trusted entries of the
	// keystore as loaded now; copies are made once per reload, not per
	// handshake, and session tickets stay cfg's (crypto/tls keeps the
	// original config's ticket keys), so resumption survives reloads.
	return &tls.Config{
		GetCertificate:     cfg.GetCertificate,
		MinVersion:         cfg.MinVersion,
		CipherSuites:       cfg.CipherSuites,
		ClientAuth:         cfg.ClientAuth,
		GetConfigForClient: ca.get,
	}, nil
}

// clientCAConfig hands out cfg with the source's current client CAs.
type clientCAConfig struct {
	base *tls.Config
	src  *certSource
	cur  atomic.Pointer[clientCAVariant]
}

type clientCAVariant struct {
	trusted *trustedCAs
	cfg     *tls.Config
}

func (c *clientCAConfig) get(*tls.ClientHelloInfo) (*tls.Config, error) {
	trusted := c.src.trusted.Load()
	if v := c.cur.Load(); v != nil && v.trusted == trusted {
		return v.cfg, nil
	}
	cfg := c.base.Clone()
	cfg.ClientCAs = trusted.pool
	c.cur.Store(&clientCAVariant{trusted: trusted, cfg: cfg})
	return cfg, nil
}
