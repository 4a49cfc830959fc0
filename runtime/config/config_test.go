package config

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"
	"time"
)

// Every default suite is one crypto/tls knows as secure, uses ECDHE and an
// AEAD cipher, and is offered in the order listed.
func TestDefaultCipherSuites(t *testing.T) {
	ids, err := (&TLS{}).CipherSuiteIDs()
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != len(DefaultCipherSuites) {
		t.Fatalf("%d ids for %d names", len(ids), len(DefaultCipherSuites))
	}
	for i, id := range ids {
		name := tls.CipherSuiteName(id)
		if name != DefaultCipherSuites[i] {
			t.Errorf("suite %d is %s, want %s", i, name, DefaultCipherSuites[i])
		}
		if !strings.HasPrefix(name, "TLS_ECDHE_") || !(strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20_POLY1305")) {
			t.Errorf("%s is not ECDHE with an AEAD cipher", name)
		}
	}
	named, err := (&TLS{CipherSuites: []string{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"}}).CipherSuiteIDs()
	if err != nil || !slices.Equal(named, []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}) {
		t.Errorf("named suites: %v, %v", named, err)
	}
	if _, err := (&TLS{CipherSuites: []string{"TLS_RSA_WITH_RC4_128_SHA"}}).CipherSuiteIDs(); err == nil {
		t.Error("an insecure suite was accepted")
	}
}

// A listener's certificate sources: the default from keystore_path, then
// the certificates; each names one keystore or one pair of PEM files.
func TestCertificateSources(t *testing.T) {
	ks := Certificate{KeystorePath: "/k.p12", KeystorePassword: "pw"}
	pem := Certificate{CertificateFile: "/c.pem", PrivateKeyFile: "/c.key"}
	tests := []struct {
		name string
		tls  TLS
		want []Certificate
		err  string
	}{
		{"keystore only", TLS{Mode: TLSImplicit, KeystorePath: "/d.jks", KeystorePassword: "x", Alias: "a"},
			[]Certificate{{KeystorePath: "/d.jks", KeystorePassword: "x", Alias: "a"}}, ""},
		{"default then more", TLS{Mode: TLSStartTLS, KeystorePath: "/d.jks", KeystorePassword: "x", Certificates: []Certificate{ks, pem}},
			[]Certificate{{KeystorePath: "/d.jks", KeystorePassword: "x"}, ks, pem}, ""},
		{"PEM default", TLS{Mode: TLSImplicit, Certificates: []Certificate{pem}}, []Certificate{pem}, ""},
		{"none needs nothing", TLS{Mode: TLSNone}, nil, ""},
		{"no source", TLS{Mode: TLSImplicit}, nil, "tls.keystore_path (or a tls.certificates entry) is required"},
		{"keystore without password", TLS{Mode: TLSImplicit, KeystorePath: "/d.jks"}, nil, "tls.keystore_password is required"},
		{"both kinds in one", TLS{Mode: TLSImplicit, Certificates: []Certificate{{KeystorePath: "/k", KeystorePassword: "p", CertificateFile: "/c"}}}, nil,
			"tls.certificates[0]: a keystore (keystore_path) or PEM files"},
		{"PEM without key", TLS{Mode: TLSImplicit, Certificates: []Certificate{{CertificateFile: "/c"}}}, nil,
			"tls.certificates[0]: certificate_file and private_key_file are required together"},
		{"keystore without password in list", TLS{Mode: TLSImplicit, Certificates: []Certificate{pem, {KeystorePath: "/k"}}}, nil,
			"tls.certificates[1]: keystore_path and keystore_password are required together"},
		{"empty entry", TLS{Mode: TLSImplicit, Certificates: []Certificate{{}}}, nil, "tls.certificates[0]: empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.tls.Validate()
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("Validate() = %v; want %q", err, tc.err)
			}
			if err == nil && !slices.Equal(tc.tls.Sources(), tc.want) {
				t.Errorf("Sources() = %+v; want %+v", tc.tls.Sources(), tc.want)
			}
		})
	}
}

func TestSessionTicketSettings(t *testing.T) {
	off, on := false, true
	for _, tc := range []struct {
		tls      TLS
		tickets  bool
		lifetime time.Duration
		err      string
	}{
		{TLS{Mode: TLSNone}, true, DefaultSessionTicketLifetime, ""},
		{TLS{Mode: TLSNone, SessionTickets: &off}, false, DefaultSessionTicketLifetime, ""},
		{TLS{Mode: TLSNone, SessionTickets: &on, SessionTicketLifetime: "90m"}, true, 90 * time.Minute, ""},
		{TLS{Mode: TLSNone, SessionTicketLifetime: "168h"}, true, 7 * 24 * time.Hour, ""},
		{TLS{Mode: TLSNone, SessionTicketLifetime: "169h"}, true, 0, "is not a duration from 1m0s to 168h0m0s"},
		{TLS{Mode: TLSNone, SessionTicketLifetime: "30s"}, true, 0, "is not a duration"},
		{TLS{Mode: TLSNone, SessionTicketLifetime: "a day"}, true, 0, "is not a duration"},
	} {
		err := tc.tls.Validate()
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%+v: Validate() = %v; want %q", tc.tls, err, tc.err)
			continue
		}
		l := Listener{Protocol: ProtocolIMAP, TLS: tc.tls}
		if err == nil && (l.TicketsOn() != tc.tickets || tc.tls.TicketLifetime() != tc.lifetime) {
			t.Errorf("%+v: tickets %v lifetime %s; want %v %s", tc.tls, l.TicketsOn(), tc.tls.TicketLifetime(), tc.tickets, tc.lifetime)
		}
	}
	// MX listeners default to no tickets; set, the setting wins.
	for _, tc := range []struct {
		protocol string
		set      *bool
		want     bool
	}{{ProtocolSMTP, nil, false}, {ProtocolSMTP, &on, true}, {ProtocolSubmission, nil, true}, {ProtocolPOP3, &off, false}} {
		l := Listener{Protocol: tc.protocol, TLS: TLS{SessionTickets: tc.set}}
		if l.TicketsOn() != tc.want {
			t.Errorf("%s with session_tickets %v: tickets %v, want %v", tc.protocol, tc.set, l.TicketsOn(), tc.want)
		}
	}
	if !(&TLS{}).StaplingOn() || (&TLS{OCSPStapling: &off}).StaplingOn() {
		t.Error("OCSP stapling: want on by default, off when set false")
	}
}

// Redacted drops every password, the certificates' too, and leaves the
// original alone.
func TestTLSRedacted(t *testing.T) {
	orig := TLS{Mode: TLSImplicit, KeystorePath: "/d", KeystorePassword: "p1", KeyPassword: "k1",
		Certificates: []Certificate{{KeystorePath: "/e", KeystorePassword: "p2", KeyPassword: "k2"}}}
	r := orig.Redacted()
	if r.KeystorePassword != "" || r.KeyPassword != "" || r.Certificates[0].KeystorePassword != "" || r.Certificates[0].KeyPassword != "" {
		t.Errorf("Redacted kept a password: %+v", r)
	}
	if r.Certificates[0].KeystorePath != "/e" || orig.Certificates[0].KeystorePassword != "p2" {
		t.Errorf("Redacted changed what it should keep: %+v, original %+v", r, orig)
	}
}

func TestMetricsAddress(t *testing.T) {
	doc := func(addr string) *Document {
		return &Document{
			Server: Server{Hostname: "mail.example.com", MetricsAddress: addr},
			Listeners: map[string]Listener{
				"smtp": {Protocol: ProtocolSMTP, Address: "127.0.0.1", Port: 2525, TLS: TLS{Mode: TLSNone}},
			},
		}
	}
	for _, tc := range []struct{ addr, err string }{
		{"", ""},
		{"127.0.0.1:9154", ""},
		{":9154", ""},
		{"[::1]:9154", ""},
		{"localhost:9154", `metrics_address "localhost:9154" must name an IP address`},
		{"127.0.0.1", `metrics_address "127.0.0.1" is not host:port`},
		{"127.0.0.1:0", `has port "0" outside 1..65535`},
		{"127.0.0.1:http", `has port "http" outside`},
		{"127.0.0.1:2525", `metrics_address 127.0.0.1:2525 is already used by listener "smtp"`},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			err := doc(tc.addr).Validate()
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("Validate = %v, want %q", err, tc.err)
			}
		})
	}
}

// A listener's own connection limits: zero takes the server's, a negative
// one is refused naming the field.
func TestListenerConnectionLimits(t *testing.T) {
	base := Listener{Protocol: ProtocolSMTP, Address: "127.0.0.1", Port: 2525, TLS: TLS{Mode: TLSNone}}
	for _, tc := range []struct {
		name         string
		conns, perIP int
		err          string
	}{
		{"the server's", 0, 0, ""},
		{"its own", 10, 2, ""},
		{"negative max_connections", -1, 0, "max_connections -1 must not be negative"},
		{"negative max_connections_per_ip", 0, -3, "max_connections_per_ip -3 must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := base
			l.MaxConnections, l.MaxConnectionsPerIP = tc.conns, tc.perIP
			err := l.Validate()
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("Validate() = %v; want %q", err, tc.err)
			}
		})
	}
}
