package tlspolicy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/atomicfile"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/dnsclient"
	"github.com/mailstack/terraform-provider-mailstack/runtime/tlsrpt"
)

// Options configures an Evaluator. Resolver is required.
type Options struct {
	// Resolver answers TXT, TLSA and the MTA-STS policy host's addresses.
	Resolver *dnsclient.Resolver
	// Roots are the CAs trusted for MTA-STS policy fetches and Verify
	// policies; nil means the host's.
	Roots *x509.CertPool
	// Overrides are the operator's tls_policy blocks.
	Overrides []config.TLSPolicy
	// CacheFile keeps fetched MTA-STS policies across restarts (RFC 8461
	// section 5); empty keeps them in memory only.
	CacheFile string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// HTTPSPort is the port MTA-STS policies are fetched from; zero means
	// 443. Only tests change it.
	HTTPSPort int
}

// Evaluator computes the policy for each destination. It is safe for
// concurrent use.
type Evaluator struct {
	opts      Options
	http      *http.Client
	overrides map[string]config.TLSPolicy

	mu    sync.Mutex
	cache map[string]*STSPolicy
}

// New returns an evaluator; it loads the MTA-STS cache file if there is one.
func New(opts Options) *Evaluator {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.HTTPSPort == 0 {
		opts.HTTPSPort = 443
	}
	e := &Evaluator{opts: opts, overrides: map[string]config.TLSPolicy{}, cache: map[string]*STSPolicy{}}
	for _, o := range opts.Overrides {
		e.overrides[strings.ToLower(o.Domain)] = o
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	e.http = &http.Client{
		Timeout: 30 * time.Second,
		// RFC 8461 section 3.3: redirects are not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: opts.Roots, MinVersion: tls.VersionTLS12},
			// The policy host is resolved with the configured resolvers,
			// like every other outbound name.
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				host, _, err := net.SplitHostPort(addr)
				if err != nil {
					return nil, err
				}
				ips, _, err := opts.Resolver.Addrs(ctx, host)
				if err != nil {
					return nil, err
				}
				var errs []error
				for _, ip := range ips {
					c, err := dialer.DialContext(ctx, "tcp", net.JoinHostPort(ip.String(), fmt.Sprint(opts.HTTPSPort)))
					if err == nil {
						return c, nil
					}
					errs = append(errs, err)
				}
				return nil, errors.Join(errs...)
			},
			DisableKeepAlives: true,
		},
	}
	if opts.CacheFile != "" {
		if b, err := os.ReadFile(opts.CacheFile); err == nil {
			if err := json.Unmarshal(b, &e.cache); err != nil {
				opts.Logger.Warn("ignoring unreadable MTA-STS cache", "file", opts.CacheFile, "err", err)
				e.cache = map[string]*STSPolicy{}
			}
		}
	}
	return e
}

// Domain is the policy context of one recipient domain.
type Domain struct {
	Name string
	// STS is the MTA-STS policy in force (mode enforce or testing), or nil.
	STS *STSPolicy
	// stsFailure is why the domain's MTA-STS policy could not be had
	// (its TXT record is there), for TLS reports; nil when STS is set.
	stsFailure *Error
	override   *config.TLSPolicy
	e          *Evaluator
}

// ForDomain looks up domain's MTA-STS policy (cached, refreshed when the
// TXT id changes or max_age passed) and the operator's override. It does
// not fail: without a usable policy, MTA-STS does not apply (RFC 8461
// section 5), and problems are logged.
func (e *Evaluator) ForDomain(ctx context.Context, domain string) *Domain {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	d := &Domain{Name: domain, e: e}
	if o, ok := e.overrides[domain]; ok {
		d.override = &o
	}
	d.STS, d.stsFailure = e.sts(ctx, domain)
	if d.STS != nil && d.STS.Mode == ModeNone {
		d.STS = nil
	}
	return d
}

// sts returns domain's MTA-STS policy, or nil; and when it is nil because
// the policy of a published TXT record could not be fetched, why.
func (e *Evaluator) sts(ctx context.Context, domain string) (*STSPolicy, *Error) {
	now := e.opts.Now()
	e.mu.Lock()
	cached := e.cache[domain]
	e.mu.Unlock()
	if cached != nil && cached.Expired(now) {
		cached = nil
	}
	txts, _, err := e.opts.Resolver.TXT(ctx, "_mta-sts."+domain)
	if err != nil {
		if !errors.Is(err, dnsclient.ErrNotFound) {
			e.opts.Logger.Warn("MTA-STS TXT lookup failed; using the cached policy if any", "domain", domain, "err", err)
		}
		return cached, nil
	}
	id, ok, err := stsRecordID(txts)
	if err != nil || !ok {
		if err != nil {
			e.opts.Logger.Warn("MTA-STS TXT record unusable", "domain", domain, "err", err)
		}
		return cached, nil
	}
	if cached != nil && cached.ID == id {
		return cached, nil
	}
	p, err := fetchSTSPolicy(ctx, e.http, domain)
	if err != nil {
		e.opts.Logger.Warn("MTA-STS policy fetch failed; using the cached policy if any", "domain", domain, "err", err)
		if cached != nil {
			return cached, nil
		}
		return nil, &Error{Policy: "MTA-STS for " + domain, Reason: err.Error(), Result: stsFetchResult(err)}
	}
	p.ID, p.Fetched = id, now
	e.mu.Lock()
	e.cache[domain] = p
	data, _ := json.MarshalIndent(e.cache, "", "  ")
	e.mu.Unlock()
	if e.opts.CacheFile != "" {
		if err := atomicfile.WriteFile(e.opts.CacheFile, data, 0o600); err != nil {
			e.opts.Logger.Warn("saving the MTA-STS cache", "file", e.opts.CacheFile, "err", err)
		}
	}
	return p, nil
}

// AllowsMX reports whether host may be used as an MX of the domain: under
// an enforced MTA-STS policy only the hosts it lists may (RFC 8461
// section 4.1).
func (d *Domain) AllowsMX(host string) bool {
	return d.STS == nil || d.STS.Mode != ModeEnforce || d.STS.MatchesMX(host)
}

// ForMX returns the policy for a connection to MX host. secure reports
// whether the MX lookup (or, for a domain without MX records, its address
// lookup) was DNSSEC-validated, which DANE needs (RFC 7672 section 2.2).
// An error means DANE could not be ruled out (the TLSA lookup failed, as
// it does for bogus records): the delivery must be deferred.
func (d *Domain) ForMX(ctx context.Context, host string, secure bool) (*Policy, error) {
	p := &Policy{Level: Opportunistic, Source: "opportunistic TLS"}
	if secure {
		records, sec, err := d.e.opts.Resolver.TLSA(ctx, host, 25)
		switch {
		case err != nil && !errors.Is(err, dnsclient.ErrNotFound):
			return nil, &Error{Policy: "DANE", Reason: fmt.Sprintf("TLSA lookup of _25._tcp.%s failed, so DANE cannot be ruled out: %v", host, err), Result: tlsrpt.DNSSECInvalid}
		case err == nil && sec:
			var usable []dnsclient.TLSA
			for _, r := range records {
				if Usable(r) {
					usable = append(usable, r)
				}
			}
			if len(usable) > 0 {
				p = &Policy{Level: DANE, Source: "DANE (TLSA _25._tcp." + host + ")", TLSA: usable}
			} else {
				p = &Policy{Level: Encrypt, Source: "DANE (only unusable TLSA records at _25._tcp." + host + ")"}
			}
		}
	}
	if d.stsFailure != nil && p.Level < DANE {
		p.STSFailure = d.stsFailure
	}
	if d.STS != nil && p.Level < DANE {
		sts := &Policy{Level: Verify, Source: "MTA-STS (" + d.STS.Mode + ") for " + d.Name, STS: d.STS}
		if d.STS.Mode == ModeEnforce {
			p = sts
		} else {
			p.Report = sts
		}
	}
	return d.tighten(p), nil
}

// tighten applies the operator's override, which only ever adds demands.
func (d *Domain) tighten(p *Policy) *Policy {
	return tighten(p, d.override, d.Name)
}

// ForRelay returns the policy for the smarthost at host: a verified
// certificate, unless the relay mode is plain text; a tls_policy for host
// can pin its certificate instead.
func (e *Evaluator) ForRelay(host string, tlsMode bool) *Policy {
	p := &Policy{Level: Opportunistic, Source: "the relay settings"}
	if tlsMode {
		p = &Policy{Level: Verify, Source: "the relay settings (" + host + ")"}
	}
	var o *config.TLSPolicy
	if v, ok := e.overrides[strings.ToLower(host)]; ok {
		o = &v
	}
	return tighten(p, o, host)
}

func tighten(p *Policy, o *config.TLSPolicy, name string) *Policy {
	if o == nil {
		return p
	}
	src := "tls_policy for " + name
	switch {
	case len(o.FingerprintsSHA256) > 0:
		pins := make([][]byte, 0, len(o.FingerprintsSHA256))
		for _, f := range o.FingerprintsSHA256 {
			if b, err := config.ParseFingerprint(f); err == nil {
				pins = append(pins, b)
			}
		}
		return &Policy{Level: Pin, Source: src + " (pinned certificate)", Pins: pins}
	case o.VerifyCertificate && p.Level < Verify:
		return &Policy{Level: Verify, Source: src, Report: p.Report}
	case o.RequireTLS && p.Level < Encrypt:
		return &Policy{Level: Encrypt, Source: src, Report: p.Report}
	}
	return p
}

// Roots returns the CAs trusted for Verify policies.
func (e *Evaluator) Roots() *x509.CertPool { return e.opts.Roots }
