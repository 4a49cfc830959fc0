package keystore

import (
	"context"
	"crypto"
	"crypto/tls"
	"fmt"
)

// LoadCertificate reads the keystore in f for a TLS server and returns the
// private key entry alias as a tls.Certificate (chain leaf first, Leaf set).
// An empty alias picks the only private key entry (ErrAmbiguousAlias names the
// aliases when there are several); an empty keyPassword means the store
// password. It does not check validity dates: see Validate.
func LoadCertificate(ctx context.Context, f File, storePassword, keyPassword []byte, alias string) (tls.Certificate, error) {
	k, err := Open(ctx, f, storePassword)
	if err != nil {
		return tls.Certificate{}, err
	}
	return k.TLSCertificate(alias, keyPassword)
}

// LoadPEMPair reads a PEM certificate chain (leaf first) and its PEM
// private key (PKCS#8, PKCS#1 or SEC 1, unencrypted), as certbot,
// cert-manager and Apache James's <certificates> and <privateKey> hold
// them, and returns them as a tls.Certificate with Leaf set; the key must
// match the leaf.
func LoadPEMPair(ctx context.Context, certFile, keyFile File) (tls.Certificate, error) {
	certPEM, err := certFile.Read(ctx)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("reading certificate %s: %w", certFile.Name(), err)
	}
	keyPEM, err := keyFile.Read(ctx)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("reading private key %s: %w", keyFile.Name(), err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate %s with private key %s: %w", certFile.Name(), keyFile.Name(), err)
	}
	return cert, nil
}

// TLSCertificate returns the private key entry alias as a tls.Certificate,
// choosing the alias as LoadCertificate does.
func (k *Keystore) TLSCertificate(alias string, keyPassword []byte) (tls.Certificate, error) {
	alias, err := k.PrivateKeyAlias(alias)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, chain, err := k.PrivateKeyEntry(alias, keyPassword)
	if err != nil {
		return tls.Certificate{}, err
	}
	if !publicKeysEqual(key.Public(), chain[0].PublicKey) {
		return tls.Certificate{}, k.err(ErrKeyMismatch, alias, nil, "leaf certificate %q", chain[0].Subject)
	}
	raw := make([][]byte, len(chain))
	for i, c := range chain {
		raw[i] = c.Raw
	}
	return tls.Certificate{Certificate: raw, PrivateKey: key, Leaf: chain[0]}, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	x, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && b != nil && x.Equal(b)
}
