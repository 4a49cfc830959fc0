package listener

import (
	"crypto/tls"
	"errors"
	"sync/atomic"

	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

// tlsConfig builds a listener's TLS configuration around its certificates
// and the server's session ticket keys. Client certificates are checked
// against the trusted certificate entries of the default certificate's
// keystore, as a Java truststore would; like the certificate they follow
// the keystore file, so a CA imported later (mailstack_certificate_import,
// keytool -importcert) is trusted from the next handshake on.
func tlsConfig(l config.Listener, set *certSet, tickets *ticketKeys) (*tls.Config, error) {
	t := l.TLS
	suites, err := t.CipherSuiteIDs()
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		GetCertificate: set.GetCertificate,
		MinVersion:     t.MinTLSVersion(),
		CipherSuites:   suites,
	}
	tickets.apply(cfg, l)
	switch t.ClientAuth {
	case "", config.ClientAuthNone:
		return cfg, nil
	case config.ClientAuthRequest:
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case config.ClientAuthRequire:
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	def := set.def()
	if t.KeystorePath == "" {
		return nil, errors.New("tls.client_auth checks client certificates against the trusted entries of tls.keystore_path, and it is not set")
	}
	if len(def.trusted.Load().certs) == 0 {
		return nil, errors.New("tls.client_auth needs trusted certificate entries in keystore " + t.KeystorePath + ", and it has none")
	}
	ca := &clientCAConfig{base: cfg, src: def}
	// The handshake runs on a copy of cfg with the trusted entries of the
	// keystore as loaded now; copies are made once per reload, not per
	// handshake, and share cfg's ticket sealing (WrapSession).
	base := cfg.Clone()
	base.GetConfigForClient = ca.get
	return base, nil
}

// clientCAConfig hands out cfg with the source's current client CAs.
type clientCAConfig struct {
	base *tls.Config
	src  *certSource
	cur  atomic.Pointer[clientCAVariant]
}

type clientCAVariant struct {
	trusted *trustedCAs
	cfg     *tls.Config
}

func (c *clientCAConfig) get(*tls.ClientHelloInfo) (*tls.Config, error) {
	trusted := c.src.trusted.Load()
	if v := c.cur.Load(); v != nil && v.trusted == trusted {
		return v.cfg, nil
	}
	cfg := c.base.Clone()
	cfg.ClientCAs = trusted.pool
	c.cur.Store(&clientCAVariant{trusted: trusted, cfg: cfg})
	return cfg, nil
}
