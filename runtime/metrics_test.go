package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
)

// scrape GETs a metrics endpoint and returns its text.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, body)
	}
	return string(body)
}

// metricValue is the value of the sample of name whose labels include
// every one of labels (`k="v"` each); -1 when there is none.
func metricValue(text, name string, labels ...string) float64 {
	for line := range strings.Lines(text) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), name)
		if !ok || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		set, value := "", rest
		if rest[0] == '{' {
			end := strings.IndexByte(rest, '}')
			set, value = rest[1:end], rest[end+1:]
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(","+set+",", ","+l+",")
		}
		if match {
			v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// The runtime serves Prometheus metrics on metrics_address once it is set:
// connections and TLS handshakes per listener, deliveries, failed logins,
// fsync latency and certificate expiry; moving or clearing the address
// frees the old port, and an address in use is refused with nothing
// changed. Not parallel: fsync latency is observed per process.
func TestMetrics(t *testing.T) {
	dir := t.TempDir()
	h := start(t, dir, 5*time.Second)
	ks := newKeystore(t, dir)
	ls := configure(t, h, ks)
	addr := func(id string) string { l := ls[id]; return l.Addr() }
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	withMetrics := testServer
	withMetrics.MetricsAddress = metricsAddr
	if _, err := h.client.SetServer(context.Background(), withMetrics); err != nil {
		t.Fatal(err)
	}

	mx := dialText(t, addr("smtps"), ks.clientConfig())
	mx.smtpReply()
	mx.smtp("250", "EHLO go.example")
	mx.smtp("250", "MAIL FROM:<someone@elsewhere.example>")
	mx.smtp("250", "RCPT TO:<alice@example.com>")
	mx.smtp("354", "DATA")
	mx.smtp("250", "Subject: counted\r\n\r\nhello\r\n.")
	mx.smtp("221", "QUIT")
	c := dialText(t, addr("imaps"), ks.clientConfig())
	c.line()
	c.imap("a", "LOGIN alice@example.com wrong")

	text := scrape(t, metricsAddr)
	for _, check := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"mailstack_connections_total", []string{`listener="smtps"`, `protocol="smtp"`}, 1},
		{"mailstack_connections_open", []string{`listener="imaps"`, `protocol="imap"`}, 1},
		{"mailstack_tls_handshakes_total", []string{`listener="smtps"`, `version="1.3"`, `resumed="false"`}, 1},
		{"mailstack_connections_refused_total", []string{`listener="smtp"`, `reason="max_connections"`}, 0},
		{"mailstack_deliveries_total", []string{`result="delivered"`}, 1},
		{"mailstack_delivered_recipients_total", nil, 1},
		{"mailstack_auth_failures_total", []string{`protocol="imap"`}, 1},
		{"mailstack_store_fsync_seconds_count", []string{`kind="file"`}, 1},
		{"mailstack_store_fsync_seconds_count", []string{`kind="index"`}, 1},
		{"go_goroutines", nil, 1},
	} {
		if v := metricValue(text, check.name, check.labels...); v < check.min {
			t.Errorf("%s%v = %v, want at least %v", check.name, check.labels, v, check.min)
		}
	}
	if v := metricValue(text, "mailstack_certificate_not_after_seconds", `listener="pop3s"`); v != float64(ks.cert.TLS.Leaf.NotAfter.Unix()) {
		t.Errorf("certificate not after %v, want %d", v, ks.cert.TLS.Leaf.NotAfter.Unix())
	}

	// An address in use: refused, the old one keeps serving.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	moved := testServer
	moved.MetricsAddress = busy.Addr().String()
	var apiErr *control.Error
	if _, err := h.client.SetServer(context.Background(), moved); !errors.As(err, &apiErr) || apiErr.Code != http.StatusConflict ||
		!strings.Contains(err.Error(), "cannot bind metrics_address "+busy.Addr().String()) {
		t.Errorf("metrics_address in use: %v", err)
	}
	if srv, err := h.client.Server(context.Background()); err != nil || srv.MetricsAddress != metricsAddr {
		t.Errorf("server settings after the refused change: %+v, %v", srv, err)
	}
	scrape(t, metricsAddr)

	// Cleared: the port is free again.
	if _, err := h.client.SetServer(context.Background(), testServer); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", metricsAddr)
	if err != nil {
		t.Fatalf("metrics port still bound after clearing metrics_address: %v", err)
	}
	ln.Close()
}
