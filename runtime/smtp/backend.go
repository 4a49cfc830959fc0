package smtp

import (
	"context"
	"errors"
)

// Backend is what the front end needs from the mail store. Its methods are
// called concurrently from many sessions. Addresses are as the client sent
// them, without angle brackets, and may hold UTF-8 (SMTPUTF8, RFC 6531).
type Backend interface {
	// CheckRecipient reports whether mail for address is accepted here: nil,
	// or an error wrapping ErrUnknownRecipient (known local domain, no such
	// user -> 550 5.1.1) or ErrRelayDenied (not a local domain -> 550 5.7.1,
	// never an open relay). Any other error is answered 451 4.3.0.
	CheckRecipient(ctx context.Context, address string) error

	// Deliver stores body for every recipient and returns only when it is
	// durable (fsynced); the 250 to DATA follows its nil return. An error
	// wrapping ErrQuotaExceeded -> 552 5.2.2; anything else -> 451 4.3.0
	// with no internal detail to the client.
	//
	// body starts with the Received: header this package adds and keeps the
	// CRLF line endings as received, with dot-stuffing undone. body and
	// recipients are reused for the session's next message: Deliver must
	// not retain them after it returns.
	Deliver(ctx context.Context, from string, recipients []string, body []byte) error

	// Authenticate checks a submission login; an error wrapping ErrAuthFailed
	// for bad credentials (535 5.7.8). Any other error is answered 454 4.7.0.
	Authenticate(ctx context.Context, username, password string) error
}

// Relayer is an optional [Backend] feature, detected by type assertion: a
// backend that can send mail to other domains. With it, the submission
// service (and only it: the MX service never relays) accepts recipients
// the backend answers ErrRelayDenied for, from authenticated users, and
// hands messages that have such recipients to Submit instead of Deliver.
type Relayer interface {
	// Submit stores body for the local recipients and queues it for the
	// others, returning only when all of that is durable (fsynced); the
	// 250 to DATA follows its nil return. user is the authenticated
	// address the message comes from; body, as for Deliver, starts with
	// the Received: header and must not be retained. Errors map to replies
	// as Deliver's do.
	Submit(ctx context.Context, user, from string, recipients []string, body []byte) error
}

// Errors a [Backend] wraps to choose the reply the client gets.
var (
	// ErrUnknownRecipient means the domain is local but the user does not
	// exist.
	ErrUnknownRecipient = errors.New("unknown recipient")
	// ErrRelayDenied means the recipient's domain is not a local domain.
	ErrRelayDenied = errors.New("relay denied")
	// ErrQuotaExceeded means a recipient's mailbox is full.
	ErrQuotaExceeded = errors.New("quota exceeded")
	// ErrAuthFailed means the username or the password is wrong.
	ErrAuthFailed = errors.New("authentication failed")
)
