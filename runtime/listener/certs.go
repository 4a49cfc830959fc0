package listener

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

// sourceKey identifies one certificate source: the same keystore entry (or
// PEM pair) opened with the same passwords, stapled or not, is loaded and
// watched once, however many listeners serve it, and outlives listener
// reloads.
type sourceKey struct {
	config.Certificate
	staple bool
}

// certSource serves one certificate source to handshakes. A watcher
// reloads it when its files change - at once where inotify reports the
// change, else at the next poll; a reload that fails keeps the previous
// certificate and records the error. With stapling, a stapler keeps an
// OCSP response on it (ocsp.go). Handshakes read the served certificate
// through an atomic pointer: no I/O, no lock.
type certSource struct {
	key   sourceKey
	paths []string // the files it is read from, watched

	// loaded is the certificate as read from the files; served is what
	// handshakes get: loaded with its OCSP staple, or nil while a
	// certificate that must be stapled has no good staple.
	loaded atomic.Pointer[tls.Certificate]
	served atomic.Pointer[tls.Certificate]
	err    atomic.Pointer[string]
	// trusted holds a keystore's trusted certificate entries, the client
	// CAs of listeners with client_auth; reloaded with the certificate.
	trusted atomic.Pointer[trustedCAs]
	stapler *stapler // nil without stapling

	refs int // guarded by certCache.mu

	pubMu  sync.Mutex // orders publish's compute-and-swap
	subsMu sync.Mutex
	subs   map[*certSet]struct{} // told when served changes

	stop  chan struct{}
	kicks chan struct{} // a change was reported: check now
	stats []os.FileInfo // guarded by the watcher goroutine
}

func newCertSource(k sourceKey) *certSource {
	s := &certSource{key: k, stop: make(chan struct{}), kicks: make(chan struct{}, 1), subs: map[*certSet]struct{}{}}
	if k.KeystorePath != "" {
		s.paths = []string{k.KeystorePath}
	} else {
		s.paths = []string{k.CertificateFile, k.PrivateKeyFile}
	}
	return s
}

// name says which files the source reads, for messages.
func (s *certSource) name() string {
	if s.key.KeystorePath != "" {
		return "keystore " + s.key.KeystorePath
	}
	return "certificate " + s.key.CertificateFile + " with key " + s.key.PrivateKeyFile
}

// kick makes the watcher check the files now.
func (s *certSource) kick() {
	select {
	case s.kicks <- struct{}{}:
	default:
	}
}

// lastError is the latest reload failure, or "".
func (s *certSource) lastError() string {
	if p := s.err.Load(); p != nil {
		return *p
	}
	return ""
}

// load reads the source's files and publishes the certificate.
func (s *certSource) load() error {
	var stats []os.FileInfo
	for _, p := range s.paths {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("loading %s: %w", s.name(), err)
		}
		stats = append(stats, st)
	}
	var cert tls.Certificate
	trusted := &trustedCAs{pool: x509.NewCertPool()}
	if s.key.KeystorePath != "" {
		ks, err := keystore.Open(context.Background(), host.LocalFile(s.key.KeystorePath), []byte(s.key.KeystorePassword))
		if err != nil {
			return err
		}
		if cert, err = ks.TLSCertificate(s.key.Alias, []byte(s.key.KeyPassword)); err != nil {
			return err
		}
		trusted = trustedOf(ks)
	} else {
		var err error
		if cert, err = keystore.LoadPEMPair(context.Background(), host.LocalFile(s.key.CertificateFile), host.LocalFile(s.key.PrivateKeyFile)); err != nil {
			return err
		}
	}
	s.stats = stats
	s.trusted.Store(trusted)
	s.loaded.Store(&cert)
	s.err.Store(nil)
	if s.stapler != nil {
		s.stapler.certificateChanged(&cert, trusted)
	}
	s.publish()
	return nil
}

// publish works out the served certificate from the loaded one and its
// staple, and tells the listeners' certificate sets when it changed.
func (s *certSource) publish() {
	s.pubMu.Lock()
	served := s.loaded.Load()
	if s.stapler != nil && served != nil {
		served = s.stapler.staple(served)
	}
	same := s.served.Swap(served) == served
	s.pubMu.Unlock()
	if same {
		return
	}
	s.subsMu.Lock()
	sets := slices.Collect(maps.Keys(s.subs))
	s.subsMu.Unlock()
	for _, set := range sets {
		set.rebuild()
	}
}

func (s *certSource) subscribe(set *certSet) {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	s.subs[set] = struct{}{}
}

func (s *certSource) unsubscribe(set *certSet) {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	delete(s.subs, set)
}

// trustedCAs is a keystore's trusted certificate entries as a pool.
type trustedCAs struct {
	pool  *x509.CertPool
	certs []*x509.Certificate
}

func trustedOf(ks *keystore.Keystore) *trustedCAs {
	t := &trustedCAs{pool: x509.NewCertPool()}
	for _, e := range ks.Entries() {
		if e.Kind == keystore.TrustedCertificate && len(e.Chain) > 0 {
			t.pool.AddCert(e.Chain[0])
			t.certs = append(t.certs, e.Chain[0])
		}
	}
	return t
}

// changed reports whether the source's files differ from when they were
// last loaded.
func (s *certSource) changed() (bool, error) {
	if len(s.stats) != len(s.paths) {
		return true, nil
	}
	for i, p := range s.paths {
		st, err := os.Stat(p)
		if err != nil {
			return true, err
		}
		old := s.stats[i]
		if !os.SameFile(st, old) || !st.ModTime().Equal(old.ModTime()) || st.Size() != old.Size() {
			return true, nil
		}
	}
	return false, nil
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
		changed, err := s.changed()
		if err == nil && !changed {
			continue
		}
		if err == nil {
			err = s.load()
		}
		if err != nil {
			msg := err.Error()
			if old := s.err.Swap(&msg); old == nil || *old != msg {
				log.Error("certificate reload failed; the previous certificate keeps serving", "source", s.name(), "err", err)
			}
			continue
		}
		log.Info("certificate reloaded", "source", s.name(), "fingerprint", keystore.Fingerprint(s.loaded.Load().Leaf))
	}
}

// certCache shares certSources between listeners.
type certCache struct {
	mu      sync.Mutex
	sources map[sourceKey]*certSource
	poll    time.Duration
	log     *slog.Logger
	notify  dirNotifier
	ocsp    *ocspOptions
}

// acquire returns the source for c, loading it on first use. A source
// that cannot be loaded is an error and nothing is cached.
func (c *certCache) acquire(cert config.Certificate, staple bool) (*certSource, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := sourceKey{cert, staple}
	if s, ok := c.sources[k]; ok {
		s.refs++
		return s, nil
	}
	s := newCertSource(k)
	s.refs = 1
	if staple {
		s.stapler = newStapler(s, c.ocsp, c.log)
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	if c.sources == nil {
		c.sources = map[sourceKey]*certSource{}
	}
	c.sources[k] = s
	c.notify.add(s)
	go s.watch(c.poll, c.log)
	if s.stapler != nil {
		go s.stapler.run()
	}
	return s, nil
}

func (c *certCache) release(s *certSource) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.refs--
	if s.refs == 0 {
		c.notify.remove(s)
		close(s.stop)
		delete(c.sources, s.key)
	}
}
