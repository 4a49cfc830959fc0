package store

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id cost parameters of new password hashes.
type Argon2Params struct {
	// Time is the number of passes over memory.
	Time uint32
	// MemoryKiB is the memory used per hash, in KiB.
	MemoryKiB uint32
	// Threads is the degree of parallelism.
	Threads uint8
}

// DefaultArgon2 is one of OWASP's argon2id configurations of equal strength
// (m=7 MiB, t=5, p=1; the cheat sheet's m=19 MiB, t=2 is another): about
// 16 ms per login on one core here (BenchmarkPasswordHash), a little less
// than m=19 MiB, t=2, and under half the memory. Every login's hash memory
// is garbage at once, and a burst of logins leaves it resident until Go
// returns it to the system, so the smaller one keeps the runtime's memory
// (1,000 IMAP sessions: docs/benchmarks.md) well under its target.
var DefaultArgon2 = Argon2Params{Time: 5, MemoryKiB: 7 * 1024, Threads: 1}

func (p Argon2Params) withDefaults() Argon2Params {
	if p == (Argon2Params{}) {
		return DefaultArgon2
	}
	return p
}

const (
	saltLen = 16
	keyLen  = 32
)

// maxConcurrentHashes bounds memory: each argon2 run holds MemoryKiB.
func maxConcurrentHashes() int {
	return max(2, runtime.GOMAXPROCS(0))
}

// Passwords hashes and checks the passwords of a store's users, the same
// way in every implementation of Backend: argon2id with a bounded number
// of hashes at once (each holds Argon2.MemoryKiB), unknown users checked
// against a dummy hash of the same cost so that they take as long as a
// wrong password, and recent successful logins remembered in an AuthCache.
type Passwords struct {
	argon Argon2Params
	// dummy is verified for unknown users.
	dummy string
	// slots bounds concurrent argon2 computations.
	slots chan struct{}
	cache *AuthCache
}

// NewPasswords returns a Passwords that makes new hashes with p (the zero
// value means DefaultArgon2).
func NewPasswords(p Argon2Params) (*Passwords, error) {
	pw := &Passwords{
		argon: p.withDefaults(),
		slots: make(chan struct{}, maxConcurrentHashes()),
		cache: NewAuthCache(DefaultAuthCacheTTL, DefaultAuthCacheSize),
	}
	var err error
	if pw.dummy, err = hashPassword("dummy password for unknown users", pw.argon); err != nil {
		return nil, err
	}
	return pw, nil
}

// NewUser checks PutUser's arguments (the same in every store) and hashes
// the password: the user's canonical address and the hash to store.
func (pw *Passwords) NewUser(address, password string, quotaBytes int64) (addr, hash string, err error) {
	if addr, err = CanonicalAddress(address); err != nil {
		return "", "", err
	}
	if password == "" {
		return "", "", fmt.Errorf("user %s: empty password", addr)
	}
	if quotaBytes < 0 {
		return "", "", fmt.Errorf("user %s: negative quota", addr)
	}
	hash, err = pw.Hash(password)
	return addr, hash, err
}

// Hash returns the PHC string of a new password.
func (pw *Passwords) Hash(password string) (string, error) {
	pw.slots <- struct{}{}
	defer func() { <-pw.slots }()
	return hashPassword(password, pw.argon)
}

// Check verifies password against phc, the stored hash of the canonical
// address addr; phc "" means there is no such user. Unknown users and
// wrong passwords both fail with ErrAuthFailed, in the same time.
func (pw *Passwords) Check(addr, phc, password string) error {
	known := phc != ""
	if known && pw.cache.Verified(addr, phc, password) {
		return nil
	}
	if !known {
		phc = pw.dummy
	}
	pw.slots <- struct{}{}
	ok, err := verifyPassword(phc, password)
	<-pw.slots
	if err != nil {
		return fmt.Errorf("checking password: %w", err)
	}
	if !ok || !known {
		return ErrAuthFailed
	}
	pw.cache.Remember(addr, phc, password)
	return nil
}

// Forget drops what the login cache holds for addr (a deleted user).
func (pw *Passwords) Forget(addr string) { pw.cache.Forget(addr) }

// hashPassword returns the PHC string of password:
// $argon2id$v=19$m=<KiB>,t=<time>,p=<threads>$<salt>$<hash> (unpadded base64).
func hashPassword(password string, p Argon2Params) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("reading random salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// verifyPassword reports whether password matches the PHC string phc, in
// time that does not depend on where they differ.
func verifyPassword(phc, password string) (bool, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, fmt.Errorf("unsupported password hash format")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, fmt.Errorf("unsupported argon2 version %q", parts[2])
	}
	var p Argon2Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil {
		return false, fmt.Errorf("parsing argon2 parameters: %w", err)
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, fmt.Errorf("decoding salt: %w", err)
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil {
		return false, fmt.Errorf("decoding hash: %w", err)
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
