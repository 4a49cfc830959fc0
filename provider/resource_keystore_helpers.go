package provider

// Helpers shared by mailstack_keystore, mailstack_certificate_import and
// the mailstack_keystore data source: diagnostics that name the file and
// alias, import ids, and keytool-style text for certificates.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

// Environment variables terraform import reads: the configuration is not
// available while importing.
const (
	// KeystorePasswordEnv holds the store password for terraform import.
	KeystorePasswordEnv = "MAILSTACK_KEYSTORE_PASSWORD"
	// KeystoreKeyPasswordEnv holds a JKS key password that differs from the
	// store password (keytool -keypass), for terraform import.
	KeystoreKeyPasswordEnv = "MAILSTACK_KEYSTORE_KEY_PASSWORD"
)

// aliasPattern: keytool stores aliases in lower case, so an alias written
// with capitals would read back different from the configuration.
var aliasPattern = regexp.MustCompile(`^[^\p{Lu}]+$`)

const aliasPatternMessage = "must be lower case: keytool and this provider store aliases in lower case"

// addKeystoreError adds an error diagnostic whose detail names the
// keystore file and the alias, whatever the error, and says what to do for
// the typed errors of internal/keystore.
func addKeystoreError(diags *diag.Diagnostics, summary, file, alias string, err error) {
	diags.AddError(summary, keystoreErrorDetail(file, alias, err))
}

// keystoreErrorDetail is the detail addKeystoreError gives err.
func keystoreErrorDetail(file, alias string, err error) string {
	detail := fmt.Sprintf("%s\n\nKeystore file: %s\nAlias: %s", err, file, alias)
	if hint := keystoreHint(err); hint != "" {
		detail += "\n\n" + hint
	}
	return detail
}

// keystoreHint says what an operator can do about a keystore error.
func keystoreHint(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "The keystore file does not exist."
	case errors.Is(err, keystore.ErrWrongStorePassword):
		return "The store password (keytool -storepass) does not open this file. If it was changed with " +
			"keytool -storepasswd, set the new one."
	case errors.Is(err, keystore.ErrWrongKeyPassword):
		return "The key password (keytool -keypass) does not open the private key: set key_password, or leave " +
			"it unset when the key uses the store password."
	case errors.Is(err, keystore.ErrNotKeystore):
		return "The file is not a JKS or PKCS#12 keystore. PEM certificates belong in certificate_chain_pem or " +
			"in a mailstack_certificate_import, not at the keystore path."
	case errors.Is(err, keystore.ErrKeyMismatch):
		return "The CA reply was issued for another key. Have this keystore's csr_pem signed and use that reply."
	case errors.Is(err, keystore.ErrUntrustedChain):
		return "Add the missing intermediate CA certificates (and the root) to the reply, or import the root " +
			"first with a mailstack_certificate_import."
	case errors.Is(err, keystore.ErrCertificateValidity):
		return "A certificate of the reply is expired or not valid yet: ask the CA for a current one, and check " +
			"the host's clock."
	case errors.Is(err, keystore.ErrTypeMismatch):
		return "The file exists with another format: set type to the file's format, or use another path."
	case errors.Is(err, keystore.ErrAmbiguousAlias):
		return "Name the entry: import with the id <path>:<alias>."
	case errors.Is(err, keystore.ErrUnsupported):
		return "internal/keystore does not handle this keystore or request."
	}
	return ""
}

// splitImportID splits an import id "<path>" or "<path>:<alias>". A path
// that names an existing file wins, so paths that contain ':' still work.
func splitImportID(id string, exists func(string) bool) (file, alias string) {
	if exists(id) {
		return id, ""
	}
	if i := strings.LastIndex(id, ":"); i > 0 && exists(id[:i]) {
		return id[:i], id[i+1:]
	}
	return id, ""
}

// keytoolDN prints a distinguished name as keytool -list -v does ("Owner:"
// and "Issuer:"): most specific attribute first, joined by ", ".
func keytoolDN(rawDN []byte) string {
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(rawDN, &seq); err != nil || len(rest) > 0 {
		return ""
	}
	parts := make([]string, 0, len(seq))
	for i := len(seq) - 1; i >= 0; i-- {
		var avas []string
		for _, ava := range seq[i] {
			if ava.Type.Equal(oidEmailAddress) {
				avas = append(avas, "EMAILADDRESS="+fmt.Sprint(ava.Value))
				continue
			}
			avas = append(avas, pkix.RDNSequence{{ava}}.String())
		}
		parts = append(parts, strings.Join(avas, "+"))
	}
	return strings.Join(parts, ", ")
}

var oidEmailAddress = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}

// keyDescription names a public key's algorithm as the key block does
// ("RSA", "ECDSA", "Ed25519") and gives its size in bits.
func keyDescription(pub crypto.PublicKey) (algorithm string, bits int) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		return "ECDSA", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		return "Ed25519", 256
	}
	return "unknown", 0
}

// spkiSHA256 identifies a certificate's key: the SHA-256 of its
// SubjectPublicKeyInfo, hex.
func spkiSHA256(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// dueForRenewal reports whether, at now, a certificate ending at notAfter
// is within earlyDays of its end, as hashicorp/tls's early_renewal_hours.
func dueForRenewal(notAfter time.Time, earlyDays int64, now time.Time) bool {
	return !now.Add(time.Duration(earlyDays) * 24 * time.Hour).Before(notAfter)
}

// sameCertificates reports whether a and b hold the same certificates in
// the same order.
func sameCertificates(a, b []*x509.Certificate) bool {
	return slices.EqualFunc(a, b, func(x, y *x509.Certificate) bool { return x.Equal(y) })
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// openPrivateKey returns the key and chain of the private key entry alias,
// trying each key password in turn ("" means the store password) and
// returning the one that worked.
func openPrivateKey(ks *keystore.Keystore, alias string, keyPasswords ...string) (crypto.Signer, []*x509.Certificate, string, error) {
	var firstErr error
	for _, pw := range keyPasswords {
		key, chain, err := ks.PrivateKeyEntry(alias, []byte(pw))
		if err == nil {
			return key, chain, pw, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if !errors.Is(err, keystore.ErrWrongKeyPassword) {
			break
		}
	}
	return nil, nil, "", firstErr
}
