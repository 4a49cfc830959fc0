package tlspolicy

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
)

// Sessions caches the TLS sessions of outbound connections for
// resumption (RFC 8446 section 2.2, RFC 5077), as Postfix's tlsmgr does
// for its SMTP client: a connection that resumes skips the certificate
// exchange and the signature of a full handshake, on both sides, which
// counts where connections to a destination come and go.
//
// Sessions are scoped: one is offered only to a connection to the same
// address under the same demands (level, pins, TLSA records) as the one
// that established it, so a session made under a weaker policy never
// stands in for a stronger one's handshake. Whatever is resumed, the
// policy's checks run again on the certificates the session carries
// (crypto/tls calls VerifyConnection on resumptions too, and refuses to
// resume an unverified session where verification is required).
type Sessions struct {
	cache tls.ClientSessionCache
}

// NewSessions returns a cache of at most capacity sessions, least
// recently used first out.
func NewSessions(capacity int) *Sessions {
	return &Sessions{cache: tls.NewLRUClientSessionCache(capacity)}
}

// For returns the cache a connection to addr under p uses; nil when s is
// nil (no resumption).
func (s *Sessions) For(p *Policy, addr string) tls.ClientSessionCache {
	if s == nil {
		return nil
	}
	return scopedSessions{cache: s.cache, scope: p.sessionScope() + "|" + addr + "|"}
}

type scopedSessions struct {
	cache tls.ClientSessionCache
	scope string
}

func (s scopedSessions) Get(key string) (*tls.ClientSessionState, bool) {
	return s.cache.Get(s.scope + key)
}

func (s scopedSessions) Put(key string, cs *tls.ClientSessionState) {
	s.cache.Put(s.scope+key, cs)
}

// sessionScope is a digest of what p demands of a peer.
func (p *Policy) sessionScope() string {
	h := sha256.New()
	fmt.Fprintf(h, "level %d\n", p.Level)
	for _, pin := range p.Pins {
		fmt.Fprintf(h, "pin %x\n", pin)
	}
	for _, r := range p.TLSA {
		fmt.Fprintf(h, "tlsa %d %d %d %x\n", r.Usage, r.Selector, r.MatchingType, r.Data)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
