// Package dnstest is an authoritative DNS server for tests, on loopback,
// built on github.com/miekg/dns. It serves zones given as record strings,
// signs the zones that ask for it (DNSSEC: one ECDSA P-256 key, NSEC
// chains for negative answers) and can sign some records wrongly, so that
// a validating resolver in front of it (Unbound, see unbound.go) answers
// SERVFAIL for them. It is for tests only.
package dnstest

import (
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Zone is one zone the server is authoritative for.
type Zone struct {
	// Origin is the zone's name, e.g. "test." (a trailing dot is added).
	Origin string
	// Records are RRs in zone file syntax with absolute owner names,
	// e.g. "mx.example.test. 300 IN A 127.0.0.1".
	Records []string
	// Signed makes the server sign the zone (DNSSEC).
	Signed bool
	// Bogus lists owner names whose RRSIGs are made wrong on purpose.
	Bogus []string
}

// Server is a running test DNS server.
type Server struct {
	// Addr is the 127.0.0.1:port it answers on, over UDP and TCP.
	Addr  string
	zones []*zone
	udp   *dns.Server
	tcp   *dns.Server
}

type zone struct {
	origin string
	rrs    map[string]map[uint16][]dns.RR // owner -> type -> rrset
	sigs   map[string]map[uint16]*dns.RRSIG
	key    *dns.DNSKEY
	priv   crypto.Signer
	names  []string // owners in canonical order, for NSEC
	signed bool
}

// Start serves zones on a free loopback port until the test ends.
func Start(t testing.TB, zones ...Zone) *Server {
	t.Helper()
	s := &Server{}
	for _, z := range zones {
		zz, err := build(z)
		if err != nil {
			t.Fatalf("dnstest: zone %s: %v", z.Origin, err)
		}
		s.zones = append(s.zones, zz)
	}
	pc, ln, err := listenPair()
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(s.serve)
	s.udp = &dns.Server{PacketConn: pc, Handler: h}
	s.tcp = &dns.Server{Listener: ln, Handler: h}
	var wg sync.WaitGroup
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		wg.Go(func() { srv.ActivateAndServe() })
		<-started
	}
	t.Cleanup(func() {
		s.udp.Shutdown()
		s.tcp.Shutdown()
		wg.Wait()
	})
	return s
}

// listenPair binds UDP and TCP on one free port of 127.0.0.1. The kernel
// picks the UDP port; the same TCP port may be taken (a listener or a
// connection's local port), and then another UDP port is tried.
func listenPair() (net.PacketConn, net.Listener, error) {
	for tries := 0; ; tries++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if !errors.Is(err, syscall.EADDRINUSE) || tries == 100 {
			return nil, nil, fmt.Errorf("dnstest: TCP beside UDP %s: %w", pc.LocalAddr(), err)
		}
	}
}

// DS returns the DS record of a signed zone, for a resolver's trust anchor.
func (s *Server) DS(origin string) string {
	for _, z := range s.zones {
		if z.origin == dns.Fqdn(origin) && z.signed {
			return z.key.ToDS(dns.SHA256).String()
		}
	}
	return ""
}

func build(z Zone) (*zone, error) {
	origin := dns.CanonicalName(z.Origin)
	zz := &zone{origin: origin, rrs: map[string]map[uint16][]dns.RR{}, sigs: map[string]map[uint16]*dns.RRSIG{}, signed: z.Signed}
	add := func(rr dns.RR) {
		h := rr.Header()
		h.Name = dns.CanonicalName(h.Name)
		if zz.rrs[h.Name] == nil {
			zz.rrs[h.Name] = map[uint16][]dns.RR{}
		}
		zz.rrs[h.Name][h.Rrtype] = append(zz.rrs[h.Name][h.Rrtype], rr)
	}
	add(&dns.SOA{Hdr: dns.RR_Header{Name: origin, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
		Ns: "ns." + origin, Mbox: "hostmaster." + origin, Serial: 1, Refresh: 60, Retry: 60, Expire: 600, Minttl: 30})
	add(&dns.NS{Hdr: dns.RR_Header{Name: origin, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 60}, Ns: "ns." + origin})
	add(&dns.A{Hdr: dns.RR_Header{Name: "ns." + origin, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(127, 0, 0, 1)})
	for _, s := range z.Records {
		rr, err := dns.NewRR(s)
		if err != nil {
			return nil, fmt.Errorf("record %q: %w", s, err)
		}
		if !dns.IsSubDomain(origin, rr.Header().Name) {
			return nil, fmt.Errorf("record %q is outside the zone", s)
		}
		add(rr)
	}
	if !z.Signed {
		return zz, nil
	}
	zz.key = &dns.DNSKEY{Hdr: dns.RR_Header{Name: origin, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 60},
		Flags: 257, Protocol: 3, Algorithm: dns.ECDSAP256SHA256}
	priv, err := zz.key.Generate(256)
	if err != nil {
		return nil, err
	}
	zz.priv = priv.(crypto.Signer)
	add(zz.key)
	// The NSEC chain: every owner name, in canonical order, points to the
	// next and lists its types (RFC 4034 section 4).
	for name := range zz.rrs {
		zz.names = append(zz.names, name)
	}
	slices.SortFunc(zz.names, canonicalCompare)
	for i, name := range zz.names {
		types := []uint16{dns.TypeNSEC, dns.TypeRRSIG}
		for t := range zz.rrs[name] {
			types = append(types, t)
		}
		slices.Sort(types)
		add(&dns.NSEC{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: 30},
			NextDomain: zz.names[(i+1)%len(zz.names)], TypeBitMap: types})
	}
	now := time.Now()
	for name, byType := range zz.rrs {
		for t, rrset := range byType {
			sig := &dns.RRSIG{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: rrset[0].Header().Ttl},
				Inception: uint32(now.Add(-time.Hour).Unix()), Expiration: uint32(now.Add(24 * time.Hour).Unix()),
				KeyTag: zz.key.KeyTag(), SignerName: origin, Algorithm: zz.key.Algorithm}
			if err := sig.Sign(zz.priv, rrset); err != nil {
				return nil, fmt.Errorf("signing %s %s: %w", name, dns.TypeToString[t], err)
			}
			if slices.Contains(z.Bogus, name) && t != dns.TypeNSEC {
				// Flip a bit of the signature itself, not of its base64
				// text (a flipped character may not be base64 at all, and
				// such a record cannot be sent): it no longer verifies.
				b, err := base64.StdEncoding.DecodeString(sig.Signature)
				if err != nil {
					return nil, fmt.Errorf("signature of %s %s: %w", name, dns.TypeToString[t], err)
				}
				b[len(b)/2] ^= 1
				sig.Signature = base64.StdEncoding.EncodeToString(b)
			}
			if zz.sigs[name] == nil {
				zz.sigs[name] = map[uint16]*dns.RRSIG{}
			}
			zz.sigs[name][t] = sig
		}
	}
	return zz, nil
}

// canonicalCompare orders names as RFC 4034 section 6.1 does: by labels
// from the right, each compared as lower-case bytes.
func canonicalCompare(a, b string) int {
	la, lb := dns.SplitDomainName(a), dns.SplitDomainName(b)
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if c := strings.Compare(strings.ToLower(la[i]), strings.ToLower(lb[j])); c != 0 {
			return c
		}
	}
	return len(la) - len(lb)
}

func (s *Server) zoneFor(name string) *zone {
	var best *zone
	for _, z := range s.zones {
		if dns.IsSubDomain(z.origin, name) && (best == nil || len(z.origin) > len(best.origin)) {
			best = z
		}
	}
	return best
}

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := dns.CanonicalName(q.Name)
	z := s.zoneFor(name)
	if z == nil {
		m.Rcode = dns.RcodeRefused
		w.WriteMsg(m)
		return
	}
	do := false
	if opt := req.IsEdns0(); opt != nil {
		do = opt.Do()
		m.SetEdns0(1232, do)
	}
	withSig := func(name string, t uint16, rrs []dns.RR) []dns.RR {
		if do && z.signed {
			if sig := z.sigs[name][t]; sig != nil {
				rrs = append(rrs, sig)
			}
		}
		return rrs
	}
	byType, exists := z.rrs[name]
	switch {
	case exists && len(byType[q.Qtype]) > 0:
		m.Answer = withSig(name, q.Qtype, slices.Clone(byType[q.Qtype]))
	case exists && len(byType[dns.TypeCNAME]) > 0:
		m.Answer = withSig(name, dns.TypeCNAME, slices.Clone(byType[dns.TypeCNAME]))
	default:
		if !exists {
			m.Rcode = dns.RcodeNameError
		}
		m.Ns = withSig(z.origin, dns.TypeSOA, slices.Clone(z.rrs[z.origin][dns.TypeSOA]))
		if do && z.signed {
			// NODATA: the name's own NSEC. NXDOMAIN: the NSEC covering the
			// name, and the apex NSEC, which proves no wildcard.
			owner := name
			if !exists {
				owner = z.covering(name)
			}
			m.Ns = append(m.Ns, withSig(owner, dns.TypeNSEC, slices.Clone(z.rrs[owner][dns.TypeNSEC]))...)
			if !exists && owner != z.origin {
				m.Ns = append(m.Ns, withSig(z.origin, dns.TypeNSEC, slices.Clone(z.rrs[z.origin][dns.TypeNSEC]))...)
			}
		}
	}
	w.WriteMsg(m)
}

// covering returns the owner whose NSEC covers the missing name.
func (z *zone) covering(name string) string {
	prev := z.names[len(z.names)-1]
	for _, n := range z.names {
		if canonicalCompare(n, name) > 0 {
			break
		}
		prev = n
	}
	return prev
}
