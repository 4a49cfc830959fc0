package keystore

import (
	"crypto/x509"
	"fmt"
	"path/filepath"
	"testing"
)

var benchSpecs = []struct {
	name string
	spec KeySpec
}{
	{"RSA2048", KeySpec{Algorithm: "RSA", RSABits: 2048}},
	{"P256", KeySpec{Algorithm: "ECDSA", ECDSACurve: "P256"}},
}

func BenchmarkGenerateKey(b *testing.B) {
	for _, s := range benchSpecs {
		b.Run(s.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := GenerateKey(s.spec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSelfSign(b *testing.B) {
	for _, s := range benchSpecs {
		b.Run(s.name, func(b *testing.B) {
			key, err := GenerateKey(s.spec)
			must(b, err)
			req := CertificateRequest{Subject: Subject{CommonName: "mail.example.com", Organization: "Example", Country: "US"},
				DNSNames: []string{"mail.example.com"}}
			for b.Loop() {
				if _, err := SelfSign(key, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchKeystore holds one RSA private key entry and one trusted certificate.
func benchKeystore(b *testing.B, typ Type) *Keystore {
	key := testKey(b, 0)
	k := New(typ)
	must(b, k.SetPrivateKeyEntry("james", key, []*x509.Certificate{selfSignedCert(b, key, "mail.example.com")}, nil))
	must(b, k.SetTrustedCertificate("root", selfSignedCert(b, testKey(b, 1), "root")))
	return k
}

func BenchmarkEncode(b *testing.B) {
	for _, typ := range []Type{JKS, PKCS12} {
		b.Run(string(typ), func(b *testing.B) {
			k := benchKeystore(b, typ)
			for b.Loop() {
				if _, err := k.Encode([]byte(storePW)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecode decodes a keystore and decrypts its private key, what
// LoadCertificate does after reading the file.
func BenchmarkDecode(b *testing.B) {
	for _, typ := range []Type{JKS, PKCS12} {
		b.Run(string(typ), func(b *testing.B) {
			data, err := benchKeystore(b, typ).Encode([]byte(storePW))
			must(b, err)
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				k, err := Decode(data, []byte(storePW))
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := k.PrivateKeyEntry("james", nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCreateKeystoreFile is one keytool -genkeypair: a new RSA 2048
// key, a self-signed certificate, and a new keystore file written with
// Update (lock, fsync, rename).
func BenchmarkCreateKeystoreFile(b *testing.B) {
	for _, typ := range []Type{JKS, PKCS12} {
		b.Run(string(typ), func(b *testing.B) {
			dir := b.TempDir()
			i := 0
			for b.Loop() {
				i++
				path := filepath.Join(dir, fmt.Sprint("ks", i))
				err := Update(bg, lf(path), []byte(storePW), typ, func(k *Keystore) error {
					key, err := GenerateKey(KeySpec{Algorithm: "RSA"})
					if err != nil {
						return err
					}
					cert, err := SelfSign(key, CertificateRequest{Subject: Subject{CommonName: "mail.example.com"}})
					if err != nil {
						return err
					}
					return k.SetPrivateKeyEntry("james", key, []*x509.Certificate{cert}, nil)
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
