package listener

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/mailstack/terraform-provider-mailstack/internal/atomicfile"
)

// ocspOptions are the Manager's OCSP stapling settings.
type ocspOptions struct {
	// cacheDir keeps the latest response of each certificate, so that a
	// restarted runtime staples at once; "" keeps none.
	cacheDir string
	client   *http.Client
	now      func() time.Time
}

// OCSP timing: how long a fetch may take, and the longest wait before
// another.
const (
	ocspFetchTimeout = 10 * time.Second
	ocspMaxRetry     = time.Hour
	// ocspNoNextUpdate is when a response without a next update (the
	// responder always has newer information) is fetched again.
	ocspNoNextUpdate = time.Hour
)

// ocspRetryAfter is how soon a fetch is tried again after fails failures
// in a row: a minute, doubling up to an hour. Tests replace it.
var ocspRetryAfter = func(fails int) time.Duration {
	return min(time.Minute<<min(fails-1, 6), ocspMaxRetry)
}

// ocspRefreshAt is when a response is fetched again: half-way through its
// validity, as certmagic does, so that one failed fetch leaves time for
// more before it expires. Tests replace it.
var ocspRefreshAt = func(r *ocsp.Response, now time.Time) time.Time {
	if r.NextUpdate.IsZero() {
		return now.Add(ocspNoNextUpdate)
	}
	return r.ThisUpdate.Add(r.NextUpdate.Sub(r.ThisUpdate) / 2)
}

// oidTLSFeature is the TLS feature extension (RFC 7633); with
// status_request (5) in it, the certificate "must staple".
var oidTLSFeature = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 24}

// stapler keeps an OCSP response for one certificate source: it fetches
// one from the responder the certificate names, keeps it on disk, staples
// it, and fetches again before it expires, all in its own goroutine, so
// that a handshake never waits for a responder. A certificate that must
// be stapled is only served with a good response; any other is served
// without a staple while there is no usable response.
type stapler struct {
	src  *certSource
	opts *ocspOptions
	log  *slog.Logger
	kick chan struct{}

	mu      sync.Mutex
	leaf    *x509.Certificate // the certificate stapled for; nil before the first load
	issuer  *x509.Certificate // nil when the chain does not hold it
	must    bool              // the certificate must be stapled
	raw     []byte            // the response in hand, DER; nil for none
	resp    *ocsp.Response
	problem string    // why there is no usable response, for status
	next    time.Time // the next fetch
	fails   int       // fetches failed in a row

	// stapled is the served copy of base with raw stapled; remade when
	// either changes.
	base, stapled *tls.Certificate
}

func newStapler(src *certSource, opts *ocspOptions, log *slog.Logger) *stapler {
	return &stapler{src: src, opts: opts, log: log, kick: make(chan struct{}, 1)}
}

// certificateChanged starts over for a newly loaded certificate, from the
// response on disk if there is a usable one. It is called with the source
// loading, never from a handshake.
func (st *stapler) certificateChanged(cert *tls.Certificate, trusted *trustedCAs) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.leaf != nil && st.leaf.Equal(cert.Leaf) {
		return
	}
	now := st.opts.now()
	st.leaf, st.issuer, st.must = cert.Leaf, issuerOf(cert, trusted), mustStaple(cert.Leaf)
	st.raw, st.resp, st.fails, st.problem, st.next = nil, nil, 0, "", now
	switch {
	case len(st.leaf.OCSPServer) == 0:
		st.problem = "the certificate names no OCSP responder"
		st.next = time.Time{}
		return
	case st.issuer == nil:
		st.problem = "the issuer's certificate is not in the chain or the keystore: no OCSP request can be made"
		st.next = time.Time{}
		return
	}
	if raw, err := os.ReadFile(st.cacheFile()); err == nil {
		if resp, err := ocsp.ParseResponseForCert(raw, st.leaf, st.issuer); err == nil && usable(resp, now) {
			st.raw, st.resp = raw, resp
			st.next = ocspRefreshAt(resp, now)
		}
	}
	select {
	case st.kick <- struct{}{}:
	default:
	}
}

// issuerOf finds the certificate that signed cert's leaf: the next in its
// chain, else a trusted entry of its keystore.
func issuerOf(cert *tls.Certificate, trusted *trustedCAs) *x509.Certificate {
	var candidates []*x509.Certificate
	if len(cert.Certificate) > 1 {
		if c, err := x509.ParseCertificate(cert.Certificate[1]); err == nil {
			candidates = append(candidates, c)
		}
	}
	if trusted != nil {
		candidates = append(candidates, trusted.certs...)
	}
	for _, c := range candidates {
		if cert.Leaf.CheckSignatureFrom(c) == nil {
			return c
		}
	}
	return nil
}

// mustStaple reports whether c carries the TLS feature status_request.
func mustStaple(c *x509.Certificate) bool {
	for _, ext := range c.Extensions {
		if !ext.Id.Equal(oidTLSFeature) {
			continue
		}
		var features []int
		if _, err := asn1.Unmarshal(ext.Value, &features); err != nil {
			return true // unreadable: assume the strict reading
		}
		for _, f := range features {
			if f == 5 {
				return true
			}
		}
	}
	return false
}

// usable reports whether resp may be stapled at now.
func usable(resp *ocsp.Response, now time.Time) bool {
	if resp.Status != ocsp.Good && resp.Status != ocsp.Revoked {
		return false
	}
	return !resp.ThisUpdate.After(now.Add(5*time.Minute)) && (resp.NextUpdate.IsZero() || now.Before(resp.NextUpdate))
}

func (st *stapler) cacheFile() string {
	if st.opts.cacheDir == "" {
		return ""
	}
	sum := sha256.Sum256(st.leaf.Raw)
	return filepath.Join(st.opts.cacheDir, hex.EncodeToString(sum[:])+".ocsp")
}

// staple returns what handshakes get for the loaded certificate: a copy
// with the response stapled while it is usable; the certificate alone
// without one; nil without a good one when it must be stapled.
func (st *stapler) staple(loaded *tls.Certificate) *tls.Certificate {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.leaf == nil || !st.leaf.Equal(loaded.Leaf) {
		return loaded // not seen yet: certificateChanged comes first
	}
	now := st.opts.now()
	good := st.resp != nil && usable(st.resp, now)
	if !good {
		if st.must {
			return nil
		}
		return loaded
	}
	if st.must && st.resp.Status != ocsp.Good {
		return nil
	}
	if st.base != loaded || st.stapled == nil || !bytes.Equal(st.stapled.OCSPStaple, st.raw) {
		c := *loaded
		c.OCSPStaple = st.raw
		st.base, st.stapled = loaded, &c
	}
	return st.stapled
}

// run fetches responses until the source stops, and has the source
// publish again whenever one arrives or the one in hand expires.
func (st *stapler) run() {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-st.src.stop:
			return
		case <-st.kick:
		case <-timer.C:
		}
		st.mu.Lock()
		now := st.opts.now()
		due := !st.next.IsZero() && !now.Before(st.next)
		st.mu.Unlock()
		if due {
			st.refresh()
		}
		st.src.publish()
		timer.Reset(st.wake())
	}
}

// wake is how long run sleeps: until the next fetch, or until the
// response in hand expires, whichever comes first.
func (st *stapler) wake() time.Duration {
	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.opts.now()
	at := st.next
	if st.resp != nil && !st.resp.NextUpdate.IsZero() && st.resp.NextUpdate.After(now) && (at.IsZero() || st.resp.NextUpdate.Before(at)) {
		at = st.resp.NextUpdate
	}
	if at.IsZero() {
		return ocspMaxRetry
	}
	return max(at.Sub(now), 10*time.Millisecond)
}

// refresh fetches a response and keeps it if it is usable.
func (st *stapler) refresh() {
	st.mu.Lock()
	leaf, issuer := st.leaf, st.issuer
	st.mu.Unlock()
	raw, resp, err := st.fetch(leaf, issuer)
	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.opts.now()
	if !st.leaf.Equal(leaf) {
		return // the certificate changed meanwhile
	}
	if err != nil {
		st.fails++
		retry := ocspRetryAfter(st.fails)
		st.next = now.Add(retry)
		if st.fails == 1 || st.problem != err.Error() {
			st.log.Warn("OCSP response not refreshed; trying again", "source", st.src.name(), "responder", leaf.OCSPServer[0],
				"err", err, "retry_in", retry)
		}
		st.problem = err.Error()
		return
	}
	st.raw, st.resp, st.fails, st.problem = raw, resp, 0, ""
	st.next = ocspRefreshAt(resp, now)
	if f := st.cacheFile(); f != "" {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err == nil {
			err = atomicfile.WriteFile(f, raw, 0o600)
		}
		if err != nil {
			st.log.Warn("OCSP response not cached on disk", "file", f, "err", err)
		}
	}
	st.log.Info("OCSP response stapled", "source", st.src.name(), "status", statusName(resp.Status),
		"next_update", resp.NextUpdate, "refresh_at", st.next)
}

// fetch asks the certificate's responder (RFC 6960, POST) for a response
// and checks it: signed for this certificate by its issuer (or a
// responder it delegated to) and usable now.
func (st *stapler) fetch(leaf, issuer *x509.Certificate) ([]byte, *ocsp.Response, error) {
	req, err := ocsp.CreateRequest(leaf, issuer, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("making the OCSP request: %w", err)
	}
	url := leaf.OCSPServer[0]
	hreq, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(req))
	if err != nil {
		return nil, nil, fmt.Errorf("OCSP responder %q: %w", url, err)
	}
	hreq.Header.Set("Content-Type", "application/ocsp-request")
	hreq.Header.Set("Accept", "application/ocsp-response")
	res, err := st.opts.client.Do(hreq)
	if err != nil {
		return nil, nil, fmt.Errorf("asking OCSP responder: %w", err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("reading from OCSP responder %q: %w", url, err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("OCSP responder %q answered %s", url, res.Status)
	}
	resp, err := ocsp.ParseResponseForCert(raw, leaf, issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("OCSP responder %q: %w", url, err)
	}
	if !usable(resp, st.opts.now()) {
		return nil, nil, fmt.Errorf("OCSP responder %q: status %s, this update %s, next update %s: not usable now",
			url, statusName(resp.Status), resp.ThisUpdate.UTC().Format(time.RFC3339), resp.NextUpdate.UTC().Format(time.RFC3339))
	}
	return raw, resp, nil
}

func statusName(s int) string {
	switch s {
	case ocsp.Good:
		return "good"
	case ocsp.Revoked:
		return "revoked"
	}
	return "unknown"
}

// state describes the stapling of the source for status: "good (stapled),
// valid until T", or why there is no staple; "" for a certificate that
// names no responder and need not be stapled.
func (st *stapler) state() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.leaf == nil || (len(st.leaf.OCSPServer) == 0 && !st.must) {
		return "" // nothing to staple, nothing to say
	}
	now := st.opts.now()
	var s string
	switch {
	case st.resp != nil && usable(st.resp, now):
		s = statusName(st.resp.Status) + " (stapled)"
		if !st.resp.NextUpdate.IsZero() {
			s += ", valid until " + st.resp.NextUpdate.UTC().Format(time.RFC3339)
		}
		if st.problem != "" {
			s += "; the last refresh failed: " + st.problem
		}
	case st.problem != "":
		s = "no staple: " + st.problem
	default:
		s = "no staple yet: asking the responder"
	}
	if st.must && (st.resp == nil || !usable(st.resp, now) || st.resp.Status != ocsp.Good) {
		s += "; the certificate must be stapled, so it is not served"
	}
	return s
}
