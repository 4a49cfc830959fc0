package keystore

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mailstack/terraform-provider-mailstack/internal/errkind"
)

// Sentinel errors. Every *Error wraps exactly one of them; test with
// errors.Is. All are of the errkind kind Invalid: the keystore, the
// password or the request is refused as it stands.
var (
	// ErrWrongStorePassword: the store password does not verify the
	// keystore's integrity check (or the file was tampered with, which the
	// format cannot tell apart, just as keytool cannot).
	ErrWrongStorePassword = errkind.New(errkind.Invalid, "wrong keystore password (or the keystore was tampered with)")
	// ErrWrongKeyPassword: the key password does not decrypt the private key.
	ErrWrongKeyPassword = errkind.New(errkind.Invalid, "wrong key password")
	// ErrNotKeystore: the bytes are not a JKS or PKCS#12 keystore, or are
	// truncated or corrupt.
	ErrNotKeystore = errkind.New(errkind.Invalid, "not a keystore or corrupt")
	// ErrAliasNotFound: no entry of the needed kind has the alias.
	ErrAliasNotFound = errkind.New(errkind.Invalid, "alias not found")
	// ErrKeyMismatch: a certificate (CA reply) does not match the private key.
	ErrKeyMismatch = errkind.New(errkind.Invalid, "certificate does not match the private key")
	// ErrUntrustedChain: a chain does not reach a trusted certificate entry or
	// a self-signed root, or is not correctly signed.
	ErrUntrustedChain = errkind.New(errkind.Invalid, "certificate chain does not reach a trusted or self-signed root")
	// ErrCertificateValidity: a certificate has expired or is not valid yet.
	ErrCertificateValidity = errkind.New(errkind.Invalid, "certificate expired or not yet valid")
	// ErrAmbiguousAlias: no alias was given and the keystore does not hold
	// exactly one private key entry.
	ErrAmbiguousAlias = errkind.New(errkind.Invalid, "alias required: keystore does not hold exactly one private key entry")
	// ErrUnsupported: a valid request this package does not do (JCEKS, secret
	// key entries, a distinct key password in PKCS#12, unknown algorithms).
	ErrUnsupported = errkind.New(errkind.Invalid, "not supported")
	// ErrInvalidInput: a bad argument (empty alias, empty store password, bad
	// PEM, unknown key algorithm, inverted validity dates, ...).
	ErrInvalidInput = errkind.New(errkind.Invalid, "invalid input")
	// ErrTypeMismatch: the file holds another keystore type than requested.
	ErrTypeMismatch = errkind.New(errkind.Invalid, "keystore type mismatch")
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
