// Package smtp is the mail runtime's SMTP front end: the MX service (RFC 5321,
// ports 25/465) and the message submission service (RFC 6409, ports 587/465),
// built on github.com/emersion/go-smtp.
//
// It owns the protocol only. The listener manager owns sockets and TLS (an
// implicit-TLS listener yields *tls.Conn values that are handshaken before
// the greeting, so a plain-text client gets no greeting); the store behind
// [Backend] owns recipients, users and durability.
//
// MX (Options.Submission false) accepts mail for the recipients the backend
// accepts and refuses everything else with 550 5.1.1 or 550 5.7.1, so it is
// never an open relay. AUTH is not offered on MX: an MX has no use for it,
// and offering it only invites password guessing on port 25.
//
// Submission (Options.Submission true) requires AUTH PLAIN or LOGIN before
// MAIL, offers and accepts AUTH only over TLS (RFC 3207 section 4, RFC 4954
// section 4) unless Options.AllowInsecureAuth is set on a listener without
// TLS, where it offers and accepts AUTH in clear text from loopback clients
// only (as Dovecot's disable_plaintext_auth does), and requires the sender to be the authenticated address: in MAIL FROM
// (RFC 6409 section 6.1) and in every From and Sender header field (RFC 6409
// section 8; 550 5.7.1 otherwise). Recipients in other domains are accepted
// from authenticated users when the backend is a [Relayer], which then takes
// the message; without one they are refused with 550 5.7.1.
//
// A message is read into a pooled buffer bounded by Options.MaxMessageBytes,
// a Received: header (RFC 5321 section 4.4) is put in front of it and the
// whole is handed to [Backend.Deliver] as one []byte in the session's own
// goroutine; the client gets 250 only after Deliver returns nil. (BDAT, from
// CHUNKING which go-smtp always advertises, reaches the same path through a
// pipe and a goroutine go-smtp starts per message; the usual clients send
// DATA.)
//
// Failed logins are answered after a delay that doubles per failure on the
// connection (0.5 s up to 4 s); the fifth is answered with 421 4.7.0 and the
// connection is closed. Logs go to log/slog: one line per delivery and one
// per connection, never a password or a message body.
package smtp
