package keystore

import (
	"bytes"
	"crypto/sha1"
	"encoding/asn1"
	"errors"
	"testing"
)

// FuzzDecode feeds the loader arbitrary bytes. It must never panic, must
// return only *Error values, and whatever it decodes must encode and decode
// again to the same entries. Since a mutated file almost never passes the
// integrity check, each input is also tried with its JKS digest or PKCS#12
// MAC recomputed, which lets the fuzzer reach the entry parsers.
//
// Seeds (testdata/fuzz/FuzzDecode): the keytool-made keystores of
// testdata/keytool, keystores this package wrote, a JCEKS header and PEM.
//
// While fuzzing, key derivation is made cheap: files asking for more than
// 100000 iterations (JDK 8 legacy files use 100000) are refused, and
// re-encoding uses 1 iteration, so the fuzzer spends its time in parsers
// rather than in PBKDF2.
func FuzzDecode(f *testing.F) {
	defer func(it, max int) { p12Iterations, p12MaxIterations = it, max }(p12Iterations, p12MaxIterations)
	p12Iterations, p12MaxIterations = 1, 100000
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeChecked(t, data)
		switch detect(data) {
		case JKS:
			decodeChecked(t, fixJKSDigest(data))
		case PKCS12:
			if fixed := fixPKCS12MAC(data); fixed != nil {
				decodeChecked(t, fixed)
			}
		}
	})
}

func decodeChecked(t *testing.T, data []byte) {
	k, err := Decode(data, []byte(storePW))
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("untyped error %#v", err)
		}
		return
	}
	for _, e := range k.Entries() {
		if e.Kind == PrivateKey {
			if _, _, err := k.PrivateKeyEntry(e.Alias, nil); err != nil && !errors.As(err, new(*Error)) {
				t.Fatalf("untyped error %#v", err)
			}
		}
	}
	out, err := k.Encode([]byte(storePW))
	if err != nil {
		t.Fatalf("encoding a decoded keystore: %v", err)
	}
	k2, err := Decode(out, []byte(storePW))
	if err != nil {
		t.Fatalf("decoding what we encoded: %v", err)
	}
	a, b := k.Entries(), k2.Entries()
	if len(a) != len(b) {
		t.Fatalf("%d entries became %d", len(a), len(b))
	}
	for i := range a {
		if a[i].Alias != b[i].Alias || a[i].Kind != b[i].Kind || !a[i].Chain[0].Equal(b[i].Chain[0]) {
			t.Fatalf("entry %d: %v became %v", i, a[i], b[i])
		}
	}
}

// fixJKSDigest replaces the trailing SHA-1 digest with the right one for
// storePW.
func fixJKSDigest(data []byte) []byte {
	if len(data) < 12+20 {
		return data
	}
	body := data[:len(data)-20]
	h := sha1.New()
	for _, c := range []byte(storePW) {
		h.Write([]byte{0, c})
	}
	h.Write([]byte("Mighty Aphrodite"))
	h.Write(body)
	return h.Sum(bytes.Clone(body))
}

// fixPKCS12MAC recomputes the MAC of a PFX for storePW; nil if it does not
// parse that far.
func fixPKCS12MAC(data []byte) []byte {
	var pfx pfxPDU
	if unmarshalDER(data, &pfx) != nil {
		return nil
	}
	var content []byte
	if unmarshalDER(pfx.AuthSafe.Content.Bytes, &content) != nil {
		return nil
	}
	md, err := newMAC(content, []byte(storePW))
	if err != nil {
		return nil
	}
	pfx.MacData = md
	out, err := asn1.Marshal(pfx)
	if err != nil {
		return nil
	}
	return out
}
