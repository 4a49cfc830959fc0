package keystore

import (
	"bytes"
	"crypto"
	"crypto/subtle"
	"crypto/x509"
	"encoding/binary"
	"slices"
	"strings"
	"time"
)

// Type is a keystore file format.
type Type string

// The keystore types, spelled as keytool -storetype spells them.
const (
	JKS    Type = "JKS"
	PKCS12 Type = "PKCS12"
)

// ParseType parses a keystore type name, case-insensitively ("PKCS12",
// "pkcs12", "P12", "JKS"); "" means JKS.
func ParseType(s string) (Type, error) {
	switch strings.ToUpper(s) {
	case "", "JKS":
		return JKS, nil
	case "PKCS12", "P12", "PFX":
		return PKCS12, nil
	}
	return "", newErr(ErrInvalidInput, "", nil, "keystore type %q: want JKS or PKCS12", s)
}

// EntryKind tells private key entries and trusted certificate entries apart.
type EntryKind int

// Entry kinds.
const (
	PrivateKey EntryKind = iota + 1
	TrustedCertificate
)

// String returns the name keytool -list prints for the kind.
func (k EntryKind) String() string {
	switch k {
	case PrivateKey:
		return "PrivateKeyEntry"
	case TrustedCertificate:
		return "trustedCertEntry"
	}
	return "unknown"
}

// Entry describes one keystore entry.
type Entry struct {
	Alias string
	Kind  EntryKind
	// Chain is the certificate chain, leaf first, for a private key entry and
	// the one certificate for a trusted certificate entry.
	Chain []*x509.Certificate
	// CreatedAt is the entry's creation date; zero when the file does not
	// record one (PKCS#12 trusted certificates).
	CreatedAt time.Time
}

// entry is one keystore entry in memory.
type entry struct {
	alias   string // lower case
	kind    EntryKind
	chain   []*x509.Certificate
	created time.Time

	// Private key entries hold exactly one of key or sealed.
	key      crypto.Signer // in clear: set by the caller, or decrypted on load
	password []byte        // key password set by the caller; nil means the store password
	sealed   sealedKey     // still encrypted as it was in the file
}

// sealedKey is a private key still protected as it was in the file.
type sealedKey interface {
	open(password []byte) (crypto.Signer, error)
}

// Keystore is a decoded keystore in memory. The zero value is not usable; use
// New, Decode or Open.
type Keystore struct {
	typ     Type
	path    string // for error messages
	entries map[string]*entry
	storePW []byte // the store password last decoded or encoded with, if any
	dirty   bool   // changed since decoded
	jks     *jksFile
}

// New returns an empty keystore of type t ("" means JKS).
func New(t Type) *Keystore {
	if t == "" {
		t = JKS
	}
	return &Keystore{typ: t, entries: map[string]*entry{}, dirty: true}
}

// Type returns the keystore's format.
func (k *Keystore) Type() Type { return k.typ }

// Decode decodes a JKS or PKCS#12 keystore, telling them apart from the bytes.
// storePassword verifies the file's integrity. Private keys are decrypted only
// when asked for, except PKCS#12 keys protected with the store password.
func Decode(data, storePassword []byte) (*Keystore, error) {
	var k *Keystore
	var err error
	switch Detect(data) {
	case JKS:
		k, err = decodeJKS(data, storePassword)
	case PKCS12:
		k, err = decodePKCS12(data, storePassword)
	default:
		return nil, notKeystore(data)
	}
	if err != nil {
		return nil, err
	}
	k.storePW = bytes.Clone(storePassword)
	return k, nil
}

const (
	jksMagic   = 0xfeedfeed
	jceksMagic = 0xcececece
)

// Detect returns the type of keystore data looks like, or "", from its
// first bytes: no password is needed (nor verified).
func Detect(data []byte) Type {
	if len(data) >= 4 && binary.BigEndian.Uint32(data) == jksMagic {
		return JKS
	}
	// A DER SEQUENCE with a definite length: PKCS#12's PFX.
	if len(data) >= 2 && data[0] == 0x30 && data[1] != 0x80 {
		return PKCS12
	}
	return ""
}

func notKeystore(data []byte) error {
	trimmed := bytes.TrimSpace(data)
	switch {
	case len(data) == 0:
		return newErr(ErrNotKeystore, "", nil, "file is empty")
	case len(data) >= 4 && binary.BigEndian.Uint32(data) == jceksMagic:
		return newErr(ErrUnsupported, "", nil, "JCEKS keystores are not supported; convert with keytool -importkeystore -deststoretype PKCS12")
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN")):
		return newErr(ErrNotKeystore, "", nil, "found PEM text where a JKS or PKCS#12 keystore was expected")
	}
	return newErr(ErrNotKeystore, "", nil, "neither a JKS nor a PKCS#12 keystore")
}

// Encode encodes the keystore in its format, protected with storePassword.
// Private keys set without a key password are protected with storePassword.
func (k *Keystore) Encode(storePassword []byte) ([]byte, error) {
	if len(storePassword) == 0 {
		return nil, newErr(ErrInvalidInput, "", nil, "empty store password")
	}
	var out []byte
	var err error
	switch k.typ {
	case JKS:
		out, err = k.encodeJKS(storePassword)
	case PKCS12:
		out, err = k.encodePKCS12(storePassword)
	default:
		err = newErr(ErrUnsupported, "", nil, "keystore type %q", k.typ)
	}
	if err != nil {
		return nil, withPath(err, k.path)
	}
	k.storePW = bytes.Clone(storePassword)
	return out, nil
}

func normAlias(alias string) string { return strings.ToLower(alias) }

func (k *Keystore) err(kind error, alias string, cause error, detail string, args ...any) *Error {
	e := newErr(kind, alias, cause, detail, args...)
	e.Path = k.path
	return e
}

// SetPrivateKeyEntry adds or replaces the private key entry alias with key and
// its certificate chain (leaf first; the leaf must match key). An empty
// keyPassword means the store password, as keytool does.
func (k *Keystore) SetPrivateKeyEntry(alias string, key crypto.Signer, chain []*x509.Certificate, keyPassword []byte) error {
	alias = normAlias(alias)
	if alias == "" {
		return k.err(ErrInvalidInput, "", nil, "empty alias")
	}
	if key == nil || len(chain) == 0 || slices.Contains(chain, nil) {
		return k.err(ErrInvalidInput, alias, nil, "a private key entry needs a key and at least one certificate")
	}
	if !publicKeysEqual(key.Public(), chain[0].PublicKey) {
		return k.err(ErrKeyMismatch, alias, nil, "leaf certificate %q", chain[0].Subject)
	}
	if k.typ == PKCS12 && len(keyPassword) > 0 && k.storePW != nil && !bytes.Equal(keyPassword, k.storePW) {
		return k.err(ErrUnsupported, alias, nil, "PKCS#12 keystores protect keys with the store password; a distinct key password is not supported")
	}
	var pw []byte
	if len(keyPassword) > 0 {
		pw = bytes.Clone(keyPassword)
	}
	k.entries[alias] = &entry{alias: alias, kind: PrivateKey, chain: slices.Clone(chain),
		created: time.Now(), key: key, password: pw}
	k.dirty = true
	return nil
}

// PrivateKeyEntry returns the key and chain of the private key entry alias.
// An empty keyPassword means the store password.
func (k *Keystore) PrivateKeyEntry(alias string, keyPassword []byte) (crypto.Signer, []*x509.Certificate, error) {
	e, err := k.privateEntry(alias)
	if err != nil {
		return nil, nil, err
	}
	pw := keyPassword
	if len(pw) == 0 {
		pw = k.storePW
	}
	if e.sealed != nil {
		key, err := e.sealed.open(pw)
		if err != nil {
			return nil, nil, withPath(withAlias(err, e.alias), k.path)
		}
		return key, slices.Clone(e.chain), nil
	}
	want := e.password
	if want == nil {
		want = k.storePW
	}
	if len(pw) > 0 && want != nil && subtle.ConstantTimeCompare(pw, want) != 1 {
		return nil, nil, k.err(ErrWrongKeyPassword, e.alias, nil, "")
	}
	return e.key, slices.Clone(e.chain), nil
}

func (k *Keystore) privateEntry(alias string) (*entry, error) {
	a := normAlias(alias)
	e, ok := k.entries[a]
	if !ok {
		return nil, k.err(ErrAliasNotFound, alias, nil, "no such entry (aliases: %s)", strings.Join(k.aliases(0), ", "))
	}
	if e.kind != PrivateKey {
		return nil, k.err(ErrAliasNotFound, alias, nil, "entry is a %s, not a PrivateKeyEntry", e.kind)
	}
	return e, nil
}

func withAlias(err error, alias string) error {
	if e, ok := err.(*Error); ok && e.Alias == "" {
		e.Alias = alias
	}
	return err
}

// SetTrustedCertificate adds or replaces the trusted certificate entry alias
// (keytool -importcert -trustcacerts). It refuses to replace a private key
// entry.
func (k *Keystore) SetTrustedCertificate(alias string, cert *x509.Certificate) error {
	alias = normAlias(alias)
	if alias == "" {
		return k.err(ErrInvalidInput, "", nil, "empty alias")
	}
	if cert == nil {
		return k.err(ErrInvalidInput, alias, nil, "no certificate")
	}
	if old, ok := k.entries[alias]; ok && old.kind == PrivateKey {
		return k.err(ErrInvalidInput, alias, nil, "alias already names a PrivateKeyEntry")
	}
	k.entries[alias] = &entry{alias: alias, kind: TrustedCertificate, chain: []*x509.Certificate{cert}, created: time.Now()}
	k.dirty = true
	return nil
}

// DeleteEntry removes the entry alias, of either kind.
func (k *Keystore) DeleteEntry(alias string) error {
	a := normAlias(alias)
	if _, ok := k.entries[a]; !ok {
		return k.err(ErrAliasNotFound, alias, nil, "no such entry")
	}
	delete(k.entries, a)
	k.dirty = true
	return nil
}

// Entries lists the entries, sorted by alias.
func (k *Keystore) Entries() []Entry {
	out := make([]Entry, 0, len(k.entries))
	for _, a := range k.aliases(0) {
		e := k.entries[a]
		out = append(out, Entry{Alias: e.alias, Kind: e.kind, Chain: slices.Clone(e.chain), CreatedAt: e.created})
	}
	return out
}

// Entry returns the entry alias and whether it exists.
func (k *Keystore) Entry(alias string) (Entry, bool) {
	e, ok := k.entries[normAlias(alias)]
	if !ok {
		return Entry{}, false
	}
	return Entry{Alias: e.alias, Kind: e.kind, Chain: slices.Clone(e.chain), CreatedAt: e.created}, true
}

// aliases returns the sorted aliases of entries of kind (0: all kinds).
func (k *Keystore) aliases(kind EntryKind) []string {
	out := make([]string, 0, len(k.entries))
	for a, e := range k.entries {
		if kind == 0 || e.kind == kind {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out
}

// PrivateKeyAlias returns alias, or when alias is "" the alias of the only
// private key entry: ErrAmbiguousAlias when there are several, ErrAliasNotFound
// when there is none.
func (k *Keystore) PrivateKeyAlias(alias string) (string, error) {
	if alias != "" {
		e, err := k.privateEntry(alias)
		if err != nil {
			return "", err
		}
		return e.alias, nil
	}
	keys := k.aliases(PrivateKey)
	if len(keys) == 0 {
		return "", k.err(ErrAliasNotFound, "", nil, "keystore holds no private key entry")
	}
	if len(keys) > 1 {
		e := k.err(ErrAmbiguousAlias, "", nil, "found %d private key entries (%s); name one with alias",
			len(keys), strings.Join(keys, ", "))
		e.Aliases = keys
		return "", e
	}
	return keys[0], nil
}
