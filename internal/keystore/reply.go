package keystore

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"slices"
	"strconv"
	"strings"
	"time"
)

// now is the clock InstallReply and Validate check validity dates against.
var now = time.Now

// InstallReply installs a CA reply into the private key entry alias, as
// keytool -importcert -trustcacerts does with a certificate reply: the key is
// kept, the chain replaced. replyPEM holds the signed certificate and,
// usually, its CA chain, in any order. The reply's leaf must carry the
// entry's public key (ErrKeyMismatch); the chain, completed with the
// keystore's trusted certificate entries and trusted, must end at a
// self-signed root or a trusted certificate (ErrUntrustedChain), and every
// certificate must be valid now (ErrCertificateValidity). An empty
// keyPassword means the store password; the key stays protected with
// keyPassword.
func (k *Keystore) InstallReply(alias string, keyPassword, replyPEM []byte, trusted ...*x509.Certificate) error {
	e, err := k.privateEntry(alias)
	if err != nil {
		return err
	}
	key, _, err := k.PrivateKeyEntry(e.alias, keyPassword)
	if err != nil {
		return err
	}
	certs, err := ParseCertificatesPEM(replyPEM)
	if err != nil {
		return withPath(withAlias(err, e.alias), k.path)
	}
	chain, err := k.CompleteChain(key.Public(), certs, trusted...)
	if err != nil {
		return withPath(withAlias(err, e.alias), k.path)
	}
	pw := e.password // nil (the store password) for keys still sealed
	if len(keyPassword) > 0 {
		pw = bytes.Clone(keyPassword)
	}
	k.entries[e.alias] = &entry{alias: e.alias, kind: PrivateKey, chain: chain, created: e.created, key: key, password: pw}
	k.dirty = true
	return nil
}

// CompleteChain returns the chain that certs (a CA reply: the signed
// certificate and, usually, its CA certificates, in any order) make for
// the key pub, completed as keytool -importcert -trustcacerts completes a
// reply: the certificate carrying pub first (ErrKeyMismatch when there is
// none), then its issuers from certs, the keystore's trusted certificate
// entries and trusted; the chain must end at a self-signed root or at a
// trusted certificate (ErrUntrustedChain), and every certificate must be
// valid now (ErrCertificateValidity). The keystore is not changed.
func (k *Keystore) CompleteChain(pub crypto.PublicKey, certs []*x509.Certificate, trusted ...*x509.Certificate) ([]*x509.Certificate, error) {
	leaf, err := carrying(pub, certs)
	if err != nil {
		return nil, err
	}
	anchors := append(k.trustedCerts(), trusted...)
	chain := buildChain(leaf, append(slices.Clip(certs), anchors...))
	anchor, err := verifyChain(chain, anchors, now())
	if err != nil {
		return nil, err
	}
	if anchor != nil {
		chain = append(chain, anchor)
	}
	return chain, nil
}

// ChainFor orders certs (a PEM bundle in any order, such as fullchain.pem
// or what hashicorp/tls and cert-manager hand out) into the chain of the
// key pub: the certificate carrying pub first (ErrKeyMismatch when there
// is none), then each issuer found in certs, every one signed by the next
// (ErrUntrustedChain). Unlike CompleteChain it needs no root: a server
// sends its chain without one. Certificates that are not part of the
// chain are left out; validity dates are not checked.
func ChainFor(pub crypto.PublicKey, certs []*x509.Certificate) ([]*x509.Certificate, error) {
	leaf, err := carrying(pub, certs)
	if err != nil {
		return nil, err
	}
	chain := buildChain(leaf, certs)
	for i := 0; i+1 < len(chain); i++ {
		if err := signedBy(chain[i], chain[i+1]); err != nil {
			return nil, newErr(ErrUntrustedChain, "", err, "certificate %q is not signed by %q", chain[i].Subject, chain[i+1].Subject)
		}
	}
	return chain, nil
}

// carrying returns the certificate of certs whose public key is pub.
func carrying(pub crypto.PublicKey, certs []*x509.Certificate) (*x509.Certificate, error) {
	for _, c := range certs {
		if publicKeysEqual(pub, c.PublicKey) {
			return c, nil
		}
	}
	return nil, newErr(ErrKeyMismatch, "", nil, "no certificate of %s carries the private key's public key", subjects(certs))
}

func subjects(certs []*x509.Certificate) string {
	s := make([]string, len(certs))
	for i, c := range certs {
		s[i] = strconv.Quote(c.Subject.String())
	}
	return strings.Join(s, ", ")
}

// trustedCerts returns the certificates of all trusted certificate entries.
func (k *Keystore) trustedCerts() []*x509.Certificate {
	var out []*x509.Certificate
	for _, a := range k.aliases(TrustedCertificate) {
		out = append(out, k.entries[a].chain[0])
	}
	return out
}

// ImportTrustedPEM adds the certificates of a PEM bundle as trusted
// certificate entries (keytool -importcert -trustcacerts -alias alias): one
// certificate is stored under alias, n > 1 under alias-1 ... alias-n. Trusted
// entries of the same group (see TrustedGroup) that the bundle no longer holds
// are removed, so importing again replaces the group. It returns the aliases
// written.
func (k *Keystore) ImportTrustedPEM(alias string, pemBundle []byte) ([]string, error) {
	alias = normAlias(alias)
	if alias == "" {
		return nil, k.err(ErrInvalidInput, "", nil, "empty alias")
	}
	certs, err := ParseCertificatesPEM(pemBundle)
	if err != nil {
		return nil, withPath(withAlias(err, alias), k.path)
	}
	names := []string{alias}
	if len(certs) > 1 {
		names = names[:0]
		for i := range certs {
			names = append(names, alias+"-"+strconv.Itoa(i+1))
		}
	}
	for _, n := range names {
		if e, ok := k.entries[n]; ok && e.kind == PrivateKey {
			return nil, k.err(ErrInvalidInput, n, nil, "alias already names a PrivateKeyEntry")
		}
	}
	for _, old := range k.TrustedGroup(alias) {
		delete(k.entries, old.Alias)
	}
	for i, c := range certs {
		if err := k.SetTrustedCertificate(names[i], c); err != nil {
			return nil, err
		}
	}
	k.dirty = true
	return names, nil
}

// TrustedGroup returns the trusted certificate entries ImportTrustedPEM
// manages for alias: alias itself and alias-<n>, sorted by alias.
func (k *Keystore) TrustedGroup(alias string) []Entry {
	alias = normAlias(alias)
	var out []Entry
	for _, e := range k.Entries() {
		if e.Kind != TrustedCertificate {
			continue
		}
		if e.Alias == alias {
			out = append(out, e)
		} else if n, ok := strings.CutPrefix(e.Alias, alias+"-"); ok {
			if _, err := strconv.Atoi(n); err == nil && n[0] != '-' && n[0] != '+' {
				out = append(out, e)
			}
		}
	}
	return out
}

// Validate checks the private key entry alias ("" for the only one) as a TLS
// server would use it at time t (zero: now): the key decrypts with keyPassword
// (empty: the store password) and matches the leaf, each certificate is
// signed by the next, and every certificate is valid at t.
func (k *Keystore) Validate(alias string, keyPassword []byte, t time.Time) error {
	if t.IsZero() {
		t = now()
	}
	a, err := k.PrivateKeyAlias(alias)
	if err != nil {
		return err
	}
	if _, err := k.TLSCertificate(a, keyPassword); err != nil {
		return err
	}
	chain := k.entries[a].chain
	for i := 0; i+1 < len(chain); i++ {
		if err := signedBy(chain[i], chain[i+1]); err != nil {
			return k.err(ErrUntrustedChain, a, err, "certificate %d %q is not signed by the next, %q", i, chain[i].Subject, chain[i+1].Subject)
		}
	}
	if err := checkValidity(chain, t); err != nil {
		return withPath(withAlias(err, a), k.path)
	}
	return nil
}
