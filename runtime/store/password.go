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
