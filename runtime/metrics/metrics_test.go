package metrics

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mailstack/terraform-provider-mailstack/runtime/authlimit"
	"github.com/mailstack/terraform-provider-mailstack/runtime/listener"
)

// The scrape-time sources and the counters come out under their
// documented names and labels; the queue's gauges appear once a queue
// reports.
func TestMetrics(t *testing.T) {
	notAfter := time.Unix(1_900_000_000, 0)
	m := New(Sources{
		Listeners: func() []listener.Stats {
			return []listener.Stats{{
				ID: "smtps", Protocol: "smtp", Open: 2, Accepted: 7, RefusedClient: 1,
				Handshakes:        []listener.HandshakeCount{{Version: "1.3", Resumed: true, N: 4}},
				HandshakeFailures: []listener.HandshakeCount{{Version: "1.1", N: 3}},
				Certificates:      []listener.CertificateExpiry{{Source: "keystore /etc/mail/mx.p12 alias james", NotAfter: notAfter}},
			}}
		},
		Queue: func() (int, time.Duration) { return 5, 90 * time.Second },
	})
	m.AuthEvent("pop3", authlimit.Failed)
	m.AuthEvent("pop3", authlimit.Blocked)
	m.AuthEvent("imap", authlimit.Refused)
	m.Delivery(nil, 3)
	m.Delivery(errors.New("disk full"), 1)
	m.Fsync("file", 2*time.Millisecond)

	want := `
# HELP mailstack_auth_blocks_total Client addresses blocked for failed logins, by the protocol of the failure that blocked them.
# TYPE mailstack_auth_blocks_total counter
mailstack_auth_blocks_total{protocol="pop3"} 1
# HELP mailstack_auth_failures_total Failed logins (wrong user or password), by protocol.
# TYPE mailstack_auth_failures_total counter
mailstack_auth_failures_total{protocol="pop3"} 1
# HELP mailstack_auth_refused_total Logins refused unchecked because their client address tried too many wrong passwords, by protocol.
# TYPE mailstack_auth_refused_total counter
mailstack_auth_refused_total{protocol="imap"} 1
# HELP mailstack_certificate_not_after_seconds Expiry of each certificate a listener serves, as a Unix time, by listener and source (keystore and alias, or PEM files).
# TYPE mailstack_certificate_not_after_seconds gauge
mailstack_certificate_not_after_seconds{listener="smtps",protocol="smtp",source="keystore /etc/mail/mx.p12 alias james"} 1.9e+09
# HELP mailstack_connections_open Connections open now, by listener.
# TYPE mailstack_connections_open gauge
mailstack_connections_open{listener="smtps",protocol="smtp"} 2
# HELP mailstack_connections_refused_total Connections refused at a connection limit (reason="max_connections" or "max_connections_per_ip"), by listener.
# TYPE mailstack_connections_refused_total counter
mailstack_connections_refused_total{listener="smtps",protocol="smtp",reason="max_connections"} 0
mailstack_connections_refused_total{listener="smtps",protocol="smtp",reason="max_connections_per_ip"} 1
# HELP mailstack_connections_total Connections accepted, by listener.
# TYPE mailstack_connections_total counter
mailstack_connections_total{listener="smtps",protocol="smtp"} 7
# HELP mailstack_delivered_recipients_total Recipients of the messages delivered.
# TYPE mailstack_delivered_recipients_total counter
mailstack_delivered_recipients_total 3
# HELP mailstack_deliveries_total Messages received over SMTP and delivered to local mailboxes (result="delivered"), or that failed to be (result="failed").
# TYPE mailstack_deliveries_total counter
mailstack_deliveries_total{result="delivered"} 1
mailstack_deliveries_total{result="failed"} 1
# HELP mailstack_queue_messages Messages in the outbound queue.
# TYPE mailstack_queue_messages gauge
mailstack_queue_messages 5
# HELP mailstack_queue_oldest_seconds Age of the oldest message in the outbound queue.
# TYPE mailstack_queue_oldest_seconds gauge
mailstack_queue_oldest_seconds 90
# HELP mailstack_tls_handshake_failures_total TLS handshakes that got a ClientHello and did not complete, by listener and the highest version the client offered.
# TYPE mailstack_tls_handshake_failures_total counter
mailstack_tls_handshake_failures_total{listener="smtps",protocol="smtp",version="1.1"} 3
# HELP mailstack_tls_handshakes_total TLS handshakes completed (implicit TLS and STARTTLS), by listener, negotiated version and whether the session was resumed.
# TYPE mailstack_tls_handshakes_total counter
mailstack_tls_handshakes_total{listener="smtps",protocol="smtp",resumed="true",version="1.3"} 4
`
	names := []string{
		"mailstack_auth_blocks_total", "mailstack_auth_failures_total", "mailstack_auth_refused_total",
		"mailstack_certificate_not_after_seconds", "mailstack_connections_open", "mailstack_connections_refused_total",
		"mailstack_connections_total", "mailstack_delivered_recipients_total", "mailstack_deliveries_total",
		"mailstack_queue_messages", "mailstack_queue_oldest_seconds", "mailstack_tls_handshake_failures_total",
		"mailstack_tls_handshakes_total",
	}
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.fsync); n != 1 {
		t.Errorf("%d fsync series, want 1", n)
	}
}
