package smtp

import (
	"errors"
	"io"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailstack/terraform-provider-mailstack/runtime/authlimit"
)

// maxAuthFailures failed logins end a connection with 421 4.7.0 (RFC 5321
// section 3.8). How fast a client address may try passwords at all, over
// any number of connections and protocols, is the AuthLimiter's business.
const maxAuthFailures = 5

// AuthMechanisms implements go-smtp's AuthSession. go-smtp advertises them
// only where AUTH is allowed: over TLS, or with AllowInsecureAuth, which
// this narrows to loopback clients (none listed means no AUTH offered).
func (s *session) AuthMechanisms() []string {
	if !s.srv.opts.Submission || s.clearTextFromNetwork() {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

// Auth implements go-smtp's AuthSession (RFC 4954). go-smtp has already
// refused AUTH without TLS (523 5.7.10) unless AllowInsecureAuth is set;
// with it, AUTH in clear text is refused the same way to any client but a
// loopback one, before a mechanism reads the credentials.
func (s *session) Auth(mech string) (sasl.Server, error) {
	if !s.srv.opts.Submission {
		return nil, replyAuthNotOffered
	}
	if s.clearTextFromNetwork() {
		s.log.Warn("clear-text AUTH refused: only loopback clients may log in without TLS", "remote", s.remote)
		return nil, replyTLSRequired
	}
	switch mech {
	case sasl.Plain:
		return saslReplies{sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				return replyAuthzDenied
			}
			return s.authenticate(username, password)
		})}, nil
	case sasl.Login:
		return saslReplies{&loginServer{authenticate: s.authenticate}}, nil
	}
	return nil, gosmtp.ErrAuthUnknownMechanism
}

// clearTextFromNetwork reports a connection without TLS from a client that
// is not on loopback: credentials sent on it could be read on the way.
func (s *session) clearTextFromNetwork() bool {
	return s.tls == "" && !s.clientIP.IsLoopback()
}

// authenticate checks a login with the backend, once the client's address
// may try again, and records the authenticated address.
func (s *session) authenticate(username, password string) error {
	if err := s.srv.limiter.Wait(s.srv.ctx, s.srv.protocol(), s.clientIP); err != nil {
		if errors.Is(err, authlimit.ErrRefused) {
			s.log.Warn("login refused: too many failures from this address", "user", username, "remote", s.remote)
			return replyAuthRefused
		}
		return replyAuthTempFailure
	}
	err := s.srv.opts.Backend.Authenticate(s.srv.ctx, username, password)
	s.srv.limiter.Done(s.srv.protocol(), s.clientIP, errors.Is(err, ErrAuthFailed))
	switch {
	case err == nil:
		s.user = username
		return nil
	case errors.Is(err, ErrAuthFailed):
		return s.authFailed(username)
	}
	s.log.Error("checking login", "user", username, "remote", s.remote, "error", err)
	return replyAuthTempFailure
}

// authFailed counts a failed login and hangs up after maxAuthFailures of
// them on one connection.
func (s *session) authFailed(username string) error {
	s.authFailures++
	s.log.Warn("login failed", "user", username, "remote", s.remote, "failures", s.authFailures)
	if s.authFailures >= maxAuthFailures {
		// go-smtp cannot close a connection after its reply, so this
		// reply is written here and the connection closed under it.
		nc := s.conn.Conn()
		nc.SetWriteDeadline(time.Now().Add(s.srv.opts.WriteTimeout))
		io.WriteString(nc, "421 4.7.0 Too many failed login attempts, closing connection\r\n")
		s.conn.Close()
	}
	return replyAuthFailed
}

// saslReplies turns the errors of a SASL exchange that are not already
// SMTP replies (malformed responses) into 501 5.5.2 instead of go-smtp's
// 454 with the internal error text.
type saslReplies struct{ sasl.Server }

func (r saslReplies) Next(response []byte) (challenge []byte, done bool, err error) {
	challenge, done, err = r.Server.Next(response)
	if _, ok := err.(*gosmtp.SMTPError); err != nil && !ok {
		err = replyAuthMalformed
	}
	return challenge, done, err
}

// loginServer is the server side of the LOGIN mechanism
// (draft-murchison-sasl-login), which go-sasl implements for clients only.
// The username may come as the initial response.
type loginServer struct {
	authenticate func(username, password string) error
	username     []byte
	step         int
}

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch l.step {
	case 0:
		l.step++
		if response == nil {
			return []byte("Username:"), false, nil
		}
		fallthrough
	case 1:
		l.step = 2
		l.username = response
		return []byte("Password:"), false, nil
	case 2:
		l.step++
		return nil, true, l.authenticate(string(l.username), string(response))
	}
	return nil, false, sasl.ErrUnexpectedClientResponse
}
