package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Validate checks the whole document and reports every problem it finds,
// each naming the field (and listener id) it is about.
func (d *Document) Validate() error {
	errs := []error{d.Server.Validate()}
	for name, k := range d.DKIM {
		if err := k.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("dkim key %q: %w", name, err))
		} else if k.Name() != name {
			errs = append(errs, fmt.Errorf("dkim key %q: must be stored under its DNS name %q", name, k.Name()))
		}
	}
	ids := make([]string, 0, len(d.Listeners))
	for id := range d.Listeners {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	bound := map[string]string{}
	for _, id := range ids {
		l := d.Listeners[id]
		if err := l.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("listener %q: %w", id, err))
			continue
		}
		if other, ok := bound[l.Addr()]; ok {
			errs = append(errs, fmt.Errorf("listener %q: address %s is already used by listener %q", id, l.Addr(), other))
			continue
		}
		bound[l.Addr()] = id
	}
	if a := d.Server.MetricsAddress; a != "" {
		if id, ok := bound[a]; ok {
			errs = append(errs, fmt.Errorf("server: metrics_address %s is already used by listener %q", a, id))
		}
	}
	return errors.Join(errs...)
}

// Validate checks the server settings.
func (s *Server) Validate() error {
	var errs []error
	if strings.TrimSpace(s.Hostname) == "" {
		errs = append(errs, errors.New("server: hostname must not be empty"))
	} else if strings.ContainsAny(s.Hostname, " \t\r\n") {
		errs = append(errs, fmt.Errorf("server: hostname %q must not contain white space", s.Hostname))
	}
	for _, d := range s.Domains {
		if d == "" || strings.ContainsAny(d, " \t\r\n@") {
			errs = append(errs, fmt.Errorf("server: domain %q is not a domain name", d))
		}
	}
	if s.MaxMessageBytes < 0 {
		errs = append(errs, fmt.Errorf("server: max_message_bytes %d must not be negative", s.MaxMessageBytes))
	}
	if s.MaxRecipients < 0 {
		errs = append(errs, fmt.Errorf("server: max_recipients %d must not be negative", s.MaxRecipients))
	}
	if s.MaxConnections < 0 {
		errs = append(errs, fmt.Errorf("server: max_connections %d must not be negative", s.MaxConnections))
	}
	if s.MaxConnectionsPerIP < 0 {
		errs = append(errs, fmt.Errorf("server: max_connections_per_ip %d must not be negative", s.MaxConnectionsPerIP))
	}
	errs = append(errs, s.validateOutbound(), s.validateStore())
	if s.MetricsAddress != "" {
		if err := validHostPort(s.MetricsAddress); err != nil {
			errs = append(errs, fmt.Errorf("server: metrics_address %q %w", s.MetricsAddress, err))
		}
	}
	return errors.Join(errs...)
}

// validHostPort checks an "ip:port" or ":port" listen address.
func validHostPort(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return errors.New("is not host:port")
	}
	if host != "" && net.ParseIP(host) == nil {
		return fmt.Errorf("must name an IP address, not %q", host)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("has port %q outside 1..65535", port)
	}
	return nil
}

// Validate checks one listener's settings.
func (l *Listener) Validate() error {
	var errs []error
	if !slices.Contains(Protocols, l.Protocol) {
		errs = append(errs, fmt.Errorf("protocol %q is not one of %s", l.Protocol, strings.Join(Protocols, ", ")))
	}
	if net.ParseIP(l.Address) == nil {
		errs = append(errs, fmt.Errorf("address %q is not an IP address", l.Address))
	}
	if l.Port < 1 || l.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d is outside 1..65535", l.Port))
	}
	if err := l.TLS.Validate(); err != nil {
		errs = append(errs, err)
	}
	if l.MaxConnections < 0 {
		errs = append(errs, fmt.Errorf("max_connections %d must not be negative", l.MaxConnections))
	}
	if l.MaxConnectionsPerIP < 0 {
		errs = append(errs, fmt.Errorf("max_connections_per_ip %d must not be negative", l.MaxConnectionsPerIP))
	}
	return errors.Join(errs...)
}

// Addr is the listener's host:port.
func (l *Listener) Addr() string {
	return net.JoinHostPort(l.Address, fmt.Sprint(l.Port))
}

// Validate checks the TLS settings without reading the keystore; the
// listener manager loads it before anything changes.
func (t *TLS) Validate() error {
	var errs []error
	if !slices.Contains(TLSModes, t.Mode) {
		errs = append(errs, fmt.Errorf("tls.mode %q is not one of %s", t.Mode, strings.Join(TLSModes, ", ")))
	}
	if t.Mode != TLSNone {
		if t.KeystorePath == "" && len(t.Certificates) == 0 {
			errs = append(errs, fmt.Errorf("tls.keystore_path (or a tls.certificates entry) is required when tls.mode is %q", t.Mode))
		}
		if t.KeystorePath != "" && t.KeystorePassword == "" {
			errs = append(errs, fmt.Errorf("tls.keystore_password is required when tls.mode is %q", t.Mode))
		}
	}
	for i, c := range t.Certificates {
		if err := c.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("tls.certificates[%d]: %w", i, err))
		}
	}
	if t.SessionTicketLifetime != "" {
		d, err := time.ParseDuration(t.SessionTicketLifetime)
		if err != nil || d < MinSessionTicketLifetime || d > MaxSessionTicketLifetime {
			errs = append(errs, fmt.Errorf("tls.session_ticket_lifetime %q is not a duration from %s to %s",
				t.SessionTicketLifetime, MinSessionTicketLifetime, MaxSessionTicketLifetime))
		}
	}
	if t.MinVersion != "" && !slices.Contains(TLSVersions, t.MinVersion) {
		errs = append(errs, fmt.Errorf("tls.min_version %q is not one of %s", t.MinVersion, strings.Join(TLSVersions, ", ")))
	}
	if t.ClientAuth != "" && !slices.Contains(ClientAuthModes, t.ClientAuth) {
		errs = append(errs, fmt.Errorf("tls.client_auth %q is not one of %s", t.ClientAuth, strings.Join(ClientAuthModes, ", ")))
	}
	for _, name := range t.CipherSuites {
		if _, err := CipherSuiteID(name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Validate checks that c names exactly one source: a keystore with its
// password, or a certificate file with its private key file.
func (c *Certificate) Validate() error {
	keystore := c.KeystorePath != "" || c.KeystorePassword != "" || c.KeyPassword != "" || c.Alias != ""
	pem := c.CertificateFile != "" || c.PrivateKeyFile != ""
	switch {
	case keystore && pem:
		return errors.New("a keystore (keystore_path) or PEM files (certificate_file, private_key_file), not both")
	case keystore && (c.KeystorePath == "" || c.KeystorePassword == ""):
		return errors.New("keystore_path and keystore_password are required together")
	case pem && (c.CertificateFile == "" || c.PrivateKeyFile == ""):
		return errors.New("certificate_file and private_key_file are required together")
	case !keystore && !pem:
		return errors.New("empty: name a keystore (keystore_path) or PEM files (certificate_file, private_key_file)")
	}
	return nil
}

// MinTLSVersion returns the crypto/tls constant for MinVersion.
func (t *TLS) MinTLSVersion() uint16 {
	if t.MinVersion == "1.3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

// CipherSuiteIDs returns the crypto/tls IDs of the suites in force:
// CipherSuites, or DefaultCipherSuites when it is empty.
func (t *TLS) CipherSuiteIDs() ([]uint16, error) {
	names := t.CipherSuites
	if len(names) == 0 {
		names = DefaultCipherSuites
	}
	ids := make([]uint16, 0, len(names))
	for _, name := range names {
		id, err := CipherSuiteID(name)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// CipherSuiteID maps an IANA cipher suite name to its crypto/tls ID. Only
// suites crypto/tls considers secure are accepted.
func CipherSuiteID(name string) (uint16, error) {
	for _, cs := range tls.CipherSuites() {
		if cs.Name == name {
			return cs.ID, nil
		}
	}
	return 0, fmt.Errorf("tls.cipher_suites: %q is not a secure cipher suite known to this runtime", name)
}
