package listener

import "github.com/mailstack/terraform-provider-mailstack/internal/errkind"

// Kinds of failure, for callers that tell them apart (each is of an
// errkind kind, which the control API answers with its status). Errors
// wrap one of them and keep their own text.
var (
	// ErrInvalid: the settings, or the keystore they name, are refused;
	// nothing changed.
	ErrInvalid = errkind.New(errkind.Invalid, "invalid listener")
	// ErrConflict: the address cannot be bound (in use); nothing changed.
	ErrConflict = errkind.New(errkind.Conflict, "address in use")
	// ErrNotFound: there is no such listener.
	ErrNotFound = errkind.New(errkind.NotFound, "no such listener")
)
