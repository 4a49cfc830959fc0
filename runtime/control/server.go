package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/errkind"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

// Backend is the runtime as the control API sees it. Its methods return
// their parts' errors as they are: the errkind kind an error carries
// (NotFound, Invalid, Conflict, Upstream) selects the HTTP status, and its
// text is the answer's message.
type Backend interface {
	Status() Status
	Server() config.Server
	// SetServer replaces the server settings; live listeners pick them up.
	SetServer(ctx context.Context, s config.Server) error
	// Listener returns one listener's settings and status, or an error
	// wrapping errkind.NotFound.
	Listener(id string) (ListenerObject, error)
	// PutListener creates or changes a listener and returns when it is live.
	PutListener(ctx context.Context, id string, l config.Listener) (ListenerObject, error)
	// DeleteListener stops a listener and frees its port.
	DeleteListener(ctx context.Context, id string) error
	// User returns a user, or an error wrapping errkind.NotFound.
	User(address string) (UserObject, error)
	// PutUser creates a user or changes their password and quota.
	PutUser(ctx context.Context, address string, req UserRequest) (UserObject, error)
	// DeleteUser removes a user; their mail stays on disk.
	DeleteUser(ctx context.Context, address string) error
}

// PasswordChecker is an optional Backend feature, detected by type
// assertion: it lets the provider see a password changed behind its back
// as drift. The answer must take the same time for unknown users and
// wrong passwords; a user that does not exist is an error wrapping
// errkind.NotFound.
type PasswordChecker interface {
	CheckPassword(ctx context.Context, address, password string) (bool, error)
}

// maxBody bounds request bodies; configs are small.
const maxBody = 1 << 20

// Handler serves the control API for b.
func Handler(b Backend, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	h := &handler{b: b, log: log}
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.Status())
	})
	mux.HandleFunc("GET /v1/server", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, redactServer(b.Server()))
	})
	mux.HandleFunc("PUT /v1/server", h.putServer)
	mux.HandleFunc("GET /v1/listeners/{id}", h.getListener)
	mux.HandleFunc("PUT /v1/listeners/{id}", h.putListener)
	mux.HandleFunc("DELETE /v1/listeners/{id}", h.deleteListener)
	mux.HandleFunc("GET /v1/users/{address}", h.getUser)
	mux.HandleFunc("PUT /v1/users/{address}", h.putUser)
	mux.HandleFunc("DELETE /v1/users/{address}", h.deleteUser)
	mux.HandleFunc("POST /v1/users/{address}/password-check", h.checkPassword)
	if ab, ok := b.(ACMEBackend); ok {
		h.acmeRoutes(mux, ab)
	}
	if ob, ok := b.(OutboundBackend); ok {
		h.outboundRoutes(mux, ob)
	}
	return mux
}

type handler struct {
	b   Backend
	log *slog.Logger
}

func (h *handler) putServer(w http.ResponseWriter, r *http.Request) {
	var s config.Server
	if !h.decode(w, r, &s) {
		return
	}
	if err := h.b.SetServer(r.Context(), s); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, redactServer(h.b.Server()))
}

func (h *handler) getListener(w http.ResponseWriter, r *http.Request) {
	obj, err := h.b.Listener(r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, redact(obj))
}

func (h *handler) putListener(w http.ResponseWriter, r *http.Request) {
	var l config.Listener
	if !h.decode(w, r, &l) {
		return
	}
	obj, err := h.b.PutListener(r.Context(), r.PathValue("id"), l)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, redact(obj))
}

func (h *handler) deleteListener(w http.ResponseWriter, r *http.Request) {
	if err := h.b.DeleteListener(r.Context(), r.PathValue("id")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) getUser(w http.ResponseWriter, r *http.Request) {
	u, err := h.b.User(r.PathValue("address"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

func (h *handler) putUser(w http.ResponseWriter, r *http.Request) {
	var req UserRequest
	if !h.decode(w, r, &req) {
		return
	}
	u, err := h.b.PutUser(r.Context(), r.PathValue("address"), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

func (h *handler) deleteUser(w http.ResponseWriter, r *http.Request) {
	if err := h.b.DeleteUser(r.Context(), r.PathValue("address")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) checkPassword(w http.ResponseWriter, r *http.Request) {
	pc, ok := h.b.(PasswordChecker)
	if !ok {
		writeJSON(w, http.StatusNotImplemented, &Error{Message: "this runtime cannot check passwords"})
		return
	}
	var req PasswordCheck
	if !h.decode(w, r, &req) {
		return
	}
	match, err := pc.CheckPassword(r.Context(), r.PathValue("address"), req.Password)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, PasswordCheckResult{Match: match})
}

// fail answers a failed request with err's text and the status its kind
// gives it (statusOf).
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	h.log.Warn("control request failed", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	writeJSON(w, code, &Error{Message: err.Error()})
}

// redactServer blanks the secrets in answers: the relay password and the
// PostgreSQL connection string (which may hold a password).
func redactServer(s config.Server) config.Server {
	s.PostgresDSN = ""
	if s.Relay != nil && s.Relay.Password != "" {
		r := *s.Relay
		r.Password = ""
		s.Relay = &r
	}
	return s
}

func redact(obj ListenerObject) ListenerObject {
	obj.Config.TLS = obj.Config.TLS.Redacted()
	return obj
}

// decode reads a request body strictly into v; a body that does not
// decode is answered as invalid.
func (h *handler) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := config.DecodeStrict(io.LimitReader(r.Body, maxBody), v); err != nil {
		h.fail(w, r, errkind.With(errkind.Invalid, err))
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Listen opens the control socket at path with mode 0600. A socket file
// left by a dead runtime is replaced; one that still answers is an error.
func Listen(path string) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another runtime is serving it", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing stale control socket: %w", err)
	}
	// The umask makes the socket 0600 from its creation on, so there is no
	// moment in which others could connect.
	old := umask(0o177)
	ln, err := net.Listen("unix", path)
	umask(old)
	if err != nil {
		return nil, fmt.Errorf("opening control socket: %w", err)
	}
	return ln, nil
}
