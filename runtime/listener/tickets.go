package listener

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

// ticketKeyRotation is how long a session ticket key encrypts new tickets;
// it then only decrypts, for as long as the longest ticket lifetime.
const ticketKeyRotation = 24 * time.Hour

// ticketKeys are a server's session ticket keys, shared by all its
// listeners so that a ticket from one port resumes on another (a client
// that reads mail over IMAP on 993 and sends over submission on 465 does
// one full handshake, not two). A new key takes over every
// ticketKeyRotation; old keys are kept, to decrypt only, until no ticket
// they sealed can still be valid. Keys live in memory only: a restarted
// runtime starts over with full handshakes.
//
// The listeners' tls.Config seal and open tickets through WrapSession and
// UnwrapSession with these keys (AES-256-GCM, the key id as additional
// data) rather than crypto/tls's own per-Config keys, which a Config
// cloned for client CAs would not share, and so that each listener can
// enforce its own ticket lifetime: the ticket carries when it was issued.
type ticketKeys struct {
	mu   sync.Mutex                   // serializes rotation
	keys atomic.Pointer[[]*ticketKey] // newest first; the slice is never changed
	now  func() time.Time
}

type ticketKey struct {
	id      [4]byte
	aead    cipher.AEAD
	created time.Time
}

// Sealed ticket layout: key id, nonce, then sealed (issued-at, state).
const (
	ticketIDLen    = 4
	ticketNonceLen = 12
	ticketIssued   = 8
)

func newTicketKeys() *ticketKeys { return &ticketKeys{now: time.Now} }

// current returns the key that seals new tickets, rotating when it is due.
func (r *ticketKeys) current() (*ticketKey, error) {
	now := r.now()
	if keys := r.keys.Load(); keys != nil && now.Sub((*keys)[0].created) < ticketKeyRotation {
		return (*keys)[0], nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var keys []*ticketKey
	if p := r.keys.Load(); p != nil {
		keys = *p
		if now.Sub(keys[0].created) < ticketKeyRotation {
			return keys[0], nil
		}
	}
	k, err := newTicketKey(now)
	if err != nil {
		return nil, err
	}
	next := []*ticketKey{k}
	for _, old := range keys {
		// A key sealed tickets until the next took over; those can be
		// valid for at most MaxSessionTicketLifetime after that.
		if now.Sub(old.created) < ticketKeyRotation+config.MaxSessionTicketLifetime {
			next = append(next, old)
		}
	}
	r.keys.Store(&next)
	return k, nil
}

func newTicketKey(now time.Time) (*ticketKey, error) {
	var secret [32]byte
	k := &ticketKey{created: now}
	if _, err := rand.Read(secret[:]); err != nil {
		return nil, err
	}
	if _, err := rand.Read(k.id[:]); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(secret[:])
	if err != nil {
		return nil, err
	}
	if k.aead, err = cipher.NewGCM(block); err != nil {
		return nil, err
	}
	return k, nil
}

// find returns the key with id, nil if it is gone.
func (r *ticketKeys) find(id []byte) *ticketKey {
	p := r.keys.Load()
	if p == nil {
		return nil
	}
	i := slices.IndexFunc(*p, func(k *ticketKey) bool { return string(k.id[:]) == string(id) })
	if i < 0 {
		return nil
	}
	return (*p)[i]
}

// wrap seals sessions into tickets with the current key.
func (r *ticketKeys) wrap(_ tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	state, err := ss.Bytes()
	if err != nil {
		return nil, err
	}
	k, err := r.current()
	if err != nil {
		return nil, err
	}
	head := ticketIDLen + ticketNonceLen
	out := make([]byte, head, head+ticketIssued+len(state)+k.aead.Overhead())
	copy(out, k.id[:])
	if _, err := rand.Read(out[ticketIDLen:head]); err != nil {
		return nil, err
	}
	plain := make([]byte, ticketIssued, ticketIssued+len(state))
	binary.BigEndian.PutUint64(plain, uint64(r.now().Unix()))
	plain = append(plain, state...)
	return k.aead.Seal(out, out[ticketIDLen:head], plain, out[:ticketIDLen]), nil
}

// unwrapper opens tickets issued at most lifetime ago. A ticket it cannot
// use (unknown or retired key, tampered, expired) means a full handshake:
// (nil, nil), never an error, which would end the connection.
func (r *ticketKeys) unwrapper(lifetime time.Duration) func([]byte, tls.ConnectionState) (*tls.SessionState, error) {
	return func(ticket []byte, _ tls.ConnectionState) (*tls.SessionState, error) {
		head := ticketIDLen + ticketNonceLen
		if len(ticket) < head+ticketIssued+16 {
			return nil, nil
		}
		k := r.find(ticket[:ticketIDLen])
		if k == nil {
			return nil, nil
		}
		plain, err := k.aead.Open(nil, ticket[ticketIDLen:head], ticket[head:], ticket[:ticketIDLen])
		if err != nil || len(plain) < ticketIssued {
			return nil, nil
		}
		issued := time.Unix(int64(binary.BigEndian.Uint64(plain)), 0)
		if age := r.now().Sub(issued); age < -time.Minute || age > lifetime {
			return nil, nil
		}
		ss, err := tls.ParseSessionState(plain[ticketIssued:])
		if err != nil {
			return nil, nil
		}
		return ss, nil
	}
}

// apply sets cfg's session resumption as l says.
func (r *ticketKeys) apply(cfg *tls.Config, l config.Listener) {
	if !l.TicketsOn() {
		cfg.SessionTicketsDisabled = true
		return
	}
	cfg.WrapSession = r.wrap
	cfg.UnwrapSession = r.unwrapper(l.TLS.TicketLifetime())
}
