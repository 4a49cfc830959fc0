// Package metrics owns the runtime's Prometheus metrics: the registry, the
// counters the runtime feeds as things happen (logins, deliveries, fsyncs),
// the collector that reads the listeners' own totals at scrape time, and
// the HTTP handler served on the opt-in metrics_address. Counting runs
// whether or not anything scrapes, so a metrics_address set later shows
// totals since the runtime started.
//
// Every metric is named mailstack_*; the Go runtime's go_* and the
// process's process_* come along.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mailstack/terraform-provider-mailstack/runtime/authlimit"
	"github.com/mailstack/terraform-provider-mailstack/runtime/listener"
)

// Metrics is one runtime's metrics. Its methods are safe for concurrent
// use.
type Metrics struct {
	reg *prometheus.Registry

	authFailures *prometheus.CounterVec
	authRefused  *prometheus.CounterVec
	authBlocks   *prometheus.CounterVec
	deliveries   *prometheus.CounterVec
	recipients   prometheus.Counter
	fsync        *prometheus.HistogramVec
}

// Sources are what the metrics read at scrape time.
type Sources struct {
	// Listeners reports every listener (listener.Manager.Stats).
	Listeners func() []listener.Stats
	// Queue reports the outbound queue: messages waiting and the age of
	// the oldest (mailstack_queue_messages, mailstack_queue_oldest_seconds);
	// nil exports neither.
	Queue func() (messages int, oldest time.Duration)
}

// New returns the metrics of a runtime whose listeners and queue src
// reports.
func New(src Sources) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailstack_auth_failures_total",
			Help: "Failed logins (wrong user or password), by protocol.",
		}, []string{"protocol"}),
		authRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailstack_auth_refused_total",
			Help: "Logins refused unchecked because their client address tried too many wrong passwords, by protocol.",
		}, []string{"protocol"}),
		authBlocks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailstack_auth_blocks_total",
			Help: "Client addresses blocked for failed logins, by the protocol of the failure that blocked them.",
		}, []string{"protocol"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailstack_deliveries_total",
			Help: "Messages received over SMTP and delivered to local mailboxes (result=\"delivered\"), or that failed to be (result=\"failed\").",
		}, []string{"result"}),
		recipients: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mailstack_delivered_recipients_total",
			Help: "Recipients of the messages delivered.",
		}),
		fsync: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mailstack_store_fsync_seconds",
			Help:    "Latency of the store's fsyncs: message files (kind=\"file\"), directories (kind=\"dir\") and index commits (kind=\"index\").",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"kind"}),
	}
	m.reg.MustRegister(m.authFailures, m.authRefused, m.authBlocks, m.deliveries, m.recipients, m.fsync,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&scrape{src: src})
	// Both results exist from the start, so that rate() sees the first one.
	m.deliveries.WithLabelValues("delivered")
	m.deliveries.WithLabelValues("failed")
	return m
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Registry is the registry the metrics are in, for tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// AuthEvent counts what the AUTH limiter reports; it is the limiter's
// observer.
func (m *Metrics) AuthEvent(protocol string, e authlimit.Event) {
	switch e {
	case authlimit.Failed:
		m.authFailures.WithLabelValues(protocol).Inc()
	case authlimit.Refused:
		m.authRefused.WithLabelValues(protocol).Inc()
	case authlimit.Blocked:
		m.authBlocks.WithLabelValues(protocol).Inc()
	}
}

// Delivery counts one message delivered to its recipients, or not.
func (m *Metrics) Delivery(err error, recipients int) {
	if err != nil {
		m.deliveries.WithLabelValues("failed").Inc()
		return
	}
	m.deliveries.WithLabelValues("delivered").Inc()
	m.recipients.Add(float64(recipients))
}

// Fsync records the latency of one fsync of kind ("file", "dir" or
// "index").
func (m *Metrics) Fsync(kind string, d time.Duration) {
	m.fsync.WithLabelValues(kind).Observe(d.Seconds())
}

// scrape reads the listeners and the queue when the metrics are scraped.
type scrape struct{ src Sources }

var (
	labels      = []string{"listener", "protocol"}
	connsOpen   = prometheus.NewDesc("mailstack_connections_open", "Connections open now, by listener.", labels, nil)
	connsTotal  = prometheus.NewDesc("mailstack_connections_total", "Connections accepted, by listener.", labels, nil)
	connsRefuse = prometheus.NewDesc("mailstack_connections_refused_total",
		"Connections refused at a connection limit (reason=\"max_connections\" or \"max_connections_per_ip\"), by listener.",
		append(labels, "reason"), nil)
	handshakes = prometheus.NewDesc("mailstack_tls_handshakes_total",
		"TLS handshakes completed (implicit TLS and STARTTLS), by listener, negotiated version and whether the session was resumed.",
		append(labels, "version", "resumed"), nil)
	handshakeFailures = prometheus.NewDesc("mailstack_tls_handshake_failures_total",
		"TLS handshakes that got a ClientHello and did not complete, by listener and the highest version the client offered.",
		append(labels, "version"), nil)
	notAfter = prometheus.NewDesc("mailstack_certificate_not_after_seconds",
		"Expiry of each certificate a listener serves, as a Unix time, by listener and source (keystore and alias, or PEM files).",
		append(labels, "source"), nil)
	queueMessages = prometheus.NewDesc("mailstack_queue_messages", "Messages in the outbound queue.", nil, nil)
	queueOldest   = prometheus.NewDesc("mailstack_queue_oldest_seconds", "Age of the oldest message in the outbound queue.", nil, nil)
)

func (s *scrape) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{connsOpen, connsTotal, connsRefuse, handshakes, handshakeFailures, notAfter} {
		ch <- d
	}
	if s.src.Queue != nil {
		ch <- queueMessages
		ch <- queueOldest
	}
}

func (s *scrape) Collect(ch chan<- prometheus.Metric) {
	if s.src.Listeners != nil {
		for _, l := range s.src.Listeners() {
			lv := []string{l.ID, l.Protocol}
			ch <- prometheus.MustNewConstMetric(connsOpen, prometheus.GaugeValue, float64(l.Open), lv...)
			ch <- prometheus.MustNewConstMetric(connsTotal, prometheus.CounterValue, float64(l.Accepted), lv...)
			ch <- prometheus.MustNewConstMetric(connsRefuse, prometheus.CounterValue, float64(l.RefusedListener), append(lv, "max_connections")...)
			ch <- prometheus.MustNewConstMetric(connsRefuse, prometheus.CounterValue, float64(l.RefusedClient), append(lv, "max_connections_per_ip")...)
			for _, h := range l.Handshakes {
				resumed := "false"
				if h.Resumed {
					resumed = "true"
				}
				ch <- prometheus.MustNewConstMetric(handshakes, prometheus.CounterValue, float64(h.N), append(lv, h.Version, resumed)...)
			}
			for _, h := range l.HandshakeFailures {
				ch <- prometheus.MustNewConstMetric(handshakeFailures, prometheus.CounterValue, float64(h.N), append(lv, h.Version)...)
			}
			for _, c := range l.Certificates {
				ch <- prometheus.MustNewConstMetric(notAfter, prometheus.GaugeValue, float64(c.NotAfter.Unix()), append(lv, c.Source)...)
			}
		}
	}
	if s.src.Queue != nil {
		n, oldest := s.src.Queue()
		ch <- prometheus.MustNewConstMetric(queueMessages, prometheus.GaugeValue, float64(n))
		ch <- prometheus.MustNewConstMetric(queueOldest, prometheus.GaugeValue, oldest.Seconds())
	}
}
