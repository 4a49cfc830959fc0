// Package dnsclient is the outbound side's DNS: MX, address, TXT and TLSA
// lookups against configured resolvers (or the host's resolv.conf), with
// each answer's DNSSEC status.
//
// DNSSEC is not validated here. Like Postfix (smtp_dns_support_level =
// dnssec), the runtime trusts the AD bit of the resolvers it is configured
// with, which must therefore be validating resolvers reached over a path
// nobody can tamper with (loopback, or the host's own network). An answer
// is Secure only when the resolver set AD; a resolver's SERVFAIL (which is
// what a validating resolver answers for bogus data) is an error, never an
// insecure answer.
package dnsclient

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ErrNotFound means the name does not exist (NXDOMAIN) or has no records of
// the asked type (NODATA). It is an answer, not a failure.
var ErrNotFound = errors.New("no such record")

// ErrTemporary wraps failures worth retrying later: timeouts, SERVFAIL
// (including bogus DNSSEC data), unreachable resolvers.
var ErrTemporary = errors.New("temporary DNS failure")

// MX is one mail exchanger.
type MX struct {
	Host       string // without the trailing dot
	Preference uint16
}

// TLSA is one TLSA record (RFC 6698).
type TLSA struct {
	Usage, Selector, MatchingType uint8
	Data                          []byte
}

// Resolver asks DNS servers. The zero value is not usable: use New.
type Resolver struct {
	servers   []string
	noServers error // why there are none
	client    *dns.Client
	tcp       *dns.Client
}

// New returns a resolver for servers (host:port). Empty servers means the
// nameservers of /etc/resolv.conf, read now.
func New(servers []string) (*Resolver, error) {
	r := &Resolver{}
	if len(servers) == 0 {
		// A host without a usable resolv.conf still runs; every lookup
		// then fails, temporarily, saying why.
		cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		switch {
		case err != nil:
			r.noServers = fmt.Errorf("%w: reading /etc/resolv.conf: %v", ErrTemporary, err)
		case len(cc.Servers) == 0:
			r.noServers = fmt.Errorf("%w: /etc/resolv.conf names no nameserver and dns_resolvers is empty", ErrTemporary)
		default:
			for _, s := range cc.Servers {
				servers = append(servers, net.JoinHostPort(s, cc.Port))
			}
		}
	}
	return &Resolver{
		noServers: r.noServers,
		servers:   slices.Clone(servers),
		client:    &dns.Client{Net: "udp", Timeout: 5 * time.Second, UDPSize: 1232},
		tcp:       &dns.Client{Net: "tcp", Timeout: 10 * time.Second},
	}, nil
}

// Servers returns the resolvers asked, in order.
func (r *Resolver) Servers() []string { return slices.Clone(r.servers) }

// query asks for name/qtype with DO and AD set, trying each server in turn,
// and returns the answer records of that type and whether the resolver
// vouched for them (AD).
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, bool, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	m.AuthenticatedData = true
	m.SetEdns0(1232, true)
	lastErr := r.noServers
	for _, srv := range r.servers {
		resp, _, err := r.client.ExchangeContext(ctx, m, srv)
		if err == nil && resp.Truncated {
			resp, _, err = r.tcp.ExchangeContext(ctx, m, srv)
		}
		if err != nil {
			lastErr = fmt.Errorf("%s %s via %s: %w: %w", name, dns.TypeToString[qtype], srv, ErrTemporary, err)
			continue
		}
		switch resp.Rcode {
		case dns.RcodeSuccess:
		case dns.RcodeNameError:
			return nil, resp.AuthenticatedData, fmt.Errorf("%s %s: %w", name, dns.TypeToString[qtype], ErrNotFound)
		default:
			lastErr = fmt.Errorf("%s %s via %s: %w: %s", name, dns.TypeToString[qtype], srv, ErrTemporary, dns.RcodeToString[resp.Rcode])
			continue
		}
		var rrs []dns.RR
		for _, rr := range resp.Answer {
			if rr.Header().Rrtype == qtype {
				rrs = append(rrs, rr)
			}
		}
		if len(rrs) == 0 {
			return nil, resp.AuthenticatedData, fmt.Errorf("%s %s: %w", name, dns.TypeToString[qtype], ErrNotFound)
		}
		return rrs, resp.AuthenticatedData, nil
	}
	return nil, false, lastErr
}

// MX returns domain's MX records sorted by preference, and whether the
// answer was DNSSEC-validated. A null MX (RFC 7505) is returned as one
// record with Host ".".
func (r *Resolver) MX(ctx context.Context, domain string) ([]MX, bool, error) {
	rrs, secure, err := r.query(ctx, domain, dns.TypeMX)
	if err != nil {
		return nil, secure, err
	}
	out := make([]MX, 0, len(rrs))
	for _, rr := range rrs {
		mx := rr.(*dns.MX)
		host := strings.TrimSuffix(mx.Mx, ".")
		if host == "" {
			host = "."
		}
		out = append(out, MX{Host: host, Preference: mx.Preference})
	}
	slices.SortStableFunc(out, func(a, b MX) int { return int(a.Preference) - int(b.Preference) })
	return out, secure, nil
}

// Addrs returns host's IPv4 and IPv6 addresses (A, then AAAA), and whether
// both answers were validated. It fails only when neither lookup found an
// address.
func (r *Resolver) Addrs(ctx context.Context, host string) ([]netip.Addr, bool, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, false, nil
	}
	var out []netip.Addr
	secure := true
	var errs []error
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, sec, err := r.query(ctx, host, t)
		secure = secure && sec
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, rr := range rrs {
			var ip net.IP
			switch v := rr.(type) {
			case *dns.A:
				ip = v.A
			case *dns.AAAA:
				ip = v.AAAA
			}
			if a, ok := netip.AddrFromSlice(ip); ok {
				out = append(out, a.Unmap())
			}
		}
	}
	if len(out) == 0 {
		return nil, false, errors.Join(errs...)
	}
	return out, secure, nil
}

// TXT returns the TXT records of name, each one string (its character
// strings joined, RFC 7208 section 3.3).
func (r *Resolver) TXT(ctx context.Context, name string) ([]string, bool, error) {
	rrs, secure, err := r.query(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, secure, err
	}
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	return out, secure, nil
}

// TLSA returns the TLSA records of _port._tcp.host and whether they were
// validated.
func (r *Resolver) TLSA(ctx context.Context, host string, port int) ([]TLSA, bool, error) {
	rrs, secure, err := r.query(ctx, fmt.Sprintf("_%d._tcp.%s", port, host), dns.TypeTLSA)
	if err != nil {
		return nil, secure, err
	}
	out := make([]TLSA, 0, len(rrs))
	for _, rr := range rrs {
		t := rr.(*dns.TLSA)
		data, err := hex.DecodeString(t.Certificate)
		if err != nil {
			continue // unusable record (RFC 7672 section 2.2)
		}
		out = append(out, TLSA{Usage: t.Usage, Selector: t.Selector, MatchingType: t.MatchingType, Data: data})
	}
	return out, secure, nil
}
