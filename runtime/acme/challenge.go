package acme

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/mailstack/terraform-provider-mailstack/internal/errkind"
)

// challengeServers shares challenge listeners between managers: one socket
// per address, bound while some manager uses it.
type challengeServers struct {
	log *slog.Logger

	mu      sync.Mutex
	servers map[string]*challengeServer
}

// acquire returns the listener for typ on addr, binding it if no manager
// uses it yet. Release it when done.
func (r *challengeServers) acquire(typ, addr string) (*challengeServer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.servers[addr]; ok {
		if s.typ != typ {
			return nil, errkind.With(ErrConflict, fmt.Errorf("challenge_address %s already answers %s challenges for another ACME keystore; %s needs its own address", addr, s.typ, typ))
		}
		s.refs++
		return s, nil
	}
	s, err := listenChallenge(typ, addr, r.log)
	if err != nil {
		return nil, err
	}
	if r.servers == nil {
		r.servers = map[string]*challengeServer{}
	}
	r.servers[addr] = s
	return s, nil
}

func (r *challengeServers) release(s *challengeServer) {
	if s == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s.refs--
	if s.refs == 0 {
		delete(r.servers, s.addr)
		s.close()
	}
}

// challengeServer answers http-01 or tls-alpn-01 challenges on one socket,
// for the tokens presented to it and no others: a request for any other
// name or path gets nothing (404, or a failed handshake).
type challengeServer struct {
	typ, addr string
	log       *slog.Logger
	ln        net.Listener
	refs      int // guarded by challengeServers.mu
	done      chan struct{}
	http      *http.Server // http-01

	mu     sync.RWMutex
	tokens map[string]httpToken        // http-01: request path -> answer
	certs  map[string]*tls.Certificate // tls-alpn-01: domain -> challenge certificate
	// busy holds a domain while one order validates it here: two
	// tls-alpn-01 validations of one name cannot share the socket.
	busy map[string]chan struct{}
}

type httpToken struct{ domain, keyAuth string }

func listenChallenge(typ, addr string, log *slog.Logger) (*challengeServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, errkind.With(ErrConflict, fmt.Errorf("cannot bind challenge_address %s for %s challenges: %w", addr, typ, err))
	}
	s := &challengeServer{
		typ: typ, addr: addr, log: log, ln: ln, refs: 1, done: make(chan struct{}),
		tokens: map[string]httpToken{}, certs: map[string]*tls.Certificate{}, busy: map[string]chan struct{}{},
	}
	switch typ {
	case ChallengeHTTP01:
		s.http = &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			defer close(s.done)
			if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("ACME challenge listener stopped", "address", addr, "err", err)
			}
		}()
	case ChallengeTLSALPN01:
		go s.serveTLSALPN()
	}
	log.Info("ACME challenge listener bound", "address", ln.Addr().String(), "challenge", typ)
	return s, nil
}

// Addr is the bound address.
func (s *challengeServer) Addr() string { return s.ln.Addr().String() }

func (s *challengeServer) close() {
	if s.http != nil {
		s.http.Close()
	} else {
		s.ln.Close()
	}
	<-s.done
	s.log.Info("ACME challenge listener closed", "address", s.addr)
}

func (s *challengeServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	tok, ok := s.tokens[r.URL.Path]
	s.mu.RUnlock()
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if !ok || r.Method != http.MethodGet || !strings.EqualFold(strings.TrimSuffix(host, "."), tok.domain) {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(tok.keyAuth))
}

func (s *challengeServer) serveTLSALPN() {
	defer close(s.done)
	cfg := &tls.Config{
		NextProtos:     []string{acme.ALPNProto},
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.alpnCertificate,
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Error("ACME challenge listener stopped", "address", s.addr, "err", err)
			}
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// RFC 8737 section 3: the CA only completes the handshake.
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			tc := tls.Server(c, cfg)
			_ = tc.Handshake()
			tc.Close()
		}()
	}
}

func (s *challengeServer) alpnCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if !slices.Equal(hello.SupportedProtos, []string{acme.ALPNProto}) {
		return nil, errors.New("this port only answers ACME tls-alpn-01 challenges")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c, ok := s.certs[strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("no tls-alpn-01 challenge pending for %q", hello.ServerName)
}

// present makes the listener answer chal for domain until the returned
// cleanup runs.
func (s *challengeServer) present(ctx context.Context, client *acme.Client, chal *acme.Challenge, domain string) (cleanup func(), err error) {
	switch chal.Type {
	case ChallengeHTTP01:
		keyAuth, err := client.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			return nil, err
		}
		path := client.HTTP01ChallengePath(chal.Token)
		s.mu.Lock()
		s.tokens[path] = httpToken{domain: domain, keyAuth: keyAuth}
		s.mu.Unlock()
		return func() {
			s.mu.Lock()
			delete(s.tokens, path)
			s.mu.Unlock()
		}, nil
	case ChallengeTLSALPN01:
		cert, err := client.TLSALPN01ChallengeCert(chal.Token, domain)
		if err != nil {
			return nil, err
		}
		if err := s.hold(ctx, domain); err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.certs[domain] = &cert
		s.mu.Unlock()
		return func() {
			s.mu.Lock()
			delete(s.certs, domain)
			busy := s.busy[domain]
			delete(s.busy, domain)
			s.mu.Unlock()
			close(busy)
		}, nil
	}
	return nil, fmt.Errorf("challenge type %q is not answered by this runtime", chal.Type)
}

// hold waits until no other order validates domain on this listener and
// claims it.
func (s *challengeServer) hold(ctx context.Context, domain string) error {
	for {
		s.mu.Lock()
		busy, ok := s.busy[domain]
		if !ok {
			s.busy[domain] = make(chan struct{})
			s.mu.Unlock()
			return nil
		}
		s.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return fmt.Errorf("waiting for another order validating %s on %s: %w", domain, s.addr, ctx.Err())
		}
	}
}
