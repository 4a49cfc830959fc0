// Package config defines the mail runtime's configuration document: the
// types persisted as config.json in a server's state directory, their
// defaults, and their validation. The provider builds these values and the
// runtime accepts them over the control API, so both sides validate with the
// same code and the same enumerations.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"
)

// Protocols a listener can serve.
const (
	ProtocolSMTP       = "smtp"
	ProtocolSubmission = "submission"
	ProtocolIMAP       = "imap"
	ProtocolPOP3       = "pop3"
)

// TLS modes of a listener. Implicit TLS ("socketTLS" in Apache James) and
// STARTTLS are one choice per listener, never both.
const (
	TLSImplicit = "implicit"
	TLSStartTLS = "starttls"
	TLSNone     = "none"
)

// Client-certificate policies of a listener.
const (
	ClientAuthNone    = "none"
	ClientAuthRequest = "request"
	ClientAuthRequire = "require"
)

// Protocols, TLSModes, ClientAuthModes and TLSVersions list the accepted
// values, in the order documentation shows them.
var (
	Protocols       = []string{ProtocolSMTP, ProtocolSubmission, ProtocolIMAP, ProtocolPOP3}
	TLSModes        = []string{TLSImplicit, TLSStartTLS, TLSNone}
	ClientAuthModes = []string{ClientAuthNone, ClientAuthRequest, ClientAuthRequire}
	TLSVersions     = []string{"1.2", "1.3"}
)

// Defaults applied where a field is zero.
const (
	DefaultMaxMessageBytes = 25 << 20
	DefaultMaxRecipients   = 100
	DefaultMinTLSVersion   = "1.2"
	// DefaultMaxConnections is the per-listener limit when
	// Server.MaxConnections is zero. An idle session costs the runtime about
	// 70 KiB and a file descriptor, so 2,000 open connections on one
	// listener stay near 150 MiB; that is twice Dovecot's default of 1,024
	// IMAP processes, leaves room for 1,000 IDLE clients on one port, and
	// is far above what one SMTP port of a small site sees (Postfix runs at
	// most 100 smtpd processes by default).
	DefaultMaxConnections = 2000
	// DefaultMaxConnectionsPerIP is the per-client-address limit when
	// Server.MaxConnectionsPerIP is zero. Like Postfix's
	// smtpd_client_connection_count_limit (50, with $mynetworks exempt), it
	// does not apply to loopback clients: local webmail, fetchmail,
	// monitoring and load tests all share 127.0.0.1.
	DefaultMaxConnectionsPerIP = 50
)

// DefaultCipherSuites are the TLS 1.2 suites a listener offers when its
// tls.cipher_suites is empty: forward-secret ECDHE key exchange with an
// AEAD cipher only, strongest first. Go's own defaults add the CBC-SHA
// suites, which testssl.sh and the Mozilla "intermediate" profile flag
// (Lucky13-style padding oracles, SHA-1 MACs); every client that speaks
// TLS 1.2 since 2013 has one of these. TLS 1.3 suites are all AEAD and not
// configurable.
var DefaultCipherSuites = []string{
	"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
	"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
	"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
	"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
	"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
	"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}

// Document is the whole runtime configuration: config.json.
type Document struct {
	// Server holds the settings shared by every listener.
	Server Server `json:"server"`
	// Listeners maps a listener id (chosen by the provider) to its settings.
	Listeners map[string]Listener `json:"listeners,omitempty"`
	// DKIM maps a DKIM key's DNS name (DKIMKey.Name) to its settings.
	DKIM map[string]DKIMKey `json:"dkim,omitempty"`
}

// Server holds the settings of one mail server.
type Server struct {
	// Hostname is the name in greetings and EHLO replies. Required.
	Hostname string `json:"hostname"`
	// Domains are the local domains SMTP accepts mail for.
	Domains []string `json:"domains,omitempty"`
	// MaxMessageBytes limits one message; zero means DefaultMaxMessageBytes.
	MaxMessageBytes int64 `json:"max_message_bytes,omitempty"`
	// MaxRecipients limits RCPT TO per message; zero means DefaultMaxRecipients.
	MaxRecipients int `json:"max_recipients,omitempty"`
	// MaxConnections limits open connections per listener; zero means
	// DefaultMaxConnections. A client over the limit is told so (421,
	// "* BYE", "-ERR") and hung up on.
	MaxConnections int `json:"max_connections,omitempty"`
	// MaxConnectionsPerIP limits the open connections one client address
	// may hold on a listener, so that one host cannot take every slot
	// (slowloris). Zero means DefaultMaxConnectionsPerIP for clients other
	// than loopback; a positive value applies to every client, loopback
	// included.
	MaxConnectionsPerIP int `json:"max_connections_per_ip,omitempty"`

	// Outbound mail (outbound.go). Relay, when set, sends all mail for
	// other domains through one smarthost; without it, to the recipient
	// domains' MX hosts.
	Relay *Relay `json:"relay,omitempty"`
	// TLSPolicies tighten the TLS required of some destinations.
	TLSPolicies []TLSPolicy `json:"tls_policies,omitempty"`
	// DNSResolvers are the resolvers (IP or IP:port) outbound delivery
	// asks; empty means the host's /etc/resolv.conf. DANE trusts their
	// DNSSEC validation (the AD bit), so they must be validating
	// resolvers reached over a trusted path (loopback).
	DNSResolvers []string `json:"dns_resolvers,omitempty"`
	// CACertificatesPEM are CAs trusted, besides the host's, when outbound
	// delivery verifies a certificate (MTA-STS policy servers, MX hosts
	// under an MTA-STS or verify_certificate policy, the relay).
	CACertificatesPEM string `json:"ca_certificates_pem,omitempty"`
	// Queue is the outbound queue's retry schedule.
	Queue Queue `json:"queue,omitzero"`
	// MetricsAddress is the host:port where Prometheus metrics are served
	// over plain HTTP at /metrics ("127.0.0.1:9154"); empty means none.
	// The host must be an IP address, or empty for every address.
	MetricsAddress string `json:"metrics_address,omitempty"`

	// Store is where users and mail live (store.go): one of Stores; empty
	// means StoreEmbedded.
	Store string `json:"store,omitempty"`
	// PostgresDSN is the PostgreSQL connection string (libpq keyword/value
	// or URL form) when Store is StorePostgres. It may hold a password:
	// the control API never returns it.
	PostgresDSN string `json:"postgres_dsn,omitempty"`
}

// Connections returns the per-listener connection limit in force.
func (s *Server) Connections() int {
	if s.MaxConnections == 0 {
		return DefaultMaxConnections
	}
	return s.MaxConnections
}

// ConnectionsPerIP returns the per-address connection limit in force and
// whether loopback clients are exempt from it (only under the default).
func (s *Server) ConnectionsPerIP() (limit int, exemptLoopback bool) {
	if s.MaxConnectionsPerIP == 0 {
		return DefaultMaxConnectionsPerIP, true
	}
	return s.MaxConnectionsPerIP, false
}

// Listener is one bound address serving one protocol.
type Listener struct {
	// Protocol is one of Protocols.
	Protocol string `json:"protocol"`
	// Address is the IP address to bind ("0.0.0.0", "127.0.0.1", "::1").
	Address string `json:"address"`
	// Port is the TCP port, 1..65535.
	Port int `json:"port"`
	// TLS selects implicit TLS, STARTTLS or none and the certificate.
	TLS TLS `json:"tls"`
	// MaxConnections limits this listener's open connections; zero means
	// the server's (Server.Connections).
	MaxConnections int `json:"max_connections,omitempty"`
	// MaxConnectionsPerIP limits the open connections one client address
	// may hold on this listener, loopback included; zero means the
	// server's (Server.ConnectionsPerIP).
	MaxConnectionsPerIP int `json:"max_connections_per_ip,omitempty"`
}

// TLS is a listener's TLS settings.
//
// A listener serves one or more certificates. The default one is the
// keystore entry of KeystorePath (or, without it, the first of
// Certificates); Certificates adds more, and each handshake picks by the
// name the client asks for (SNI): a certificate naming it exactly, then
// one whose wildcard covers it, then the default. Among certificates for
// the same name (an RSA and an ECDSA one), the first the client supports
// wins, ECDSA before RSA.
type TLS struct {
	// Mode is one of TLSModes.
	Mode string `json:"mode"`
	// KeystorePath is the JKS or PKCS#12 file holding the default
	// certificate. Unless Mode is none, it or Certificates is required.
	KeystorePath string `json:"keystore_path,omitempty"`
	// KeystorePassword opens the keystore.
	KeystorePassword string `json:"keystore_password,omitempty"`
	// KeyPassword opens the private key entry; empty means KeystorePassword.
	KeyPassword string `json:"key_password,omitempty"`
	// Alias names the private key entry; empty means the only one.
	Alias string `json:"alias,omitempty"`
	// MinVersion is "1.2" or "1.3"; empty means DefaultMinTLSVersion.
	MinVersion string `json:"min_version,omitempty"`
	// CipherSuites restricts TLS 1.2 suites by their IANA names; empty
	// means DefaultCipherSuites.
	CipherSuites []string `json:"cipher_suites,omitempty"`
	// ClientAuth is one of ClientAuthModes; empty means none. Client
	// certificates are checked against the trusted certificate entries of
	// the default certificate's keystore.
	ClientAuth string `json:"client_auth,omitempty"`
	// Certificates are the listener's certificates besides the default.
	Certificates []Certificate `json:"certificates,omitempty"`
	// SessionTickets turns session resumption with tickets (TLS 1.2
	// tickets, TLS 1.3 PSK) on or off; nil means on, except on MX
	// (ProtocolSMTP) listeners, where some sending MTAs mishandle tickets
	// and peers seldom reconnect soon enough to resume. The ticket keys
	// are the server's, shared by all its listeners, and rotated daily.
	SessionTickets *bool `json:"session_tickets,omitempty"`
	// SessionTicketLifetime is how long a ticket resumes a session, as a
	// Go duration between MinSessionTicketLifetime and
	// MaxSessionTicketLifetime; empty means DefaultSessionTicketLifetime.
	SessionTicketLifetime string `json:"session_ticket_lifetime,omitempty"`
	// OCSPStapling staples an OCSP response to certificates that name a
	// responder; nil means on. A certificate that requires stapling (TLS
	// feature "must staple") is only served with a good response.
	OCSPStapling *bool `json:"ocsp_stapling,omitempty"`
}

// Certificate is one certificate source of a listener: a private key
// entry of a keystore (KeystorePath, KeystorePassword, KeyPassword, Alias,
// as in TLS), or a PEM chain (leaf first) and its PEM private key in two
// files (CertificateFile, PrivateKeyFile), as certbot and cert-manager
// write them. The runtime watches the files and serves a changed
// certificate from the next handshake.
type Certificate struct {
	KeystorePath     string `json:"keystore_path,omitempty"`
	KeystorePassword string `json:"keystore_password,omitempty"`
	KeyPassword      string `json:"key_password,omitempty"`
	Alias            string `json:"alias,omitempty"`
	CertificateFile  string `json:"certificate_file,omitempty"`
	PrivateKeyFile   string `json:"private_key_file,omitempty"`
}

// Session ticket lifetimes: the default, and the bounds (RFC 8446 section
// 4.6.1 allows at most seven days).
const (
	DefaultSessionTicketLifetime = 24 * time.Hour
	MinSessionTicketLifetime     = time.Minute
	MaxSessionTicketLifetime     = 7 * 24 * time.Hour
)

// Sources lists the certificate sources in force, the default first.
func (t *TLS) Sources() []Certificate {
	if t.Mode == TLSNone {
		return nil
	}
	var out []Certificate
	if t.KeystorePath != "" {
		out = append(out, Certificate{KeystorePath: t.KeystorePath, KeystorePassword: t.KeystorePassword,
			KeyPassword: t.KeyPassword, Alias: t.Alias})
	}
	return append(out, t.Certificates...)
}

// TicketsOn reports whether session tickets are on: as set, else on
// except for MX.
func (l *Listener) TicketsOn() bool {
	if l.TLS.SessionTickets != nil {
		return *l.TLS.SessionTickets
	}
	return l.Protocol != ProtocolSMTP
}

// StaplingOn reports whether OCSP stapling is on.
func (t *TLS) StaplingOn() bool { return t.OCSPStapling == nil || *t.OCSPStapling }

// TicketLifetime returns the session ticket lifetime in force.
func (t *TLS) TicketLifetime() time.Duration {
	d, err := time.ParseDuration(t.SessionTicketLifetime)
	if t.SessionTicketLifetime == "" || err != nil {
		return DefaultSessionTicketLifetime
	}
	return d
}

// Redacted returns t without its passwords, for answers and logs.
func (t TLS) Redacted() TLS {
	t.KeystorePassword, t.KeyPassword = "", ""
	certs := make([]Certificate, len(t.Certificates))
	for i, c := range t.Certificates {
		c.KeystorePassword, c.KeyPassword = "", ""
		certs[i] = c
	}
	if t.Certificates != nil {
		t.Certificates = certs
	}
	return t
}

// Decode reads a Document strictly: unknown fields and trailing data are
// errors, and the result is validated.
func Decode(r io.Reader) (*Document, error) {
	var doc Document
	if err := decodeStrict(r, &doc); err != nil {
		return nil, err
	}
	if err := doc.Validate(); err != nil {
		return nil, err
	}
	return &doc, nil
}

// DecodeStrict decodes one JSON value into v, refusing unknown fields and
// trailing data. The control API decodes request bodies with it.
func DecodeStrict(r io.Reader, v any) error { return decodeStrict(r, v) }

func decodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decoding config: %w", err)
	}
	if dec.More() {
		return errors.New("decoding config: unexpected data after the JSON value")
	}
	return nil
}

// Encode renders a Document as indented JSON.
func (d *Document) Encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Clone returns a deep copy, so a candidate document can be changed and
// validated without touching the one in force.
func (d *Document) Clone() *Document {
	c := &Document{Server: d.Server, Listeners: make(map[string]Listener, len(d.Listeners))}
	c.Server.Domains = append([]string(nil), d.Server.Domains...)
	c.Server.TLSPolicies = slices.Clone(d.Server.TLSPolicies)
	for i, p := range c.Server.TLSPolicies {
		c.Server.TLSPolicies[i].FingerprintsSHA256 = slices.Clone(p.FingerprintsSHA256)
	}
	c.Server.DNSResolvers = slices.Clone(d.Server.DNSResolvers)
	if d.Server.Relay != nil {
		r := *d.Server.Relay
		c.Server.Relay = &r
	}
	if d.DKIM != nil {
		c.DKIM = maps.Clone(d.DKIM)
	}
	for id, l := range d.Listeners {
		l.TLS.CipherSuites = append([]string(nil), l.TLS.CipherSuites...)
		l.TLS.Certificates = append([]Certificate(nil), l.TLS.Certificates...)
		c.Listeners[id] = l
	}
	return c
}
