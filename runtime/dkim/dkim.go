// Package dkim owns the runtime's DKIM signing keys and signs outbound
// mail with them (RFC 6376, relaxed/relaxed; RSA 2048 or Ed25519 per RFC
// 8463), through github.com/emersion/go-msgauth.
//
// The private keys never leave the host: the runtime makes each key in its
// state directory (<dir>/<selector>._domainkey.<domain>.key, PKCS#8 PEM,
// mode 0600) and hands out only the public part, as the TXT record to
// publish. So Terraform state holds no DKIM secret, and a key survives
// restarts and re-applies unchanged.
//
// Every key of a domain signs that domain's mail. Rotating a selector is
// therefore gapless: add the new key (both sign; publish its record), then
// remove the old one once verifiers have the new record.
package dkim

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	msgdkim "github.com/emersion/go-msgauth/dkim"

	"github.com/mailstack/terraform-provider-mailstack/internal/atomicfile"
	"github.com/mailstack/terraform-provider-mailstack/internal/errkind"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

// ErrNotFound means there is no key of that name.
var ErrNotFound = errkind.New(errkind.NotFound, "no such DKIM key")

// rsaBits is the size of new RSA keys (RFC 8301 section 3.2 asks for at
// least 1024, and 2048 is what large receivers expect).
const rsaBits = 2048

// signedHeaders are the fields signed (RFC 6376 section 5.4.1). From is
// listed twice so that a second From added on the way breaks the signature
// (oversigning, section 8.15).
var signedHeaders = []string{
	"From", "From", "Reply-To", "Subject", "Date", "To", "Cc", "Message-ID",
	"In-Reply-To", "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
}

// Public is what may be known about a key.
type Public struct {
	config.DKIMKey
	// Name is where the record goes: <selector>._domainkey.<domain>.
	Name string `json:"name"`
	// TXT is the record's value: "v=DKIM1; k=rsa; p=<base64 SPKI>" or
	// "v=DKIM1; k=ed25519; p=<base64 raw key>" (RFC 8463 section 4.2).
	TXT string `json:"txt"`
	// FileProblem is empty while the key's file holds the key that signs;
	// else it says what is wrong with the file (gone, damaged, another
	// key). The key still signs, but a restart would lose it: Put with
	// the same key writes the file again.
	FileProblem string `json:"file_problem,omitempty"`
}

type key struct {
	cfg    config.DKIMKey
	signer crypto.Signer
}

// Keys is the set of signing keys. It is safe for concurrent use.
type Keys struct {
	dir string

	mu   sync.RWMutex
	keys map[string]*key // by name
}

// Open loads (making what is missing) the keys of cfgs from dir.
func Open(dir string, cfgs map[string]config.DKIMKey) (*Keys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating DKIM key directory: %w", err)
	}
	k := &Keys{dir: dir, keys: map[string]*key{}}
	for _, cfg := range cfgs {
		if _, err := k.Put(cfg); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// KeyFile is the name of key name's file in the key directory; the
// provider looks for it to tell a key the runtime forgot (its config
// lost) from one whose material is gone too.
func KeyFile(name string) string { return name + ".key" }

func (k *Keys) path(name string) string { return filepath.Join(k.dir, KeyFile(name)) }

// Put makes cfg's key if there is none of that name and algorithm on disk,
// loads it and returns its public part. A key of another algorithm under
// the same name is replaced, and so is a file that holds no key (damaged:
// it can never sign again, and a runtime that refused to start over it
// would take all mail down with its DKIM). A key already signing under that name and
// algorithm stays: its record is the one published, so a key file that
// went away, was damaged or holds another key since is written again
// from it.
func (k *Keys) Put(cfg config.DKIMKey) (Public, error) {
	if err := cfg.Validate(); err != nil {
		return Public{}, err
	}
	name := cfg.Name()
	signer, err := k.load(name, cfg.Algorithm)
	if held := k.signer(name, cfg.Algorithm); held != nil && (err != nil || !samePublic(held, signer)) {
		signer, err = held, k.save(name, held)
	}
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, errWrongAlgorithm) || errors.Is(err, errDamaged) {
		signer, err = k.generate(name, cfg.Algorithm)
	}
	if err != nil {
		return Public{}, err
	}
	k.mu.Lock()
	k.keys[name] = &key{cfg: cfg, signer: signer}
	k.mu.Unlock()
	return public(cfg, signer), nil
}

var (
	errWrongAlgorithm = errors.New("key of another algorithm")
	errDamaged        = errors.New("not a private key")
)

func (k *Keys) load(name, algorithm string) (crypto.Signer, error) {
	b, err := os.ReadFile(k.path(name))
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("DKIM key %s: %w (no PEM block)", k.path(name), errDamaged)
	}
	pk, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("DKIM key %s: %w (%w)", k.path(name), errDamaged, err)
	}
	switch s := pk.(type) {
	case *rsa.PrivateKey:
		if algorithm == config.DKIMRSA {
			return s, nil
		}
	case ed25519.PrivateKey:
		if algorithm == config.DKIMEd25519 {
			return s, nil
		}
	default:
		return nil, fmt.Errorf("DKIM key %s: %w (unsupported key type %T)", k.path(name), errDamaged, pk)
	}
	return nil, errWrongAlgorithm
}

func (k *Keys) generate(name, algorithm string) (crypto.Signer, error) {
	var signer crypto.Signer
	var err error
	if algorithm == config.DKIMEd25519 {
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	} else {
		signer, err = rsa.GenerateKey(rand.Reader, rsaBits)
	}
	if err != nil {
		return nil, fmt.Errorf("generating DKIM key %s: %w", name, err)
	}
	return signer, k.save(name, signer)
}

// save writes signer to key name's file, atomically.
func (k *Keys) save(name string, signer crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(signer)
	if err != nil {
		return fmt.Errorf("saving DKIM key %s: %w", name, err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := atomicfile.WriteFile(k.path(name), data, 0o600); err != nil {
		return fmt.Errorf("saving DKIM key %s: %w", name, err)
	}
	return nil
}

// signer returns the key signing as name if it is of algorithm, else nil.
func (k *Keys) signer(name, algorithm string) crypto.Signer {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if kk, ok := k.keys[name]; ok && kk.cfg.Algorithm == algorithm {
		return kk.signer
	}
	return nil
}

// samePublic reports whether a and b (which may be nil) are the same key.
func samePublic(a, b crypto.Signer) bool {
	if a == nil || b == nil {
		return false
	}
	pub, ok := a.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(b.Public())
}

// fileProblem says what is wrong with the file of kk, which signs as
// name: empty when the file holds kk's key.
func (k *Keys) fileProblem(name string, kk *key) string {
	signer, err := k.load(name, kk.cfg.Algorithm)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return k.path(name) + " is gone"
	case errors.Is(err, errWrongAlgorithm):
		return k.path(name) + " holds a key of another algorithm"
	case err != nil:
		return err.Error()
	case !samePublic(kk.signer, signer):
		return k.path(name) + " holds another key"
	}
	return ""
}

func public(cfg config.DKIMKey, signer crypto.Signer) Public {
	p := Public{DKIMKey: cfg, Name: cfg.Name()}
	switch pub := signer.Public().(type) {
	case ed25519.PublicKey:
		p.TXT = "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
	default:
		der, _ := x509.MarshalPKIXPublicKey(pub)
		p.TXT = "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	}
	return p
}

// Get returns the public part of key name, and whether its file still
// holds it (Public.FileProblem).
func (k *Keys) Get(name string) (Public, error) {
	k.mu.RLock()
	kk, ok := k.keys[name]
	k.mu.RUnlock()
	if !ok {
		return Public{}, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	p := public(kk.cfg, kk.signer)
	p.FileProblem = k.fileProblem(name, kk)
	return p, nil
}

// Delete stops signing with key name and removes it from disk, also a
// key file no config names any more (left by a lost config.json).
// ErrNotFound if there was neither.
func (k *Keys) Delete(name string) error {
	k.mu.Lock()
	_, ok := k.keys[name]
	delete(k.keys, name)
	k.mu.Unlock()
	err := os.Remove(k.path(name))
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("removing DKIM key: %w", err)
	case !ok:
		return fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	return nil
}

// forDomain returns the keys of domain, by name, so signatures come in a
// stable order.
func (k *Keys) forDomain(domain string) []*key {
	k.mu.RLock()
	defer k.mu.RUnlock()
	var out []*key
	for _, kk := range k.keys {
		if strings.EqualFold(kk.cfg.Domain, domain) {
			out = append(out, kk)
		}
	}
	slices.SortFunc(out, func(a, b *key) int { return strings.Compare(a.cfg.Name(), b.cfg.Name()) })
	return out
}

// Sign returns msg with a DKIM-Signature field in front for every key of
// the domain of its From address; msg itself when there is none. msg must
// have CRLF line endings.
func (k *Keys) Sign(msg []byte) ([]byte, error) {
	domain := fromDomain(msg)
	if domain == "" {
		return msg, nil
	}
	keys := k.forDomain(domain)
	if len(keys) == 0 {
		return msg, nil
	}
	var sigs []string
	for _, kk := range keys {
		s, err := msgdkim.NewSigner(&msgdkim.SignOptions{
			Domain: kk.cfg.Domain, Selector: kk.cfg.Selector, Signer: kk.signer,
			HeaderCanonicalization: msgdkim.CanonicalizationRelaxed,
			BodyCanonicalization:   msgdkim.CanonicalizationRelaxed,
			HeaderKeys:             signedHeaders,
		})
		if err != nil {
			return nil, fmt.Errorf("DKIM signing with %s: %w", kk.cfg.Name(), err)
		}
		if _, err := s.Write(msg); err != nil {
			s.Close()
			return nil, fmt.Errorf("DKIM signing with %s: %w", kk.cfg.Name(), err)
		}
		if err := s.Close(); err != nil {
			return nil, fmt.Errorf("DKIM signing with %s: %w", kk.cfg.Name(), err)
		}
		sigs = append(sigs, s.Signature())
	}
	n := len(msg)
	for _, s := range sigs {
		n += len(s)
	}
	out := make([]byte, 0, n)
	for _, s := range sigs {
		out = append(out, s...)
	}
	return append(out, msg...), nil
}

// fromDomain returns the domain of the (first) address in msg's From
// field, lower case; empty when there is none.
func fromDomain(msg []byte) string {
	hdr, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(msg))).ReadMIMEHeader()
	if err != nil && len(hdr) == 0 {
		return ""
	}
	addrs, err := mail.ParseAddressList(hdr.Get("From"))
	if err != nil || len(addrs) == 0 {
		return ""
	}
	a := addrs[0].Address
	return strings.ToLower(a[strings.LastIndexByte(a, '@')+1:])
}
