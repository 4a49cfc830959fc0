package keystore

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	jks "github.com/pavlo-v-chernykh/keystore-go/v4"
)

// jksFile is a JKS file as keystore-go loaded it. It keeps the private keys
// nobody asked to change encrypted exactly as they were, so that Encode can
// write them back without knowing their passwords.
type jksFile struct {
	ks jks.KeyStore
}

func newJKS() jks.KeyStore {
	return jks.New(jks.WithCaseExactAliases(), jks.WithOrderedAliases())
}

// jksSealed is a private key still encrypted in a loaded JKS file.
type jksSealed struct {
	file     *jksFile
	rawAlias string // the alias as spelled in the file
}

func (s jksSealed) open(password []byte) (crypto.Signer, error) {
	pw, err := jksPassword(password)
	if err != nil {
		return nil, err
	}
	pke, err := s.file.ks.GetPrivateKeyEntry(s.rawAlias, pw)
	if err != nil {
		// The structure was checked on load, so this is the key digest.
		return nil, newErr(ErrWrongKeyPassword, "", nil, "")
	}
	return parsePKCS8(pke.PrivateKey)
}

func parsePKCS8(der []byte) (crypto.Signer, error) {
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		var outer struct {
			Version int
			Algo    pkix.AlgorithmIdentifier
			Key     []byte
		}
		if unmarshalDER(der, &outer) == nil {
			// Well-formed, but an algorithm Go has no signer for (DSA).
			return nil, newErr(ErrUnsupported, "", err, "private key algorithm %s", outer.Algo.Algorithm)
		}
		return nil, newErr(ErrNotKeystore, "", err, "private key")
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, newErr(ErrUnsupported, "", nil, "private key type %T", key)
	}
	return s, nil
}

// jksPassword converts a UTF-8 password to what keystore-go hashes: one byte
// per character, so only Latin-1 passwords match what Java computes.
func jksPassword(p []byte) ([]byte, error) {
	out := make([]byte, 0, len(p))
	for len(p) > 0 {
		r, n := utf8.DecodeRune(p)
		if r == utf8.RuneError && n <= 1 || r > 0xff {
			return nil, newErr(ErrUnsupported, "", nil, "JKS passwords must be Latin-1 text")
		}
		out = append(out, byte(r))
		p = p[n:]
	}
	return out, nil
}

// jksRaw is one entry as scanned from a JKS file.
type jksRaw struct {
	alias   string
	tag     uint32
	created time.Time
	certs   [][]byte
}

var jksKeyProtectorOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 42, 2, 17, 1, 1}

// scanJKS checks the structure of a JKS file with every length bounded by the
// data (keystore-go trusts the lengths it reads, which a corrupt file turns
// into huge allocations, and its key decryption panics on short keys).
func scanJKS(data []byte) ([]jksRaw, error) {
	r := &jksReader{b: data}
	if r.u32() != jksMagic {
		return nil, errors.New("bad magic")
	}
	version := r.u32()
	if r.err == nil && version != 1 && version != 2 {
		return nil, fmt.Errorf("unknown version %d", version)
	}
	n := r.u32()
	var out []jksRaw
	for i := uint32(0); i < n && r.err == nil; i++ {
		e := jksRaw{tag: r.u32(), alias: r.str()}
		e.created = time.UnixMilli(int64(r.u64()))
		switch e.tag {
		case 1:
			key := r.bytes(r.u32())
			if r.err == nil {
				if err := checkJKSKey(key); err != nil {
					return nil, fmt.Errorf("entry %q: %w", e.alias, err)
				}
			}
			for c := r.u32(); c > 0 && r.err == nil; c-- {
				e.certs = append(e.certs, r.cert(version))
			}
		case 2:
			e.certs = append(e.certs, r.cert(version))
		default:
			if r.err == nil {
				return nil, fmt.Errorf("entry %d: unknown tag %d", i, e.tag)
			}
		}
		out = append(out, e)
	}
	r.bytes(20) // SHA-1 digest
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%d bytes of trailing data", len(r.b))
	}
	return out, nil
}

func checkJKSKey(b []byte) error {
	var info struct {
		Algo       pkix.AlgorithmIdentifier
		PrivateKey []byte
	}
	rest, err := asn1.Unmarshal(b, &info)
	if err != nil || len(rest) > 0 {
		return errors.New("malformed protected key")
	}
	if !info.Algo.Algorithm.Equal(jksKeyProtectorOID) {
		return fmt.Errorf("unsupported key protection %s", info.Algo.Algorithm)
	}
	if len(info.PrivateKey) <= 40 { // salt and digest, 20 bytes each
		return errors.New("protected key too short")
	}
	return nil
}

// jksReader reads big-endian fields, remembering the first error.
type jksReader struct {
	b   []byte
	err error
}

func (r *jksReader) bytes(n uint32) []byte {
	if r.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(r.b)) {
		r.err = errors.New("truncated")
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *jksReader) u16() uint16 {
	if b := r.bytes(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *jksReader) u32() uint32 {
	if b := r.bytes(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *jksReader) u64() uint64 {
	if b := r.bytes(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (r *jksReader) str() string { return string(r.bytes(uint32(r.u16()))) }

func (r *jksReader) cert(version uint32) []byte {
	if version == 2 {
		if t := r.str(); r.err == nil && t != "X.509" && t != "X509" {
			r.err = fmt.Errorf("unsupported certificate type %q", t)
		}
	}
	return r.bytes(r.u32())
}

func decodeJKS(data, storePassword []byte) (*Keystore, error) {
	raws, err := scanJKS(data)
	if err != nil {
		return nil, newErr(ErrNotKeystore, "", nil, "corrupt JKS keystore: %v", err)
	}
	pw, err := jksPassword(storePassword)
	if err != nil {
		return nil, err
	}
	f := &jksFile{ks: newJKS()}
	if err := f.ks.Load(bytes.NewReader(data), pw); err != nil {
		// The structure is sound, so the digest did not match.
		return nil, newErr(ErrWrongStorePassword, "", nil, "")
	}
	k := New(JKS)
	k.dirty = false
	k.jks = f
	for _, raw := range raws {
		alias := normAlias(raw.alias)
		if alias == "" {
			return nil, newErr(ErrNotKeystore, "", nil, "corrupt JKS keystore: empty alias")
		}
		chain := make([]*x509.Certificate, 0, len(raw.certs))
		for i, der := range raw.certs {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, newErr(ErrNotKeystore, alias, err, "certificate %d", i)
			}
			chain = append(chain, c)
		}
		e := &entry{alias: alias, kind: TrustedCertificate, chain: chain, created: raw.created}
		if raw.tag == 1 {
			e.kind = PrivateKey
			e.sealed = jksSealed{file: f, rawAlias: raw.alias}
			if len(chain) == 0 {
				return nil, newErr(ErrUnsupported, alias, nil, "private key entry without a certificate")
			}
		}
		if old, ok := k.entries[alias]; ok {
			// Java keeps the last of two aliases that differ only in case.
			if s, ok := old.sealed.(jksSealed); ok && s.rawAlias != raw.alias {
				f.ks.DeleteEntry(s.rawAlias)
			}
		}
		k.entries[alias] = e
	}
	return k, nil
}

func (k *Keystore) encodeJKS(storePassword []byte) ([]byte, error) {
	pw, err := jksPassword(storePassword)
	if err != nil {
		return nil, err
	}
	if k.jks == nil {
		k.jks = &jksFile{ks: newJKS()}
	}
	ks := k.jks.ks
	// Drop what the file had that is gone or replaced; keep sealed keys.
	for _, a := range ks.Aliases() {
		e, ok := k.entries[normAlias(a)]
		if s, sealed := e.sealedJKS(); !ok || !sealed || s.rawAlias != a || s.file != k.jks {
			ks.DeleteEntry(a)
		}
	}
	for _, a := range k.aliases(0) {
		e := k.entries[a]
		if s, sealed := e.sealedJKS(); sealed && s.file == k.jks {
			continue
		}
		certs := make([]jks.Certificate, len(e.chain))
		for i, c := range e.chain {
			certs[i] = jks.Certificate{Type: "X.509", Content: c.Raw}
		}
		if e.kind == TrustedCertificate {
			if err := ks.SetTrustedCertificateEntry(a, jks.TrustedCertificateEntry{
				CreationTime: e.created, Certificate: certs[0]}); err != nil {
				return nil, newErr(ErrInvalidInput, a, err, "")
			}
			continue
		}
		if e.key == nil {
			// Sealed in another keystore's file (copied entry): cannot re-seal.
			return nil, newErr(ErrUnsupported, a, nil, "private key from another keystore must be set with SetPrivateKeyEntry")
		}
		der, err := x509.MarshalPKCS8PrivateKey(e.key)
		if err != nil {
			return nil, newErr(ErrUnsupported, a, err, "private key")
		}
		keyPW := storePassword
		if e.password != nil {
			keyPW = e.password
		}
		kpw, err := jksPassword(keyPW)
		if err != nil {
			return nil, withAlias(err, a)
		}
		if err := ks.SetPrivateKeyEntry(a, jks.PrivateKeyEntry{
			CreationTime: e.created, PrivateKey: der, CertificateChain: certs}, kpw); err != nil {
			return nil, newErr(ErrInvalidInput, a, err, "")
		}
	}
	var buf bytes.Buffer
	if err := ks.Store(&buf, pw); err != nil {
		return nil, newErr(ErrInvalidInput, "", err, "encoding JKS")
	}
	return buf.Bytes(), nil
}

func (e *entry) sealedJKS() (jksSealed, bool) {
	if e == nil {
		return jksSealed{}, false
	}
	s, ok := e.sealed.(jksSealed)
	return s, ok
}
