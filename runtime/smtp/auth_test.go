package smtp

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/mailstack/terraform-provider-mailstack/runtime/authlimit"
)

func TestLoginServer(t *testing.T) {
	type exchange struct {
		response  []byte
		challenge string
		done      bool
		err       error
	}
	errBad := errors.New("bad")
	check := func(user, pass string) error {
		if user == "u" && pass == "p" {
			return nil
		}
		return errBad
	}
	tests := []struct {
		name  string
		steps []exchange
	}{
		{"challenges", []exchange{{nil, "Username:", false, nil}, {[]byte("u"), "Password:", false, nil}, {[]byte("p"), "", true, nil}}},
		{"username as initial response", []exchange{{[]byte("u"), "Password:", false, nil}, {[]byte("p"), "", true, nil}}},
		{"wrong password", []exchange{{[]byte("u"), "Password:", false, nil}, {[]byte("x"), "", true, errBad}}},
		{"empty initial response is an empty username", []exchange{{[]byte{}, "Password:", false, nil}, {[]byte("p"), "", true, errBad}}},
		{"response after done", []exchange{{[]byte("u"), "Password:", false, nil}, {[]byte("p"), "", true, nil}, {[]byte("more"), "", false, sasl.ErrUnexpectedClientResponse}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := &loginServer{authenticate: check}
			for i, st := range tc.steps {
				challenge, done, err := l.Next(st.response)
				if string(challenge) != st.challenge || done != st.done || !errors.Is(err, st.err) {
					t.Fatalf("step %d: got %q, %v, %v; want %q, %v, %v", i, challenge, done, err, st.challenge, st.done, st.err)
				}
			}
		})
	}
}

// Failed logins are paced by client address across connections: once the
// free failures are spent, a fresh connection does not start afresh, and
// after the block even the right password is answered 454 4.7.0 without
// being checked.
func TestAuthLimiterSpansConnections(t *testing.T) {
	const spacing = 150 * time.Millisecond
	p := authlimit.DefaultPolicy
	p.Free, p.Delay, p.MaxDelay, p.BlockAfter = 1, spacing, spacing, 4
	var mu sync.Mutex
	var events []authlimit.Event
	limiter := authlimit.New(p, func(_ string, e authlimit.Event) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	})
	ts := startServer(t, modeImplicit, Options{Submission: true, AuthLimiter: limiter})

	// The limiter spaces an attempt from the moment it recorded the
	// previous failure, which lies between sending that AUTH and its
	// reply: the sound lower bound runs from sending the previous AUTH.
	var prevSent time.Time
	try := func(password string) (reply string, sincePrev time.Duration) {
		c := dial(t, ts.addr, true)
		c.reply()
		c.cmd(ehlo)
		sent := time.Now()
		r := c.cmd("AUTH PLAIN " + plain("alice@example.com", password))
		sincePrev, prevSent = time.Since(prevSent), sent
		return r, sincePrev
	}
	try("wrong") // free
	if r, gap := try("wrong"); !strings.HasPrefix(r, "535 5.7.8") {
		t.Fatalf("second failure: %q after %v", r, gap)
	}
	for i := range 2 {
		if r, gap := try("wrong"); !strings.HasPrefix(r, "535 5.7.8") || gap < spacing {
			t.Fatalf("paced failure %d on a new connection: %q %v after the previous one was sent, want at least %v", i+1, r, gap, spacing)
		}
	}
	if r, _ := try(testPassword); !strings.HasPrefix(r, "454 4.7.0") {
		t.Fatalf("right password from a blocked address: %q", r)
	}
	// Refused unchecked (not checked and failed, nor waited for): the
	// limiter blocked the address at the fourth failure and refused the
	// next attempt outright.
	mu.Lock()
	defer mu.Unlock()
	want := []authlimit.Event{authlimit.Failed, authlimit.Failed, authlimit.Failed, authlimit.Failed, authlimit.Blocked, authlimit.Refused}
	if !slices.Equal(events, want) {
		t.Errorf("limiter events %v, want %v", events, want)
	}
}
