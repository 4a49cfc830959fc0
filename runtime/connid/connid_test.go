package connid

import (
	"crypto/tls"
	"net"
	"testing"
)

type named struct {
	net.Conn
	id string
}

func (n named) SessionID() string { return n.id }

type wrapper struct{ net.Conn }

func (w wrapper) NetConn() net.Conn { return w.Conn }

func TestOf(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	n := named{Conn: a, id: "abc"}
	for _, tc := range []struct {
		name string
		c    net.Conn
		want string
	}{
		{"named", n, "abc"},
		{"TLS over named", tls.Server(n, &tls.Config{}), "abc"},
		{"wrapper over TLS over named", wrapper{tls.Server(n, &tls.Config{})}, "abc"},
		{"unnamed", a, ""},
		{"TLS over unnamed", tls.Client(a, &tls.Config{}), ""},
		{"nil", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Of(tc.c); got != tc.want {
				t.Errorf("Of = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNewIsUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 10000 {
		id := New()
		if len(id) != 12 || seen[id] {
			t.Fatalf("id %q (len %d, seen %v)", id, len(id), seen[id])
		}
		seen[id] = true
	}
}
