package pop3

import (
	"context"
	"errors"
	"io"
)

// Backend authenticates users and opens their maildrop.
type Backend interface {
	// Login checks the credentials and opens (and locks) the user's
	// maildrop. It returns ErrAuthFailed for bad credentials and
	// ErrMaildropLocked if another session holds it (wrap or return those
	// values; check with errors.Is). ctx is canceled when the session is
	// forced closed.
	Login(ctx context.Context, username, password string) (Maildrop, error)
}

// Maildrop is one user's locked maildrop for the length of a session.
type Maildrop interface {
	// Messages returns the messages present at login, in order. It is
	// called once, right after Login.
	Messages() ([]Message, error)
	// Open returns a message's content, with CRLF line endings as stored.
	Open(uid string) (io.ReadCloser, error)
	// Commit is the UPDATE state (RFC 1939 section 6): it durably removes
	// the messages with these UIDs. It is called once, when the client
	// sends QUIT in the TRANSACTION state, possibly with an empty list;
	// sessions that end any other way never call it.
	Commit(deleteUIDs []string) error
	// Close releases the lock. It is called exactly once per successful
	// Login, after Commit if Commit was called.
	Close() error
}

// Message describes one message in a maildrop.
type Message struct {
	// UID is the message's unique-id for UIDL: unique in the maildrop,
	// stable across sessions, 1 to 70 characters in the range 0x21 to 0x7E
	// (RFC 1939 section 7). A listing that breaks the syntax is refused.
	UID string
	// Size is the exact size in octets of the content Open returns.
	Size int64
}

var (
	// ErrAuthFailed is returned by Backend.Login for bad credentials. The
	// client gets -ERR [AUTH] after a delay.
	ErrAuthFailed = errors.New("pop3: authentication failed")
	// ErrMaildropLocked is returned by Backend.Login when another session
	// holds the maildrop. The client gets -ERR [IN-USE].
	ErrMaildropLocked = errors.New("pop3: maildrop locked by another session")
)
