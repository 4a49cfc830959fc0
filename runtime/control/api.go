// Package control owns the runtime's control API: HTTP/JSON over a unix
// socket (mode 0600) in the server's state directory (runtime/statedir). The runtime serves it
// (Handler, Listen) and the provider drives it (Client). Each Terraform
// resource maps to one object here, so parallel applies never race on one
// document:
//
//	GET  /v1/status
//	GET  /v1/server            PUT /v1/server
//	GET  /v1/listeners/{id}    PUT /v1/listeners/{id}    DELETE /v1/listeners/{id}
//	GET  /v1/users/{address}   PUT /v1/users/{address}   DELETE /v1/users/{address}
//	POST /v1/users/{address}/password-check
//	GET  /v1/acme/{id}         PUT /v1/acme/{id}         DELETE /v1/acme/{id}
//	GET  /v1/queue             GET /v1/queue/{id}        DELETE /v1/queue/{id}
//	POST /v1/queue/{id}/retry
//	GET  /v1/dkim/{name}       PUT /v1/dkim/{name}       DELETE /v1/dkim/{name}
//
// A PUT returns only when the change is live: for a listener, the port is
// bound and serves the new certificate.
package control

import (
	"errors"
	"net/http"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/errkind"
	"github.com/mailstack/terraform-provider-mailstack/runtime/acme"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/supervise"
)

// Status is the answer to GET /v1/status.
type Status struct {
	Version   string                    `json:"version"`
	PID       int                       `json:"pid"`
	StartedAt time.Time                 `json:"started_at"`
	Uptime    string                    `json:"uptime"`
	Listeners map[string]ListenerStatus `json:"listeners"`
	// ExecutableSHA256 is the hex SHA-256 of the executable this process
	// runs (not of the file at its path, which an upgrade may already have
	// replaced), so a newer build shows as a change in plan.
	ExecutableSHA256 string `json:"executable_sha256,omitempty"`
	// Supervisor is the builtin supervisor's status (restarts, how the
	// last run ended, crash loop) when a live one supervises this process;
	// nil under systemd or with no supervisor.
	Supervisor *supervise.Status `json:"supervisor,omitempty"`
	// ACME is each ACME keystore's status by id: certificate, last
	// attempt, next renewal, last error.
	ACME map[string]acme.Status `json:"acme,omitempty"`
	// Queue summarises the outbound queue.
	Queue QueueSummary `json:"queue"`
}

// ListenerStatus is what one listener really does.
type ListenerStatus struct {
	// Address is the bound host:port; empty when not bound.
	Address  string `json:"address"`
	Protocol string `json:"protocol"`
	Mode     string `json:"mode"`
	Bound    bool   `json:"bound"`
	// CertificateFingerprint is the SHA-256 fingerprint of the served
	// leaf certificate, in keytool's notation; empty without TLS.
	CertificateFingerprint string    `json:"certificate_fingerprint,omitempty"`
	CertificateNotAfter    time.Time `json:"certificate_not_after,omitzero"`
	OpenConnections        int64     `json:"open_connections"`
	// LastError is the latest problem, such as a keystore that failed to
	// reload (the previous certificate keeps serving).
	LastError string `json:"last_error,omitempty"`
	// Certificates describes each certificate the listener serves, the
	// default (whose fingerprint is CertificateFingerprint) first.
	Certificates []CertificateStatus `json:"certificates,omitempty"`
}

// CertificateStatus is one certificate source of a listener.
type CertificateStatus struct {
	// Source names the keystore (and alias) or PEM files.
	Source string `json:"source"`
	// Names are the names it serves (DNS names, or the common name).
	Names       []string  `json:"names,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	NotAfter    time.Time `json:"not_after,omitzero"`
	// Served is false while handshakes do not get it: a certificate that
	// must be stapled without a good OCSP response.
	Served bool `json:"served"`
	// OCSP describes its stapling, "" when it names no responder.
	OCSP string `json:"ocsp,omitempty"`
	// LastError is why the latest reload failed (the previous certificate
	// keeps serving).
	LastError string `json:"last_error,omitempty"`
}

// ListenerObject is the answer to GET and PUT /v1/listeners/{id}. Secrets in
// Config are redacted in answers.
type ListenerObject struct {
	ID     string          `json:"id"`
	Config config.Listener `json:"config"`
	Status ListenerStatus  `json:"status"`
}

// UserRequest is the body of PUT /v1/users/{address}. The password only
// travels over the 0600 control socket and is stored as an argon2id hash.
type UserRequest struct {
	Password   string `json:"password"`
	QuotaBytes int64  `json:"quota_bytes,omitempty"`
}

// UserObject is the answer to GET and PUT /v1/users/{address}; it never
// carries the password or its hash.
type UserObject struct {
	Address    string `json:"address"`
	QuotaBytes int64  `json:"quota_bytes"`
	UsedBytes  int64  `json:"used_bytes"`
}

// PasswordCheck is the body of POST /v1/users/{address}/password-check.
// The password only travels over the 0600 control socket and is never
// logged.
type PasswordCheck struct {
	Password string `json:"password"`
}

// PasswordCheckResult is the answer to a password check.
type PasswordCheckResult struct {
	// Match reports whether the password is the user's.
	Match bool `json:"match"`
}

// Error is an API failure: the HTTP status and the runtime's message. The
// body of a failed request is {"error": "..."}.
type Error struct {
	Code    int    `json:"-"`
	Message string `json:"error"`
}

func (e *Error) Error() string { return e.Message }

// IsNotFound reports whether err is a 404 from the control API.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == http.StatusNotFound
}

// statusOf is the one place that gives a failure its HTTP status: by its
// kind (internal/errkind), which every layer's sentinel errors carry
// (store.ErrNotFound, listener.ErrConflict, acme.ErrIssuance, ...), so a
// Backend returns its parts' errors as they are. An error of no kind is
// an internal failure (500).
func statusOf(err error) int {
	switch errkind.Of(err) {
	case errkind.NotFound:
		return http.StatusNotFound
	case errkind.Invalid:
		return http.StatusBadRequest
	case errkind.Conflict:
		return http.StatusConflict
	case errkind.Upstream:
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}
