// Package errkind is the small vocabulary of failure kinds that the
// runtime's layers share, so that each layer can own its sentinel errors
// (store.ErrNotFound, acme.ErrIssuance, keystore.ErrWrongStorePassword,
// ...) and a caller far away (the control API, which answers with an HTTP
// status) can still tell what kind of failure reached it without knowing
// every layer.
//
// A layer declares its sentinels with New, naming their kind; it marks an
// error of its own with With when the error is not built on a sentinel.
// Both keep the error's text as it is: the kind is only seen by errors.Is.
package errkind

import "errors"

// The kinds. Every kind says that nothing changed.
var (
	// NotFound: the object the request names does not exist.
	NotFound = errors.New("not found")
	// Invalid: the request, or a file it names, is refused as it stands.
	Invalid = errors.New("invalid")
	// Conflict: the request clashes with the host or another object, such
	// as a port in use or a name taken.
	Conflict = errors.New("conflict")
	// Upstream: a service the caller relies on (an ACME CA, a database)
	// could not be reached, refused or failed.
	Upstream = errors.New("upstream failure")
)

// New returns a sentinel error with text that is of kind: errors.Is finds
// both the sentinel and kind in any error that wraps it.
func New(kind error, text string) error { return &sentinel{text: text, kind: kind} }

type sentinel struct {
	text string
	kind error
}

func (s *sentinel) Error() string { return s.text }
func (s *sentinel) Unwrap() error { return s.kind }

// With returns err marked with kind (a kind, or a sentinel made by New)
// and its text unchanged; errors.Is finds kind and everything err wraps.
// An err that already is of kind is returned as it is, and nil stays nil.
func With(kind, err error) error {
	if err == nil || errors.Is(err, kind) {
		return err
	}
	return &marked{kind: kind, err: err}
}

type marked struct{ kind, err error }

func (m *marked) Error() string   { return m.err.Error() }
func (m *marked) Unwrap() []error { return []error{m.kind, m.err} }

// Of returns the kind of err: NotFound, Invalid, Conflict, Upstream, or
// nil when err is of none of them. An error of several kinds (a layer
// marked another layer's error) is of the outermost: the one found first
// in the order errors.Is searches.
func Of(err error) error {
	switch err {
	case nil:
		return nil
	case NotFound, Invalid, Conflict, Upstream:
		return err
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return Of(u.Unwrap())
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if k := Of(e); k != nil {
				return k
			}
		}
	}
	return nil
}
