package store

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"
)

// AuthCache remembers recent successful password verifications, as
// Dovecot's auth_cache does, so that a client that logs in again and again
// (mobile clients, IMAP clients with several connections) pays for the
// password hash once per TTL instead of at every login. The hash stays as
// strong as configured: only logins that already succeeded are
// remembered, wrong passwords always take the full hash, and changing a
// password makes its entries useless at once.
//
// An entry holds an HMAC of the stored hash and the password under a
// random key of this process, never the password; it expires after TTL.
// The zero value is not usable; use NewAuthCache.
type AuthCache struct {
	key [32]byte
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[string]authEntry
}

type authEntry struct {
	mac     [sha256.Size]byte
	expires time.Time
}

// DefaultAuthCacheTTL is how long a successful login is remembered: an
// hour, Dovecot's auth_cache_ttl.
const DefaultAuthCacheTTL = time.Hour

// DefaultAuthCacheSize bounds the entries (about 100 bytes each).
const DefaultAuthCacheSize = 100_000

// NewAuthCache returns a cache of at most max entries that live for ttl.
func NewAuthCache(ttl time.Duration, max int) *AuthCache {
	c := &AuthCache{ttl: ttl, max: max, now: time.Now, entries: make(map[string]authEntry)}
	if _, err := rand.Read(c.key[:]); err != nil {
		panic("store: reading random key: " + err.Error()) // crypto/rand never fails on Linux
	}
	return c
}

func (c *AuthCache) mac(addr, phc, password string) [sha256.Size]byte {
	h := hmac.New(sha256.New, c.key[:])
	for _, s := range []string{addr, phc, password} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// Verified reports whether password was verified against the stored hash
// phc of addr within the TTL.
func (c *AuthCache) Verified(addr, phc, password string) bool {
	want := c.mac(addr, phc, password)
	c.mu.Lock()
	e, ok := c.entries[addr]
	c.mu.Unlock()
	return ok && c.now().Before(e.expires) && hmac.Equal(e.mac[:], want[:])
}

// Remember records that password matched phc for addr.
func (c *AuthCache) Remember(addr, phc, password string) {
	e := authEntry{mac: c.mac(addr, phc, password), expires: c.now().Add(c.ttl)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[addr]; !ok && len(c.entries) >= c.max {
		now := c.now()
		for k, old := range c.entries {
			if now.After(old.expires) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries { // still full: drop any one
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[addr] = e
}

// Forget drops addr's entry (a deleted user).
func (c *AuthCache) Forget(addr string) {
	c.mu.Lock()
	delete(c.entries, addr)
	c.mu.Unlock()
}
