package imap

import (
	"errors"

	"github.com/emersion/go-imap/v2"

	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
)

var errInternal = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeServerBug, Text: "Internal server error"}

// errAuthRefused answers a login from an address the AUTH limiter refuses:
// UNAVAILABLE (RFC 5530), not AUTHENTICATIONFAILED, so that a client does
// not ask its user for a new password.
var errAuthRefused = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable,
	Text: "Too many failed logins from your address, try again later"}

var errReadOnly = &imap.Error{Type: imap.StatusResponseTypeNo, Code: "READ-ONLY", Text: "Mailbox is open read-only (EXAMINE)"}

// imapError turns a store error into the IMAP response a client can act
// on; anything unexpected is logged and answered with [SERVERBUG] so that
// no internal detail reaches the client. notFound is the code for a missing
// mailbox: NONEXISTENT, or TRYCREATE for APPEND, COPY and MOVE targets
// (RFC 9051 7.1).
func (s *session) imapError(err error, notFound imap.ResponseCode) error {
	var imapErr *imap.Error
	switch {
	case errors.As(err, &imapErr):
		return imapErr
	case errors.Is(err, store.ErrNotFound):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: notFound, Text: "No such mailbox"}
	case errors.Is(err, store.ErrExists):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "Mailbox already exists"}
	case errors.Is(err, store.ErrHasChildren):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeHasChildren, Text: "Mailbox has children; delete them first"}
	case errors.Is(err, store.ErrInvalidMailbox):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Not allowed for this mailbox name"}
	case errors.Is(err, store.ErrSpecialUse):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: responseCodeUseAttr, Text: "This special use is not supported"}
	case errors.Is(err, store.ErrQuotaExceeded):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeOverQuota, Text: "Mailbox quota exceeded"}
	case errors.Is(err, store.ErrClosed):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Server shutting down"}
	}
	s.log.Error("imap command failed", "remote", s.remote.String(), "user", s.user, "err", err)
	return errInternal
}
