// Package pop3 is the runtime's POP3 front end: a server for RFC 1939 with the
// RFC 2449 extension mechanism (CAPA, response codes, PIPELINING), RFC 2595
// STLS and RFC 5034 SASL AUTH with the PLAIN mechanism.
//
// The package owns the protocol and nothing else. The listener manager owns
// the sockets and TLS: it hands Serve a listener whose connections are
// *tls.Conn for implicit-TLS ports, and sets Options.TLSConfig for STLS ports.
// A Backend authenticates users and opens their maildrop; the package never
// touches the store directly.
//
// Security rules the server keeps:
//   - On a connection without TLS, credentials are refused (-ERR [AUTH]) and
//     neither USER nor SASL is advertised, unless the listener offers no STLS
//     and Options.AllowInsecureAuth is set (RFC 2595 sections 2.3 and 6), and
//     even then from loopback clients only (Dovecot's disable_plaintext_auth).
//   - After STLS, anything the client pipelined before the TLS handshake is
//     discarded (the STARTTLS command-injection class, CVE-2011-0411).
//   - Failed logins are answered after a delay that grows with each failure,
//     and the connection is closed after a few of them.
//   - Every command line must arrive within the idle timeout and fit a bounded
//     buffer; a client that stops reading is dropped after the same timeout.
//   - One line is logged per session with log/slog; passwords never are.
package pop3
