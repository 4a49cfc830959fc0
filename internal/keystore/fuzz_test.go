package keystore

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"os"
	"path/filepath"
	"strconv"
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
// Key derivation is kept out of the fuzzed path: every PKCS#12 KDF runs one
// iteration whatever the file says (the count is still parsed and
// checked), and the integrity fix-up recomputes the MAC the same way, so
// inputs reach the entry parsers at parser speed. Keystores this package
// writes under that rule are added as seeds, so that the fuzzer starts
// from PKCS#12 files whose entries decrypt; the keytool-made seeds
// exercise everything up to the decryption.
func FuzzDecode(f *testing.F) {
	defer func(cheap bool) { p12CheapKDF = cheap }(p12CheapKDF)
	p12CheapKDF = true
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeChecked(t, data)
		switch Detect(data) {
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

// TestCheapSeeds writes the seeds testdata/fuzz/FuzzDecode/cheap-p12 and
// cheap-jks when MAILSTACK_WRITE_FUZZ_SEEDS is set: a PKCS#12 and a JKS
// keystore, each with an ECDSA and an RSA private key entry and a trusted
// certificate, encoded under the cheap KDF so that their entries decrypt
// while fuzzing. They are files rather than made in FuzzDecode because
// every fuzz worker runs FuzzDecode's body, and RSA key generation there
// held the workers up for seconds.
func TestCheapSeeds(t *testing.T) {
	if os.Getenv("MAILSTACK_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set MAILSTACK_WRITE_FUZZ_SEEDS=1 to rewrite the seeds")
	}
	defer func(cheap bool) { p12CheapKDF = cheap }(p12CheapKDF)
	p12CheapKDF = true
	for _, typ := range []Type{PKCS12, JKS} {
		k := New(typ)
		for i, alias := range []string{"ec", "rsa"} {
			key := testKey(t, i-1) // -1: the ECDSA key
			if err := k.SetPrivateKeyEntry(alias, key, []*x509.Certificate{selfSignedCert(t, key, alias)}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := k.SetTrustedCertificate("ca", selfSignedCert(t, testKey(t, 2), "ca")); err != nil {
			t.Fatal(err)
		}
		data, err := k.Encode([]byte(storePW))
		if err != nil {
			t.Fatal(err)
		}
		name := map[Type]string{PKCS12: "cheap-p12", JKS: "cheap-jks"}[typ]
		seed := "go test fuzz v1\n[]byte(" + strconv.Quote(string(data)) + ")\n"
		writeFile(t, filepath.Join("testdata", "fuzz", "FuzzDecode", name), []byte(seed))
	}
}
