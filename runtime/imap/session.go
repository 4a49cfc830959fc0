package imap

import (
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailstack/terraform-provider-mailstack/runtime/authlimit"
	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
	"github.com/mailstack/terraform-provider-mailstack/third_party/go-imap/imapserver"
)

// session is one IMAP connection. imapserver calls its methods one at a
// time (Idle runs alone until DONE), so it needs no lock of its own.
type session struct {
	srv    *Server
	conn   *imapserver.Conn
	log    *slog.Logger // the server's, with the connection's session id
	remote net.Addr
	start  time.Time

	user   string    // canonical address once logged in
	sel    *selected // the selected mailbox, or nil
	notify *notifier // NOTIFY's, once set
}

var (
	_ imapserver.Session             = (*session)(nil)
	_ imapserver.SessionInsecureAuth = (*session)(nil)
	_ imapserver.SessionIMAP4rev2    = (*session)(nil)
	_ imapserver.SessionAppendLimit  = (*session)(nil)
)

// Close ends the session and logs it.
func (s *session) Close() error {
	if s.notify != nil {
		s.notify.close()
		s.notify = nil
	}
	if s.sel != nil {
		s.sel.close()
		s.sel = nil
	}
	s.log.Info("imap session", "remote", s.remote.String(), "user", s.user, "duration", time.Since(s.start).Round(time.Millisecond))
	s.srv.sessions.Done()
	return nil
}

// Login checks the password with the store once the client's address may
// try again (the AUTH limiter paces failures across connections and
// protocols). Failures never say whether the user exists.
func (s *session) Login(username, password string) error {
	ip := authlimit.ClientIP(s.remote)
	if err := s.srv.limiter.Wait(s.srv.ctx, "imap", ip); err != nil {
		if errors.Is(err, authlimit.ErrRefused) {
			s.log.Warn("imap login refused: too many failures from this address", "remote", s.remote.String())
			return errAuthRefused
		}
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Server shutting down"}
	}
	err := s.srv.store.Authenticate(username, password)
	s.srv.limiter.Done("imap", ip, errors.Is(err, store.ErrAuthFailed))
	if err != nil {
		if !errors.Is(err, store.ErrAuthFailed) {
			s.log.Error("imap login", "remote", s.remote.String(), "err", err)
			return errInternal
		}
		s.log.Info("imap login failed", "remote", s.remote.String())
		return imapserver.ErrAuthFailed
	}
	s.user, _ = store.CanonicalAddress(username)
	return nil
}

// InsecureAuthAllowed implements imapserver.SessionInsecureAuth: where
// imapserver cannot tell TLS (behind a coalescingConn, Options.InsecureAuth
// set) a connection of an implicit-TLS server is TLS; on a clear-text
// listener only a loopback client may log in, any other is told
// LOGINDISABLED and refused with PRIVACYREQUIRED.
func (s *session) InsecureAuthAllowed() bool {
	return s.srv.implicitTLS || authlimit.ClientIP(s.remote).IsLoopback()
}

// AppendLimit advertises and enforces Options.MaxLiteralSize.
func (s *session) AppendLimit() uint32 { return s.srv.limit }

// Namespace reports one personal namespace with '/' as delimiter.
func (s *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Delim: store.Delimiter}}}, nil
}
