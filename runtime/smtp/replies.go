package smtp

import (
	"errors"

	gosmtp "github.com/emersion/go-smtp"
)

// Replies this package sends. go-smtp finds *SMTPError values by type
// assertion, so they are returned as they are, never wrapped.
var (
	// RFC 5321 section 3.6.2 and 4.2.2; RFC 3463 X.7.1.
	replyRelayDenied = &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 7, 1},
		Message: "Relaying denied: the recipient's domain is not served here"}
	// Submission of a server without outbound delivery, or before AUTH
	// (RFC 6409 section 3.3 allows the refusal).
	replyRelayNotSupported = &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 7, 1},
		Message: "Relaying denied: only recipients in local domains are accepted here"}
	// RFC 3463 X.1.1.
	replyNoSuchUser = &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1},
		Message: "No such user here"}
	// RFC 3463 X.2.2.
	replyQuotaExceeded = &gosmtp.SMTPError{Code: 552, EnhancedCode: gosmtp.EnhancedCode{5, 2, 2},
		Message: "Mailbox full"}
	// RFC 3463 X.3.0: the cause stays in the log.
	replyTempFailure = &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0},
		Message: "Temporary failure, please try again later"}
	// RFC 5321 section 4.5.3.1.6 (go-smtp allows twice the 1000 octets).
	replyLineTooLong = &gosmtp.SMTPError{Code: 500, EnhancedCode: gosmtp.EnhancedCode{5, 5, 2},
		Message: "Line too long"}
	// RFC 4954 section 6.
	replyAuthRequired = &gosmtp.SMTPError{Code: 530, EnhancedCode: gosmtp.EnhancedCode{5, 7, 0},
		Message: "Authentication required"}
	// RFC 6409 section 6.1; RFC 3463 X.7.1.
	replySenderNotOwned = &gosmtp.SMTPError{Code: 553, EnhancedCode: gosmtp.EnhancedCode{5, 7, 1},
		Message: "Sender address must be the authenticated address"}
	// RFC 4954 section 6.
	replyAuthTempFailure = &gosmtp.SMTPError{Code: 454, EnhancedCode: gosmtp.EnhancedCode{4, 7, 0},
		Message: "Temporary authentication failure"}
	// RFC 4954 section 6: the client's address tried too many wrong
	// passwords; it is not told whether this one was right.
	replyAuthRefused = &gosmtp.SMTPError{Code: 454, EnhancedCode: gosmtp.EnhancedCode{4, 7, 0},
		Message: "Too many failed logins from your address, try again later"}
	// RFC 4954 section 4: a response that cannot be decoded.
	replyAuthMalformed = &gosmtp.SMTPError{Code: 501, EnhancedCode: gosmtp.EnhancedCode{5, 5, 2},
		Message: "Malformed authentication data"}
	// RFC 4954 section 6 (535 5.7.8).
	replyAuthFailed = gosmtp.ErrAuthFailed
	// RFC 4616 section 2: proxy authorization is not supported.
	replyAuthzDenied = &gosmtp.SMTPError{Code: 535, EnhancedCode: gosmtp.EnhancedCode{5, 7, 8},
		Message: "Authorization identity must be empty or the username"}
	// RFC 4954 section 4: AUTH not advertised (MX).
	replyAuthNotOffered = &gosmtp.SMTPError{Code: 502, EnhancedCode: gosmtp.EnhancedCode{5, 5, 1},
		Message: "AUTH is not offered here; use the submission service"}
	// replyTLSRequired is go-smtp's own answer to AUTH before TLS (RFC
	// 4954 section 6), with the reason.
	replyTLSRequired = &gosmtp.SMTPError{Code: 523, EnhancedCode: gosmtp.EnhancedCode{5, 7, 10},
		Message: "TLS is required; clear-text AUTH is accepted only from loopback"}
)

// rcptReply maps a Backend.CheckRecipient error to the client's reply; ok
// is false for errors worth logging.
func rcptReply(err error, submission bool) (reply *gosmtp.SMTPError, ok bool) {
	switch {
	case errors.Is(err, ErrUnknownRecipient):
		return replyNoSuchUser, true
	case errors.Is(err, ErrRelayDenied) && submission:
		return replyRelayNotSupported, true
	case errors.Is(err, ErrRelayDenied):
		return replyRelayDenied, true
	}
	return replyTempFailure, false
}

// deliverReply maps a Backend.Deliver error to the client's reply; ok is
// false for errors worth logging.
func deliverReply(err error) (reply *gosmtp.SMTPError, ok bool) {
	if errors.Is(err, ErrQuotaExceeded) {
		return replyQuotaExceeded, true
	}
	return replyTempFailure, false
}
