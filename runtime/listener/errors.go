package listener

import "errors"

// Kinds of failure, for callers that map them (the runtime maps them to
// its control API's statuses). Errors wrap one of them and keep their own
// text.
var (
	// ErrInvalid: the settings, or the keystore they name, are refused;
	// nothing changed.
	ErrInvalid = errors.New("invalid listener")
	// ErrConflict: the address cannot be bound (in use); nothing changed.
	ErrConflict = errors.New("address in use")
	// ErrNotFound: there is no such listener.
	ErrNotFound = errors.New("no such listener")
)

// kindError carries a kind without changing the message text.
type kindError struct{ kind, err error }

func kind(k, err error) error { return kindError{k, err} }

func (e kindError) Error() string   { return e.err.Error() }
func (e kindError) Unwrap() []error { return []error{e.kind, e.err} }
