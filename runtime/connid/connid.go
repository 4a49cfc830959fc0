// Package connid names connections for the logs. The listener gives every
// connection it accepts a session id, and the protocol front ends put it on
// every log line about that connection ("session" in the runtime's JSON
// log), so one client's lines can be picked out of many:
//
//	jq 'select(.session == "3f9c0a1be47d")' runtime.log
package connid

import (
	"crypto/tls"
	"encoding/hex"
	"math/rand/v2"
	"net"
)

// Key is the log attribute that holds a session id.
const Key = "session"

// New returns a fresh session id: 12 hex digits, random, so that ids do
// not repeat across restarts the way a counter would.
func New() string {
	var b [6]byte
	v := rand.Uint64()
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return hex.EncodeToString(b[:])
}

// Named is a connection that carries its session id.
type Named interface {
	SessionID() string
}

// Of returns c's session id, looking through TLS and other wrappers that
// expose the connection beneath them with NetConn (as *tls.Conn does); ""
// when no layer has one.
func Of(c net.Conn) string {
	for c != nil {
		if n, ok := c.(Named); ok {
			return n.SessionID()
		}
		switch w := c.(type) {
		case *tls.Conn:
			c = w.NetConn()
		case interface{ NetConn() net.Conn }:
			c = w.NetConn()
		default:
			return ""
		}
	}
	return ""
}
