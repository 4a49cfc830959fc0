package keystore

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every *Error wraps exactly one of them; test with errors.Is.
var (
	// ErrWrongStorePassword: the store password does not verify the
	// keystore's integrity check (or the file was tampered with, which the
	// format cannot tell apart, just as keytool cannot).
	ErrWrongStorePassword = errors.New("wrong keystore password (or the keystore was tampered with)")
	// ErrWrongKeyPassword: the key password does not decrypt the private key.
	ErrWrongKeyPassword = errors.New("wrong key password")
	// ErrNotKeystore: the bytes are not a JKS or PKCS#12 keystore, or are
	// truncated or corrupt.
	ErrNotKeystore = errors.New("not a keystore or corrupt")
	// ErrAliasNotFound: no entry of the needed kind has the alias.
	ErrAliasNotFound = errors.New("alias not found")
	// ErrKeyMismatch: a certificate (CA reply) does not match the private key.
	ErrKeyMismatch = errors.New("certificate does not match the private key")
	// ErrUntrustedChain: a chain does not reach a trusted certificate entry or
	// a self-signed root, or is not correctly signed.
	ErrUntrustedChain = errors.New("certificate chain does not reach a trusted or self-signed root")
	// ErrCertificateValidity: a certificate has expired or is not valid yet.
	ErrCertificateValidity = errors.New("certificate expired or not yet valid")
	// ErrAmbiguousAlias: no alias was given and the keystore does not hold
	// exactly one private key entry.
	ErrAmbiguousAlias = errors.New("alias required: keystore does not hold exactly one private key entry")
	// ErrUnsupported: a valid request this package does not do (JCEKS, secret
	// key entries, a distinct key password in PKCS#12, unknown algorithms).
	ErrUnsupported = errors.New("not supported")
	// ErrInvalidInput: a bad argument (empty alias, empty store password, bad
	// PEM, unknown key algorithm, inverted validity dates, ...).
	ErrInvalidInput = errors.New("invalid input")
	// ErrTypeMismatch: the file holds another keystore type than requested.
	ErrTypeMismatch = errors.New("keystore type mismatch")
)

// Error is the error this package returns. Err is one of the sentinels above;
// Path and Alias name the file and entry when there is one.
type Error struct {
	Path    string   // keystore file, "" for in-memory keystores
	Alias   string   // entry alias, "" when the error is not about one entry
	Err     error    // one of the Err* sentinels
	Detail  string   // what exactly is wrong, for people
	Cause   error    // underlying error, if any
	Aliases []string // ErrAmbiguousAlias: the private key aliases found
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("keystore")
	if e.Path != "" {
		fmt.Fprintf(&b, " %q", e.Path)
	}
	if e.Alias != "" {
		fmt.Fprintf(&b, ", alias %q", e.Alias)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Cause != nil {
		b.WriteString(": ")
		b.WriteString(e.Cause.Error())
	}
	return b.String()
}

// Unwrap returns the sentinel and the cause, so errors.Is and errors.As see both.
func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Cause}
}

// newErr builds an *Error; detail is formatted with args.
func newErr(kind error, alias string, cause error, detail string, args ...any) *Error {
	if len(args) > 0 {
		detail = fmt.Sprintf(detail, args...)
	}
	return &Error{Alias: alias, Err: kind, Detail: detail, Cause: cause}
}

// withPath fills in the path of every *Error in err that has none yet and
// wraps any other error so that it names the path.
func withPath(err error, path string) error {
	if err == nil || path == "" {
		return err
	}
	var e *Error
	if errors.As(err, &e) {
		if e.Path == "" {
			e.Path = path
		}
		return err
	}
	return fmt.Errorf("keystore %q: %w", path, err)
}
