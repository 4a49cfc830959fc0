package store

import (
	"fmt"
	"testing"
	"time"
)

func TestAuthCache(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := NewAuthCache(time.Hour, 3)
	c.now = func() time.Time { return now }
	c.Remember("a@example.com", "$hash1", "pw")
	for _, tc := range []struct {
		name          string
		addr, phc, pw string
		advance       time.Duration
		want          bool
	}{
		{"hit", "a@example.com", "$hash1", "pw", 0, true},
		{"wrong password", "a@example.com", "$hash1", "pw2", 0, false},
		{"password changed (new hash)", "a@example.com", "$hash2", "pw", 0, false},
		{"other user", "b@example.com", "$hash1", "pw", 0, false},
		{"expired", "a@example.com", "$hash1", "pw", time.Hour + time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func(saved time.Time) { now = saved }(now)
			now = now.Add(tc.advance)
			if got := c.Verified(tc.addr, tc.phc, tc.pw); got != tc.want {
				t.Fatalf("Verified = %v, want %v", got, tc.want)
			}
		})
	}
	for i := range 10 {
		c.Remember(fmt.Sprintf("u%d@example.com", i), "$h", "pw")
	}
	if n := len(c.entries); n > 3 {
		t.Fatalf("%d entries, bounded at 3", n)
	}
	c.Remember("a@example.com", "$hash1", "pw")
	c.Forget("a@example.com")
	if c.Verified("a@example.com", "$hash1", "pw") {
		t.Fatal("Forget kept the entry")
	}
}

// TestAuthenticateCached checks that a login that succeeded is not hashed
// again, and that a password change or a wrong password still is.
func TestAuthenticateCached(t *testing.T) {
	s, _ := newTestStore(t, "a@example.com")
	if err := s.Authenticate("a@EXAMPLE.com", "secret-a@example.com"); err != nil {
		t.Fatal(err)
	}
	rec, _ := s.userRecord("a@example.com")
	if !s.passwords.cache.Verified("a@example.com", rec.Hash, "secret-a@example.com") {
		t.Fatal("a successful login was not remembered")
	}
	if err := s.Authenticate("a@example.com", "wrong"); err != ErrAuthFailed {
		t.Fatalf("wrong password after a cached login: %v", err)
	}
	if err := s.PutUser("a@example.com", "new", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Authenticate("a@example.com", "secret-a@example.com"); err != ErrAuthFailed {
		t.Fatalf("old password after a change: %v", err)
	}
}
