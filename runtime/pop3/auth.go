package pop3

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-sasl"

	"github.com/mailstack/terraform-provider-mailstack/runtime/authlimit"
	"github.com/mailstack/terraform-provider-mailstack/runtime/connid"
)

// maxAuthFailures failed logins end a session. How fast a client address
// may try passwords at all, over any number of connections and protocols,
// is the AuthLimiter's business.
const maxAuthFailures = 3

// errInsecureAuth is the reply to credentials on a connection without TLS,
// with the [AUTH] code of RFC 3206 section 4 (as Dovecot answers).
const errInsecureAuth = "-ERR [AUTH] plaintext authentication disallowed on non-secure connection"

// authAllowed reports whether credentials may cross this connection: only
// over TLS, or from a loopback client on a listener without STLS that
// explicitly allows it (RFC 2595 section 2.3: a server implementing STLS
// refuses clear-text logins until TLS is active; and, as Dovecot's
// disable_plaintext_auth, never in clear from the network).
func (s *session) authAllowed() bool {
	return s.isTLS || (s.srv.opts.TLSConfig == nil && s.srv.opts.AllowInsecureAuth && s.clientIP.IsLoopback())
}

// stlsOffered reports whether STLS is available now (RFC 2595 section 4:
// AUTHORIZATION state only, and not over TLS already).
func (s *session) stlsOffered() bool {
	return s.srv.opts.TLSConfig != nil && !s.isTLS && s.state == stateAuthorization
}

// cmdCAPA is RFC 2449 section 5. USER and SASL are announced only when
// credentials would be accepted: a listener offering STLS lists them only
// after it (RFC 2595 section 4: capabilities may differ after STLS, and
// section 6: PLAIN is not advertised without TLS). Capabilities of the
// AUTHORIZATION state are announced in TRANSACTION too, as section 5
// requires.
func (s *session) cmdCAPA(arg string) error {
	if arg != "" {
		return s.bad("-ERR CAPA takes no arguments")
	}
	s.reply("+OK capability list follows")
	s.reply("TOP")
	s.reply("UIDL")
	s.reply("RESP-CODES")
	s.reply("AUTH-RESP-CODE")
	s.reply("PIPELINING")
	if s.authAllowed() {
		s.reply("USER")
		s.reply("SASL PLAIN")
	}
	if s.stlsOffered() {
		s.reply("STLS")
	}
	s.reply("IMPLEMENTATION mailstack")
	s.reply(".")
	return nil
}

// cmdSTLS is RFC 2595 section 4. After "+OK" the TLS handshake starts on
// the raw connection. Whatever the client sent after STLS and before the
// handshake is still in the read buffer, and is discarded rather than run
// as if it had come over TLS (CVE-2011-0411). Nothing else said before TLS
// needs forgetting: on a listener offering STLS no command before it
// changes the session's state (USER is refused).
func (s *session) cmdSTLS(arg string) error {
	switch {
	case s.srv.opts.TLSConfig == nil:
		return s.bad("-ERR unknown command")
	case s.isTLS:
		return s.bad("-ERR command not permitted when TLS active")
	case arg != "":
		return s.bad("-ERR STLS takes no arguments")
	}
	s.reply("+OK begin TLS negotiation")
	if err := s.w.Flush(); err != nil {
		return err
	}
	tc := tls.Server(s.raw, s.srv.opts.TLSConfig)
	if err := s.handshake(tc); err != nil {
		return err
	}
	s.r.Reset(tc) // drops the pipelined plain-text input
	s.out.conn = tc
	return nil
}

// cmdUSER is RFC 1939 section 7. The name is not checked here, so the
// reply does not reveal whether the user exists.
func (s *session) cmdUSER(arg string) error {
	if !s.authAllowed() {
		return s.bad(errInsecureAuth)
	}
	if arg == "" {
		return s.bad("-ERR usage: USER name")
	}
	s.pendingUser = arg
	s.reply("+OK send PASS")
	return nil
}

// cmdPASS is RFC 1939 section 7. The argument is the rest of the line,
// spaces included.
func (s *session) cmdPASS(arg string) error {
	if !s.authAllowed() {
		return s.bad(errInsecureAuth)
	}
	if s.pendingUser == "" {
		return s.bad("-ERR send USER first")
	}
	user := s.pendingUser
	s.pendingUser = ""
	return s.login(user, arg)
}

// cmdAUTH is RFC 5034 section 4 with the PLAIN mechanism of RFC 4616: an
// optional initial response ("=" for an empty one), else an empty "+ "
// challenge; "*" cancels; undecodable base64 is rejected.
func (s *session) cmdAUTH(arg string) error {
	if !s.authAllowed() {
		return s.bad(errInsecureAuth)
	}
	args := strings.Fields(arg)
	if len(args) == 0 || len(args) > 2 {
		return s.bad("-ERR usage: AUTH mechanism [initial-response]")
	}
	if !strings.EqualFold(args[0], sasl.Plain) {
		return s.bad("-ERR unsupported SASL mechanism")
	}

	var authz, user, pass string
	mech := sasl.NewPlainServer(func(identity, username, password string) error {
		authz, user, pass = identity, username, password
		return nil
	})
	var resp []byte // nil: no initial response
	if len(args) == 2 {
		var ok bool
		if resp, ok = decodeSASL(args[1]); !ok {
			return s.bad("-ERR invalid base64 in initial response")
		}
	}
	for {
		challenge, done, err := mech.Next(resp)
		if err != nil {
			// A malformed PLAIN message counts as a failed login.
			s.srv.limiter.Failed("pop3", s.clientIP)
			return s.authFailed()
		}
		if done {
			break
		}
		s.reply("+ " + base64.StdEncoding.EncodeToString(challenge))
		line, err := s.readLine()
		if err != nil {
			s.readFailed(err)
			return err
		}
		if line == "*" {
			s.reply("-ERR authentication cancelled")
			return nil
		}
		var ok bool
		if resp, ok = decodeSASL(line); !ok {
			return s.bad("-ERR invalid base64 in response")
		}
	}
	// Logging in as someone else (proxy authorization) is not supported.
	if authz != "" && authz != user {
		s.srv.limiter.Failed("pop3", s.clientIP)
		return s.authFailed()
	}
	return s.login(user, pass)
}

// decodeSASL decodes a client's SASL response; "=" is the empty response.
func decodeSASL(s string) ([]byte, bool) {
	if s == "=" {
		return []byte{}, true
	}
	b, err := base64.StdEncoding.DecodeString(s)
	return b, err == nil
}

// login asks the backend for the maildrop, once the client's address may
// try again, and enters TRANSACTION (RFC 1939 section 4), answering with
// the response codes of RFC 2449 section 8 and RFC 3206.
func (s *session) login(user, pass string) error {
	if err := s.srv.limiter.Wait(s.ctx, "pop3", s.clientIP); err != nil {
		if !errors.Is(err, authlimit.ErrRefused) {
			return err // the session is ending
		}
		s.srv.logger.Warn("login refused: too many failures from this address", connid.Key, s.id, "remote", s.raw.RemoteAddr().String())
		// SYS/TEMP, not AUTH: the client must not ask for a new password.
		s.reply("-ERR [SYS/TEMP] too many failed logins from your address, try again later")
		return nil
	}
	if user == "" || pass == "" {
		s.srv.limiter.Done("pop3", s.clientIP, true)
		return s.authFailed()
	}
	drop, err := s.srv.opts.Backend.Login(s.ctx, user, pass)
	s.srv.limiter.Done("pop3", s.clientIP, errors.Is(err, ErrAuthFailed))
	switch {
	case errors.Is(err, ErrAuthFailed):
		return s.authFailed()
	case errors.Is(err, ErrMaildropLocked):
		s.reply("-ERR [IN-USE] maildrop is locked by another session")
		return nil
	case err != nil:
		if s.ctx.Err() != nil {
			return s.ctx.Err()
		}
		s.internal(fmt.Errorf("login %q: %w", user, err))
		s.reply("-ERR [SYS/TEMP] temporary failure, try again later")
		return nil
	}
	msgs, err := drop.Messages()
	if err == nil {
		err = checkMessages(msgs)
	}
	if err != nil {
		if cerr := drop.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		s.internal(fmt.Errorf("listing maildrop of %q: %w", user, err))
		s.reply("-ERR [SYS/TEMP] maildrop not available, try again later")
		return nil
	}
	s.state = stateTransaction
	s.user = user
	s.drop = drop
	s.msgs = msgs
	s.deleted = make([]bool, len(msgs))
	n, size := s.dropStat()
	s.replyf("+OK maildrop has %d messages (%d octets)", n, size)
	return nil
}

// checkMessages rejects listings that would break the protocol.
func checkMessages(msgs []Message) error {
	for i, m := range msgs {
		if !validUID(m.UID) {
			return fmt.Errorf("message %d: invalid unique-id %q", i+1, m.UID)
		}
		if m.Size < 0 {
			return fmt.Errorf("message %d: negative size %d", i+1, m.Size)
		}
	}
	return nil
}

// authFailed answers a failed login (the caller has told the AUTH limiter)
// and ends the session after maxAuthFailures.
func (s *session) authFailed() error {
	s.authFailures++
	if s.authFailures >= maxAuthFailures {
		s.reply("-ERR [AUTH] invalid credentials, too many failures")
		return errQuit
	}
	s.reply("-ERR [AUTH] invalid credentials")
	return nil
}
