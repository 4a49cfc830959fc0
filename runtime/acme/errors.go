package acme

import (
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/crypto/acme"

	"github.com/mailstack/terraform-provider-mailstack/internal/errkind"
)

// Kinds of failure. Every error a Service returns wraps exactly one of
// them; its text is the detail alone. Each is of an errkind kind.
var (
	// ErrInvalid: the config or the keystore it names is refused before
	// anything is asked of the CA; nothing changed.
	ErrInvalid = errkind.New(errkind.Invalid, "invalid ACME keystore")
	// ErrNotFound: no ACME keystore has the id.
	ErrNotFound = errkind.New(errkind.NotFound, "ACME keystore not found")
	// ErrConflict: the challenge address cannot be bound, or is used with
	// the other challenge type, or another ACME keystore owns the same
	// keystore entry; nothing changed.
	ErrConflict = errkind.New(errkind.Conflict, "ACME keystore conflict")
	// ErrIssuance: the CA could not be reached, refused, could not validate
	// the domains, or the certificate could not be written into the
	// keystore. The keystore is unchanged.
	ErrIssuance = errkind.New(errkind.Upstream, "ACME issuance failed")
)

// problem presents an ACME problem document (RFC 8555 section 6.7) for
// people: type, detail and subproblems, or the HTTP status when the answer
// was not a problem document at all (a wrong directory URL).
type problem struct{ e *acme.Error }

func (p problem) Unwrap() error { return p.e }

func (p problem) Error() string {
	e := p.e
	detail := strings.TrimSpace(e.Detail)
	if e.ProblemType == "" {
		// Not a problem document: the body is whatever the server sent.
		status := fmt.Sprintf("HTTP %d %s", e.StatusCode, http.StatusText(e.StatusCode))
		if detail == "" || strings.HasPrefix(detail, "<") || detail == fmt.Sprintf("%d %s", e.StatusCode, http.StatusText(e.StatusCode)) {
			return status
		}
		if i := strings.IndexByte(detail, '\n'); i >= 0 {
			detail = detail[:i]
		}
		if len(detail) > 200 {
			detail = detail[:200] + "..."
		}
		return status + ": " + detail
	}
	var sb strings.Builder
	sb.WriteString(e.ProblemType)
	if detail != "" {
		sb.WriteString(": " + detail)
	}
	for _, sp := range e.Subproblems {
		sb.WriteString("; ")
		if sp.Identifier != nil {
			sb.WriteString(sp.Identifier.Value + ": ")
		}
		sb.WriteString(sp.Type)
		if sp.Detail != "" {
			sb.WriteString(": " + sp.Detail)
		}
	}
	if e.StatusCode != 0 {
		fmt.Fprintf(&sb, " (HTTP %d)", e.StatusCode)
	}
	return sb.String()
}

// caError presents an error from the ACME client with the problem document
// spelled out; errors.As still finds the *acme.Error.
func caError(err error) error {
	switch e := err.(type) {
	case *acme.Error:
		return problem{e}
	case *acme.OrderError:
		if e.Problem != nil {
			return fmt.Errorf("order is %s: %w", e.Status, problem{e.Problem})
		}
		return fmt.Errorf("order is %s", e.Status)
	}
	return err
}
