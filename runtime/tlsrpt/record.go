package tlsrpt

import (
	"context"
	"errors"
	"strings"
	"time"
)

// ParseRecord returns the rua of a policy domain's _smtp._tls TXT record
// set (RFC 8460 section 3): the URIs (mailto: or https:) of its one
// "v=TLSRPTv1" record. None is ok: nil. More than one such record, or one
// without a usable rua, is an error.
func ParseRecord(txts []string) ([]string, error) {
	var rua []string
	found := false
	for _, t := range txts {
		fields := strings.Split(t, ";")
		if strings.TrimSpace(fields[0]) != "v=TLSRPTv1" {
			continue
		}
		if found {
			return nil, errors.New("more than one v=TLSRPTv1 TXT record")
		}
		found = true
		for _, f := range fields[1:] {
			v, ok := strings.CutPrefix(strings.TrimSpace(f), "rua=")
			if !ok {
				continue
			}
			for _, u := range strings.Split(v, ",") {
				u = strings.TrimSpace(u)
				if l := strings.ToLower(u); strings.HasPrefix(l, "mailto:") || strings.HasPrefix(l, "https:") {
					rua = append(rua, u)
				}
			}
		}
		if len(rua) == 0 {
			return nil, errors.New("v=TLSRPTv1 TXT record without a mailto: or https: rua")
		}
	}
	return rua, nil
}

// LookupTXT returns the TXT records at name; none is (nil, nil).
type LookupTXT func(ctx context.Context, name string) ([]string, error)

// SetLookup lets the reports look up the _smtp._tls record of each policy
// domain, once a day, at the periodic flush (not on the delivery path),
// and keep its rua in the report files ("x-mailstack-rua").
func (r *Reports) SetLookup(fn LookupTXT) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.lookup = fn
	r.mu.Unlock()
}

// Bounds of the rua lookups of one flush.
const (
	maxLookupsPerFlush = 20
	lookupTimeout      = 10 * time.Second
)

// lookupRUAs looks up the rua of today's changed reports' domains that
// have not been looked up today.
func (r *Reports) lookupRUAs(today string) {
	r.mu.Lock()
	lookup := r.lookup
	var domains []string
	for k, a := range r.reports {
		if lookup != nil && k.day == today && a.dirty && r.ruaDay[k.domain] != today && len(domains) < maxLookupsPerFlush {
			domains = append(domains, k.domain)
		}
	}
	r.mu.Unlock()
	for _, d := range domains {
		ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
		txts, err := lookup(ctx, "_smtp._tls."+d)
		cancel()
		var rua []string
		if err == nil {
			rua, err = ParseRecord(txts)
		}
		if err != nil {
			r.log.Debug("no TLS reporting address", "domain", d, "err", err)
		}
		r.mu.Lock()
		r.ruaDay[d] = today // once a day, found or not
		r.mu.Unlock()
		r.SetRUA(d, rua)
	}
}
