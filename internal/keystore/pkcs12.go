package keystore

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

var (
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidEncryptedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	oidKeyBag        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 1}
	oidShroudedBag   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidCertBag       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 3}
	oidSecretBag     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 5}
	oidX509Cert      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 22, 1}
	oidFriendlyName  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 20}
	oidLocalKeyID    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 21}
	// Java marks trusted certificate entries with this attribute; its value
	// is the set of extended key usages the anchor is trusted for.
	oidJavaTrusted = asn1.ObjectIdentifier{2, 16, 840, 1, 113894, 746875, 1, 1}
	oidAnyEKU      = asn1.ObjectIdentifier{2, 5, 29, 37, 0}
)

type pfxPDU struct {
	Version  int
	AuthSafe contentInfo
	MacData  macData `asn1:"optional"`
}

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
}

type encryptedData struct {
	Version int
	Info    encryptedContentInfo
}

type encryptedContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Algorithm   pkix.AlgorithmIdentifier
	Content     []byte `asn1:"tag:0,optional"`
}

type safeBag struct {
	ID         asn1.ObjectIdentifier
	Value      asn1.RawValue `asn1:"tag:0,explicit"`
	Attributes []attribute   `asn1:"set,optional"`
}

type attribute struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue `asn1:"set"`
}

type certBag struct {
	ID   asn1.ObjectIdentifier
	Data []byte `asn1:"tag:0,explicit"`
}

type encryptedPrivateKeyInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	Data      []byte
}

// p12Sealed is a PKCS#12 private key that the store password did not
// decrypt: it stays as it was, and is written back as it was.
type p12Sealed struct {
	info encryptedPrivateKeyInfo
}

func (s p12Sealed) open(password []byte) (crypto.Signer, error) {
	der, err := pbDecrypt(s.info.Algorithm, s.info.Data, password)
	if errors.Is(err, errPassword) {
		return nil, newErr(ErrWrongKeyPassword, "", nil, "")
	}
	if err != nil {
		return nil, err
	}
	key, err := parsePKCS8(der)
	if err != nil && errors.Is(err, ErrNotKeystore) {
		// Correct padding by chance, garbage inside: a wrong password.
		return nil, newErr(ErrWrongKeyPassword, "", nil, "")
	}
	return key, err
}

// p12Bag is a safe bag with its attributes decoded.
type p12Bag struct {
	bag        safeBag
	name       string // friendlyName, lower case
	localKeyID []byte
	trusted    bool
	cert       *x509.Certificate
}

func decodePKCS12(data, storePassword []byte) (*Keystore, error) {
	var pfx pfxPDU
	if err := unmarshalDER(data, &pfx); err != nil {
		return nil, newErr(ErrNotKeystore, "", nil, "neither JKS nor DER PKCS#12: %v", err)
	}
	if pfx.Version != 3 {
		return nil, corrupt("PFX version %d", pfx.Version)
	}
	if !pfx.AuthSafe.ContentType.Equal(oidData) {
		return nil, unsupported("PKCS#12 with public-key integrity")
	}
	var content []byte
	if err := unmarshalDER(pfx.AuthSafe.Content.Bytes, &content); err != nil {
		return nil, corrupt("authenticated safe: %v", err)
	}
	if len(pfx.MacData.Mac.Algorithm.Algorithm) > 0 {
		if err := verifyMAC(&pfx.MacData, content, storePassword); err != nil {
			if errors.Is(err, errPassword) {
				return nil, newErr(ErrWrongStorePassword, "", nil, "")
			}
			return nil, err
		}
	}
	var safes []contentInfo
	if err := unmarshalDER(content, &safes); err != nil {
		return nil, corrupt("authenticated safe: %v", err)
	}
	var bags []p12Bag
	for i, ci := range safes {
		var plain []byte
		switch {
		case ci.ContentType.Equal(oidData):
			if err := unmarshalDER(ci.Content.Bytes, &plain); err != nil {
				return nil, corrupt("safe %d: %v", i, err)
			}
		case ci.ContentType.Equal(oidEncryptedData):
			var ed encryptedData
			if err := unmarshalDER(ci.Content.Bytes, &ed); err != nil {
				return nil, corrupt("safe %d: %v", i, err)
			}
			var err error
			plain, err = pbDecrypt(ed.Info.Algorithm, ed.Info.Content, storePassword)
			if errors.Is(err, errPassword) {
				return nil, newErr(ErrWrongStorePassword, "", nil, "the certificates do not decrypt with it")
			}
			if err != nil {
				return nil, err
			}
		default:
			return nil, unsupported("PKCS#12 safe of type %s", ci.ContentType)
		}
		var sb []safeBag
		if err := unmarshalDER(plain, &sb); err != nil {
			if ci.ContentType.Equal(oidEncryptedData) {
				return nil, newErr(ErrWrongStorePassword, "", nil, "the certificates do not decrypt with it")
			}
			return nil, corrupt("safe %d: %v", i, err)
		}
		for _, b := range sb {
			pb, err := decodeBag(b)
			if err != nil {
				return nil, err
			}
			bags = append(bags, pb)
		}
	}
	return assemblePKCS12(bags, storePassword)
}

func decodeBag(b safeBag) (p12Bag, error) {
	pb := p12Bag{bag: b}
	for _, a := range b.Attributes {
		switch {
		case a.ID.Equal(oidFriendlyName):
			var v asn1.RawValue
			if err := unmarshalDER(a.Value.Bytes, &v); err != nil || v.Tag != asn1.TagBMPString || len(v.Bytes)%2 != 0 {
				return pb, corrupt("friendlyName attribute")
			}
			u := make([]uint16, len(v.Bytes)/2)
			for i := range u {
				u[i] = uint16(v.Bytes[2*i])<<8 | uint16(v.Bytes[2*i+1])
			}
			pb.name = normAlias(string(utf16.Decode(u)))
		case a.ID.Equal(oidLocalKeyID):
			if err := unmarshalDER(a.Value.Bytes, &pb.localKeyID); err != nil {
				return pb, corrupt("localKeyId attribute")
			}
		case a.ID.Equal(oidJavaTrusted):
			pb.trusted = true
		}
	}
	switch {
	case b.ID.Equal(oidCertBag):
		var cb certBag
		if err := unmarshalDER(b.Value.Bytes, &cb); err != nil {
			return pb, corrupt("certificate bag: %v", err)
		}
		if !cb.ID.Equal(oidX509Cert) {
			return pb, unsupported("certificate of type %s", cb.ID)
		}
		c, err := x509.ParseCertificate(cb.Data)
		if err != nil {
			return pb, newErr(ErrNotKeystore, pb.name, err, "certificate")
		}
		pb.cert = c
	case b.ID.Equal(oidKeyBag), b.ID.Equal(oidShroudedBag):
	case b.ID.Equal(oidSecretBag):
		return pb, newErr(ErrUnsupported, pb.name, nil, "secret key entries")
	default:
		return pb, unsupported("PKCS#12 bag of type %s", b.ID)
	}
	return pb, nil
}

// assemblePKCS12 turns bags into entries the way the JDK does: a key's leaf
// certificate has its localKeyId, the rest of its chain is found by issuer
// name among all certificates, and certificates with Java's trusted
// attribute are trusted certificate entries. Other certificates are dropped,
// as the JDK drops them.
func assemblePKCS12(bags []p12Bag, storePassword []byte) (*Keystore, error) {
	k := New(PKCS12)
	k.dirty = false
	var certs []*x509.Certificate
	for _, b := range bags {
		if b.cert != nil {
			certs = append(certs, b.cert)
		}
	}
	unique := func(alias, fallback string) string {
		if alias == "" {
			alias = fallback
		}
		a := alias
		for i := 2; k.entries[a] != nil; i++ {
			a = alias + "-" + strconv.Itoa(i)
		}
		return a
	}
	nKeys := 0
	for _, b := range bags {
		if b.cert != nil || !(b.bag.ID.Equal(oidKeyBag) || b.bag.ID.Equal(oidShroudedBag)) {
			continue
		}
		nKeys++
		e := &entry{kind: PrivateKey, created: keyIDTime(b.localKeyID)}
		e.alias = unique(b.name, "key-"+strconv.Itoa(nKeys))
		if err := openKeyBag(e, b.bag, storePassword); err != nil {
			return nil, withAlias(err, e.alias)
		}
		leaf := findLeaf(b, bags, e.key)
		if leaf == nil {
			return nil, newErr(ErrUnsupported, e.alias, nil, "private key without a certificate")
		}
		e.chain = buildChain(leaf, certs)
		if e.key != nil && !publicKeysEqual(e.key.Public(), leaf.PublicKey) {
			return nil, newErr(ErrKeyMismatch, e.alias, nil, "leaf certificate %q", leaf.Subject)
		}
		k.entries[e.alias] = e
	}
	for _, b := range bags {
		if b.cert != nil && b.trusted {
			a := unique(b.name, "cert-"+strings.ToLower(hex.EncodeToString(sha256Prefix(b.cert.Raw))))
			k.entries[a] = &entry{alias: a, kind: TrustedCertificate, chain: []*x509.Certificate{b.cert}}
		}
	}
	return k, nil
}

func sha256Prefix(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:4]
}

// openKeyBag decrypts the key with the store password, or keeps it sealed
// when that password is not the key's.
func openKeyBag(e *entry, bag safeBag, storePassword []byte) error {
	if bag.ID.Equal(oidKeyBag) {
		key, err := parsePKCS8(bag.Value.Bytes)
		e.key = key
		return err
	}
	var info encryptedPrivateKeyInfo
	if err := unmarshalDER(bag.Value.Bytes, &info); err != nil {
		return corrupt("shrouded key bag: %v", err)
	}
	s := p12Sealed{info: info}
	key, err := s.open(storePassword)
	switch {
	case err == nil:
		e.key = key
	case errors.Is(err, ErrWrongKeyPassword):
		e.sealed = s
	default:
		return err
	}
	return nil
}

// findLeaf finds the certificate of key bag b: same localKeyId, else same
// friendlyName, else same public key.
func findLeaf(b p12Bag, bags []p12Bag, key crypto.Signer) *x509.Certificate {
	if len(b.localKeyID) > 0 {
		for _, c := range bags {
			if c.cert != nil && bytes.Equal(c.localKeyID, b.localKeyID) {
				return c.cert
			}
		}
	}
	if b.name != "" {
		for _, c := range bags {
			if c.cert != nil && !c.trusted && c.name == b.name {
				return c.cert
			}
		}
	}
	if key != nil {
		for _, c := range bags {
			if c.cert != nil && publicKeysEqual(key.Public(), c.cert.PublicKey) {
				return c.cert
			}
		}
	}
	return nil
}

// keyIDTime reads the creation date the JDK writes as localKeyId "Time <ms>".
func keyIDTime(id []byte) time.Time {
	ms, ok := strings.CutPrefix(string(id), "Time ")
	if !ok {
		return time.Time{}
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

func (k *Keystore) encodePKCS12(storePassword []byte) ([]byte, error) {
	var keyBags, certBags []safeBag
	usedIDs := map[int64]bool{}
	for _, a := range k.aliases(0) {
		e := k.entries[a]
		name, err := friendlyName(a)
		if err != nil {
			return nil, withAlias(err, a)
		}
		if e.kind == TrustedCertificate {
			trust, _ := asn1.Marshal(oidAnyEKU)
			attrs := []attribute{name, {ID: oidJavaTrusted, Value: setOf(trust)}}
			b, err := newCertBag(e.chain[0], attrs)
			if err != nil {
				return nil, withAlias(err, a)
			}
			certBags = append(certBags, b)
			continue
		}
		// The JDK's localKeyId carries the creation date; keep it unique.
		ms := e.created.UnixMilli()
		for usedIDs[ms] {
			ms++
		}
		usedIDs[ms] = true
		id, _ := asn1.Marshal([]byte("Time " + strconv.FormatInt(ms, 10)))
		attrs := []attribute{name, {ID: oidLocalKeyID, Value: setOf(id)}}
		var info encryptedPrivateKeyInfo
		if s, ok := e.sealed.(p12Sealed); ok {
			info = s.info
		} else {
			if e.key == nil {
				return nil, newErr(ErrUnsupported, a, nil, "private key sealed in a JKS file")
			}
			if e.password != nil && !bytes.Equal(e.password, storePassword) {
				return nil, newErr(ErrUnsupported, a, nil, "PKCS#12 keystores protect keys with the store password; a distinct key password is not supported")
			}
			der, err := x509.MarshalPKCS8PrivateKey(e.key)
			if err != nil {
				return nil, newErr(ErrUnsupported, a, err, "private key")
			}
			if info.Algorithm, info.Data, err = pbEncrypt(der, storePassword); err != nil {
				return nil, newErr(ErrInvalidInput, a, err, "encrypting private key")
			}
		}
		val, err := asn1.Marshal(info)
		if err != nil {
			return nil, newErr(ErrInvalidInput, a, err, "")
		}
		keyBags = append(keyBags, safeBag{ID: oidShroudedBag, Value: explicit0(val), Attributes: attrs})
		for i, c := range e.chain {
			var ca []attribute
			if i == 0 {
				ca = attrs
			}
			b, err := newCertBag(c, ca)
			if err != nil {
				return nil, withAlias(err, a)
			}
			certBags = append(certBags, b)
		}
	}
	var safes []contentInfo
	if len(keyBags) > 0 {
		ci, err := dataContent(keyBags)
		if err != nil {
			return nil, err
		}
		safes = append(safes, ci)
	}
	if len(certBags) > 0 {
		plain, err := asn1.Marshal(certBags)
		if err != nil {
			return nil, err
		}
		alg, ct, err := pbEncrypt(plain, storePassword)
		if err != nil {
			return nil, err
		}
		ed, err := asn1.Marshal(encryptedData{Info: encryptedContentInfo{ContentType: oidData, Algorithm: alg, Content: ct}})
		if err != nil {
			return nil, err
		}
		safes = append(safes, contentInfo{ContentType: oidEncryptedData, Content: explicit0(ed)})
	}
	if safes == nil {
		safes = []contentInfo{}
	}
	content, err := asn1.Marshal(safes)
	if err != nil {
		return nil, err
	}
	md, err := newMAC(content, storePassword)
	if err != nil {
		return nil, err
	}
	octets, _ := asn1.Marshal(content)
	out, err := asn1.Marshal(pfxPDU{Version: 3, AuthSafe: contentInfo{ContentType: oidData, Content: explicit0(octets)}, MacData: md})
	if err != nil {
		return nil, fmt.Errorf("encoding PKCS#12: %w", err)
	}
	return out, nil
}

func friendlyName(alias string) (attribute, error) {
	u := utf16.Encode([]rune(alias))
	b := make([]byte, 0, 2*len(u))
	for _, c := range u {
		b = append(b, byte(c>>8), byte(c))
	}
	v, err := asn1.Marshal(asn1.RawValue{Tag: asn1.TagBMPString, Bytes: b})
	return attribute{ID: oidFriendlyName, Value: setOf(v)}, err
}

func newCertBag(c *x509.Certificate, attrs []attribute) (safeBag, error) {
	cb, err := asn1.Marshal(certBag{ID: oidX509Cert, Data: c.Raw})
	if err != nil {
		return safeBag{}, err
	}
	return safeBag{ID: oidCertBag, Value: explicit0(cb), Attributes: attrs}, nil
}

func dataContent(bags []safeBag) (contentInfo, error) {
	plain, err := asn1.Marshal(bags)
	if err != nil {
		return contentInfo{}, err
	}
	octets, err := asn1.Marshal(plain)
	if err != nil {
		return contentInfo{}, err
	}
	return contentInfo{ContentType: oidData, Content: explicit0(octets)}, nil
}

// explicit0 wraps DER in a [0] EXPLICIT tag.
func explicit0(der []byte) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: der}
}

// setOf wraps DER values in a SET (an attribute's values).
func setOf(der ...[]byte) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: bytes.Join(der, nil)}
}
