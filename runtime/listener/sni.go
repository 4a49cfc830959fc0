package listener

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

// certSet is the certificates of one listener: its sources, the default
// first, and an index of what they serve by name that is rebuilt whenever
// a source's certificate changes. A handshake loads the index and looks
// the client's server name (SNI) up: a certificate for exactly that name,
// then one whose wildcard covers it, then the default's; among several
// for a name, the first the client supports (ECDSA and Ed25519 before
// RSA). With one certificate there is nothing to choose and nothing to
// look up.
type certSet struct {
	sources []*certSource
	index   atomic.Pointer[certIndex]
	// rebuildMu makes rebuilds one at a time: two sources that reload at
	// once (two aliases of one keystore) each rebuild, and the index built
	// first, from the other's old certificate, must not be stored last.
	rebuildMu sync.Mutex
}

type certIndex struct {
	// only is the one certificate when there is nothing to choose from.
	only  *tls.Certificate
	exact map[string][]*tls.Certificate
	wild  map[string][]*tls.Certificate // "example.com" for "*.example.com"
	// fallback serves clients whose name matches nothing, or that send
	// none: the default certificate and the others for its first name.
	fallback []*tls.Certificate
	// served is what each source (by position in the set) served when the
	// index was built, nil for none: status reports that, and so never a
	// certificate that a source has loaded but handshakes do not get yet.
	served []*tls.Certificate
}

// errNoCertificate fails handshakes while a listener has nothing it may
// serve (every certificate must be stapled and has no good staple).
var errNoCertificate = errors.New("no certificate to serve: see the listener's status")

// newCertSet acquires the sources of t from the cache, the default first.
func (c *certCache) newCertSet(t config.TLS) (*certSet, error) {
	set := &certSet{}
	for _, src := range t.Sources() {
		s, err := c.acquire(src, t.StaplingOn())
		if err != nil {
			c.releaseSet(set)
			return nil, err
		}
		set.sources = append(set.sources, s)
		s.subscribe(set)
	}
	set.rebuild()
	return set, nil
}

// releaseSet lets go of a set's sources.
func (c *certCache) releaseSet(set *certSet) {
	if set == nil {
		return
	}
	for _, s := range set.sources {
		s.unsubscribe(set)
		c.release(s)
	}
}

// def is the default source.
func (set *certSet) def() *certSource { return set.sources[0] }

// rebuild indexes what the sources serve now.
func (set *certSet) rebuild() {
	set.rebuildMu.Lock()
	defer set.rebuildMu.Unlock()
	idx := &certIndex{exact: map[string][]*tls.Certificate{}, wild: map[string][]*tls.Certificate{},
		served: make([]*tls.Certificate, len(set.sources))}
	var all []*tls.Certificate
	for i, s := range set.sources {
		c := s.served.Load()
		if c == nil || c.Leaf == nil {
			continue
		}
		idx.served[i] = c
		if slices.Contains(all, c) {
			continue
		}
		all = append(all, c)
		for _, name := range certNames(c) {
			if base, ok := strings.CutPrefix(name, "*."); ok {
				idx.wild[base] = appendByPreference(idx.wild[base], c)
			} else {
				idx.exact[name] = appendByPreference(idx.exact[name], c)
			}
		}
	}
	if def := idx.served[0]; def != nil {
		idx.fallback = []*tls.Certificate{def}
		if names := certNames(def); len(names) > 0 {
			for _, c := range idx.exact[names[0]] {
				if c != def {
					idx.fallback = append(idx.fallback, c)
				}
			}
		}
	} else if len(all) > 0 {
		idx.fallback = all[:1]
	}
	if len(all) == 1 {
		idx.only = all[0]
	}
	set.index.Store(idx)
}

// certNames are the names a certificate serves: its DNS names, or its
// common name when it has none; lower case.
func certNames(c *tls.Certificate) []string {
	names := c.Leaf.DNSNames
	if len(names) == 0 && c.Leaf.Subject.CommonName != "" {
		names = []string{c.Leaf.Subject.CommonName}
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.ToLower(strings.TrimSuffix(n, "."))
	}
	return out
}

// appendByPreference adds c to a name's list: elliptic-curve keys (cheaper
// handshakes) before RSA, otherwise in source order.
func appendByPreference(list []*tls.Certificate, c *tls.Certificate) []*tls.Certificate {
	if !ellipticKey(c) {
		return append(list, c)
	}
	i := 0
	for i < len(list) && ellipticKey(list[i]) {
		i++
	}
	return slices.Insert(list, i, c)
}

func ellipticKey(c *tls.Certificate) bool {
	switch c.PrivateKey.(type) {
	case *ecdsa.PrivateKey, ed25519.PrivateKey:
		return true
	}
	return false
}

// GetCertificate picks the certificate for a handshake. It does no I/O
// and takes no lock.
func (set *certSet) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	idx := set.index.Load()
	if idx.only != nil {
		return idx.only, nil
	}
	if name := hello.ServerName; name != "" {
		name = lowerName(name)
		if c := pick(hello, idx.exact[name]); c != nil {
			return c, nil
		}
		if i := strings.IndexByte(name, '.'); i > 0 {
			if c := pick(hello, idx.wild[name[i+1:]]); c != nil {
				return c, nil
			}
		}
	}
	if c := pick(hello, idx.fallback); c != nil {
		return c, nil
	}
	if len(idx.fallback) > 0 {
		// The client supports none: let the handshake say so.
		return idx.fallback[0], nil
	}
	return nil, errNoCertificate
}

// pick returns the first certificate of list that the client supports.
func pick(hello *tls.ClientHelloInfo, list []*tls.Certificate) *tls.Certificate {
	if len(list) == 1 {
		return list[0]
	}
	for _, c := range list {
		if hello.SupportsCertificate(c) == nil {
			return c
		}
	}
	return nil
}

// lowerName lower-cases a server name, without allocating when it already
// is, and drops a final dot.
func lowerName(name string) string {
	name = strings.TrimSuffix(name, ".")
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(name)
		}
	}
	return name
}

// status describes the set in st: the default's certificate as the
// listener's, and each source. A served certificate is described as the
// index handshakes look up has it: a reload is reported once handshakes
// get the new certificate, not when it has been read.
func (set *certSet) status(st *Status, t config.TLS) {
	var problems []string
	idx := set.index.Load()
	for i, s := range set.sources {
		cs := CertificateStatus{Source: s.name(), LastError: s.lastError()}
		if s.key.Alias != "" {
			cs.Source += " alias " + s.key.Alias
		}
		c := idx.served[i]
		cs.Served = c != nil
		if c == nil {
			c = s.loaded.Load() // not served (stapling): what was read
		}
		if c != nil && c.Leaf != nil {
			cs.Names = certNames(c)
			cs.Fingerprint = keystore.Fingerprint(c.Leaf)
			cs.NotAfter = c.Leaf.NotAfter
		}
		if s.stapler != nil {
			cs.OCSP = s.stapler.state()
		}
		if i == 0 && cs.Served {
			st.CertificateFingerprint, st.CertificateNotAfter = cs.Fingerprint, cs.NotAfter
		}
		switch {
		case cs.LastError != "":
			problems = append(problems, cs.Source+": "+cs.LastError)
		case !cs.Served:
			problems = append(problems, cs.Source+": not served: "+cs.OCSP)
		}
		st.Certificates = append(st.Certificates, cs)
	}
	if auth := t.ClientAuth; (auth == config.ClientAuthRequest || auth == config.ClientAuthRequire) && len(set.def().trusted.Load().certs) == 0 {
		problems = append(problems, "keystore "+t.KeystorePath+" has no trusted certificate entries any more: no client certificate can be verified")
	}
	st.LastError = strings.Join(problems, "; ")
}
