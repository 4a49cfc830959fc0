package smtp

import (
	"errors"
	"testing"

	"github.com/emersion/go-sasl"
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
