package acme

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/atomicfile"
	"github.com/mailstack/terraform-provider-mailstack/internal/errkind"
)

// Dir is the folder of ACME state in a runtime's state directory: one
// subfolder per ACME keystore id, holding its config, status, ACME account
// key and cached certificate.
const Dir = "acme"

// Options configure a Service. StateDir is the only required field.
type Options struct {
	// StateDir is the runtime's state directory; the Service keeps its
	// state under StateDir/acme/<id>/ (mode 0700).
	StateDir string
	// Logger receives issuance, renewal and challenge listener events;
	// nil means slog.Default().
	Logger *slog.Logger
	// ObtainTimeout bounds one attempt to get a certificate, from the
	// directory lookup to the keystore write; zero means 5 minutes. A Put
	// waits at most this long (or until its context is done).
	ObtainTimeout time.Duration
	// RetryInterval is the wait after a failed renewal; it doubles with
	// each further failure up to an hour. Zero means one minute.
	RetryInterval time.Duration
	// LockRoot is the provider's state directory on this host (the parent
	// of the server's own): the keystores' lock files go under its
	// host.LockDir (host.LockPathFor), where the provider takes the same
	// locks, instead of beside the keystores. Empty puts them beside.
	LockRoot string
	// CheckInterval is how often a manager looks at its keystore when no
	// renewal is due, writing the certificate back if the entry was changed
	// outside the runtime; zero means one hour.
	CheckInterval time.Duration
}

// Service keeps the runtime's ACME keystores, each by an id the caller
// chooses (see ValidID and IDFor). Its methods are safe for concurrent
// use; changes to one id are serialized, different ids proceed in
// parallel.
type Service struct {
	opts    Options
	log     *slog.Logger
	dir     string
	servers *challengeServers

	mu       sync.Mutex
	managers map[string]*manager
	claims   map[string]string // keystore entry (see claimKey) -> id
	locks    map[string]*sync.Mutex
	closed   bool
}

// New returns a Service with no ACME keystores running; Start resumes the
// ones saved in the state directory.
func New(opts Options) (*Service, error) {
	if opts.StateDir == "" {
		return nil, errors.New("acme: Options.StateDir is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ObtainTimeout == 0 {
		opts.ObtainTimeout = 5 * time.Minute
	}
	if opts.RetryInterval == 0 {
		opts.RetryInterval = time.Minute
	}
	if opts.CheckInterval == 0 {
		opts.CheckInterval = time.Hour
	}
	dir := filepath.Join(opts.StateDir, Dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating ACME state folder: %w", err)
	}
	return &Service{
		opts:     opts,
		log:      opts.Logger,
		dir:      dir,
		servers:  &challengeServers{log: opts.Logger},
		managers: map[string]*manager{},
		claims:   map[string]string{},
		locks:    map[string]*sync.Mutex{},
	}, nil
}

// Start resumes every ACME keystore saved in the state directory by an
// earlier run, without waiting for the CA: each binds its challenge
// listener, checks its keystore and renews in the background. A saved
// config that no longer loads is logged and skipped; a listener that
// cannot bind shows in that keystore's status and is retried.
func (s *Service) Start() {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		s.log.Error("reading ACME state folder", "err", err)
		return
	}
	for _, e := range entries {
		id := e.Name()
		if !e.IsDir() || !ValidID(id) {
			continue
		}
		cfg, err := loadConfig(filepath.Join(s.dir, id, configFile))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			s.log.Error("ACME keystore not resumed: its saved config does not load", "id", id, "err", err)
			continue
		}
		m, err := newManager(id, cfg, filepath.Join(s.dir, id), &s.opts, s.servers)
		if err != nil {
			s.log.Error("ACME keystore not resumed", "id", id, "err", err)
			continue
		}
		s.mu.Lock()
		if s.closed || s.managers[id] != nil {
			s.mu.Unlock()
			continue
		}
		s.managers[id] = m
		s.claims[claimKey(cfg)] = id
		m.start(0)
		s.mu.Unlock()
		s.log.Info("ACME keystore resumed", "id", id, "domains", cfg.Domains, "keystore", cfg.KeystorePath)
	}
}

// Put creates or changes the ACME keystore id and returns when the
// keystore holds a certificate for cfg: at once if it already does (a
// current certificate issued for the same domains, key kind and
// directory), else after the CA issued one. Then the keystore is renewed
// in the background.
//
// If anything fails nothing changes: the keystore file is left as it was,
// a new id is not created, and a changed one keeps its previous config.
func (s *Service) Put(ctx context.Context, id string, cfg Config) (Status, error) {
	return s.PutKeeping(ctx, id, cfg, "")
}

// PutKeeping is Put for a caller that knows the certificate with SHA-256
// fingerprint keep (keytool's notation) was issued for cfg: if the
// keystore entry still holds it and it is current (Config.Current), it is
// kept even when the Service has no record of it (its acme/<id>/ folder
// lost), instead of ordering a new one. The provider passes the
// certificate in its state when it repairs a runtime that forgot the
// keystore.
func (s *Service) PutKeeping(ctx context.Context, id string, cfg Config, keep string) (Status, error) {
	if !ValidID(id) {
		return Status{}, errkind.With(ErrInvalid, fmt.Errorf("ACME keystore id %q: want 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", id))
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return Status{}, errkind.With(ErrInvalid, fmt.Errorf("ACME keystore %q: %w", id, err))
	}
	unlock := s.lock(id)
	defer unlock()

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return Status{}, errors.New("ACME service is shut down")
	}
	old := s.managers[id]
	claim := claimKey(cfg)
	if other, ok := s.claims[claim]; ok && other != id {
		s.mu.Unlock()
		return Status{}, errkind.With(ErrConflict, fmt.Errorf("ACME keystore %q: alias %q of keystore %s is already kept by ACME keystore %q", id, cfg.Alias, cfg.KeystorePath, other))
	}
	_, claimed := s.claims[claim]
	s.claims[claim] = id
	s.mu.Unlock()
	unclaim := func() {
		if !claimed {
			s.mu.Lock()
			delete(s.claims, claim)
			s.mu.Unlock()
		}
	}

	if old != nil && old.cfg.equal(cfg) {
		// Same config: make sure the keystore holds the certificate.
		err := old.sync(ctx, keep)
		return old.Status(), err
	}
	if err := checkKeystore(ctx, cfg); err != nil {
		unclaim()
		return Status{}, errkind.With(ErrInvalid, fmt.Errorf("ACME keystore %q: %w", id, err))
	}
	m, err := newManager(id, cfg, filepath.Join(s.dir, id), &s.opts, s.servers)
	if err != nil {
		unclaim()
		return Status{}, err
	}
	rollback := func() {
		m.releaseChallenge()
		unclaim()
		if old != nil {
			old.start(0)
		} else {
			os.RemoveAll(m.dir)
		}
	}
	if old != nil {
		old.halt()
		if old.cfg.ChallengeAddress == cfg.ChallengeAddress && old.cfg.Challenge != cfg.Challenge {
			// The address changes challenge type: free it first. On
			// failure the old manager binds it again when it resumes.
			old.releaseChallenge()
		}
	}
	chal, err := s.servers.acquire(cfg.Challenge, cfg.ChallengeAddress)
	if err != nil {
		rollback()
		return Status{}, fmt.Errorf("ACME keystore %q: %w", id, err)
	}
	m.chal = chal
	if err := m.sync(ctx, keep); err != nil {
		rollback()
		return Status{}, err
	}
	if err := saveConfig(filepath.Join(m.dir, configFile), cfg); err != nil {
		rollback()
		return Status{}, err
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		m.releaseChallenge()
		return m.Status(), nil
	}
	s.managers[id] = m
	if old != nil && claimKey(old.cfg) != claim {
		delete(s.claims, claimKey(old.cfg))
	}
	s.mu.Unlock()
	if old != nil {
		old.releaseChallenge()
	}
	st := m.Status()
	m.start(min(time.Until(st.NextRenewal), s.opts.CheckInterval))
	s.log.Info("ACME keystore saved", "id", id, "domains", cfg.Domains, "keystore", cfg.KeystorePath, "alias", cfg.Alias, "fingerprint", st.Fingerprint)
	return st, nil
}

// Get returns the ACME keystore id's config, without its secrets, and its
// status.
func (s *Service) Get(id string) (Config, Status, error) {
	s.mu.Lock()
	m := s.managers[id]
	s.mu.Unlock()
	if m == nil {
		return Config{}, Status{}, errkind.With(ErrNotFound, fmt.Errorf("ACME keystore %q does not exist", id))
	}
	return m.cfg.Redacted(), m.Status(), nil
}

// Statuses returns every ACME keystore's status by id.
func (s *Service) Statuses() map[string]Status {
	s.mu.Lock()
	ms := make(map[string]*manager, len(s.managers))
	for id, m := range s.managers {
		ms[id] = m
	}
	s.mu.Unlock()
	out := make(map[string]Status, len(ms))
	for id, m := range ms {
		out[id] = m.Status()
	}
	return out
}

// Delete stops renewing the ACME keystore id, frees its challenge listener
// (unless another keystore uses it) and removes its state: account key,
// cached certificate, config. The keystore file and its entry stay.
func (s *Service) Delete(ctx context.Context, id string) error {
	unlock := s.lock(id)
	defer unlock()
	s.mu.Lock()
	m := s.managers[id]
	if m == nil {
		s.mu.Unlock()
		return errkind.With(ErrNotFound, fmt.Errorf("ACME keystore %q does not exist", id))
	}
	delete(s.managers, id)
	delete(s.claims, claimKey(m.cfg))
	s.mu.Unlock()
	m.halt()
	m.releaseChallenge()
	if err := os.RemoveAll(m.dir); err != nil {
		return fmt.Errorf("removing ACME state of %q: %w", id, err)
	}
	s.log.Info("ACME keystore deleted", "id", id, "keystore", m.cfg.KeystorePath)
	return nil
}

// Close stops every renewal loop (cancelling attempts in flight) and
// closes the challenge listeners. The saved state stays for the next
// Start.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	ids := make([]string, 0, len(s.managers))
	for id := range s.managers {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		unlock := s.lock(id) // waits for a Put in flight
		s.mu.Lock()
		m := s.managers[id]
		delete(s.managers, id)
		s.mu.Unlock()
		if m != nil {
			m.halt()
			m.releaseChallenge()
		}
		unlock()
	}
}

// lock serializes changes to one id.
func (s *Service) lock(id string) func() {
	s.mu.Lock()
	l, ok := s.locks[id]
	if !ok {
		l = &sync.Mutex{}
		s.locks[id] = l
	}
	s.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// claimKey names the keystore entry an ACME keystore owns.
func claimKey(cfg Config) string {
	return filepath.Clean(cfg.KeystorePath) + "\x00" + strings.ToLower(cfg.Alias)
}

func loadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("decoding %s: %w", path, err)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

func saveConfig(path string, cfg Config) error {
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(data, '\n'), 0o600)
}
