package tlsrpt

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

// RFC 8460 section 3: the _smtp._tls TXT record.
func TestParseRecord(t *testing.T) {
	for _, tc := range []struct {
		name string
		txts []string
		rua  []string
		err  bool
	}{
		{"mailto", []string{"v=TLSRPTv1; rua=mailto:reports@example.org"}, []string{"mailto:reports@example.org"}, false},
		{"two URIs, other records", []string{"v=spf1 -all", "v=TLSRPTv1;rua=mailto:a@example.org, https://r.example.org/tlsrpt"},
			[]string{"mailto:a@example.org", "https://r.example.org/tlsrpt"}, false},
		{"none", []string{"v=spf1 -all"}, nil, false},
		{"two records", []string{"v=TLSRPTv1; rua=mailto:a@x", "v=TLSRPTv1; rua=mailto:b@x"}, nil, true},
		{"no rua", []string{"v=TLSRPTv1;"}, nil, true},
		{"unknown scheme only", []string{"v=TLSRPTv1; rua=ftp://x"}, nil, true},
	} {
		rua, err := ParseRecord(tc.txts)
		if !slices.Equal(rua, tc.rua) || (err != nil) != tc.err {
			t.Errorf("%s: %q, %v", tc.name, rua, err)
		}
	}
}

// TestLookupOncePerDay: the rua is looked up at a flush, once a day per
// domain, never by Close, and lands in the report file.
func TestLookupOncePerDay(t *testing.T) {
	dir := t.TempDir()
	c := testutil.NewClock(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	r := open(t, dir, c)
	var lookups atomic.Int32
	r.SetLookup(func(_ context.Context, name string) ([]string, error) {
		lookups.Add(1)
		switch name {
		case "_smtp._tls.example.org":
			return []string{"v=TLSRPTv1; rua=mailto:tlsrpt@example.org"}, nil
		case "_smtp._tls.broken.test":
			return nil, errors.New("SERVFAIL")
		}
		return nil, nil
	})
	r.Success(sts)
	r.Success(Policy{Type: PolicyNotFound, Domain: "broken.test"})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := lookups.Load(); n != 0 {
		t.Errorf("Close looked up %d records", n)
	}
	r = open(t, dir, c)
	r.SetLookup(func(_ context.Context, name string) ([]string, error) {
		lookups.Add(1)
		if name == "_smtp._tls.example.org" {
			return []string{"v=TLSRPTv1; rua=mailto:tlsrpt@example.org"}, nil
		}
		return nil, errors.New("SERVFAIL")
	})
	r.Success(sts)
	r.Success(Policy{Type: PolicyNotFound, Domain: "broken.test"})
	r.Flush()
	r.Success(sts)
	r.Success(Policy{Type: PolicyNotFound, Domain: "broken.test"})
	r.Flush()
	if n := lookups.Load(); n != 2 {
		t.Errorf("%d lookups for two domains on one day, want 2", n)
	}
	if rua := read(t, dir, "2026-03-01", "example.org").RUA; !slices.Equal(rua, []string{"mailto:tlsrpt@example.org"}) {
		t.Errorf("rua %q", rua)
	}
	if rua := read(t, dir, "2026-03-01", "broken.test").RUA; rua != nil {
		t.Errorf("rua %q for a failed lookup", rua)
	}
	c.Set(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	r.Success(sts)
	r.Flush()
	if n := lookups.Load(); n != 3 {
		t.Errorf("%d lookups after a new day began, want 3", n)
	}
	r.mu.Lock()
	if len(r.rua) != 1 || len(r.ruaDay) != 1 {
		t.Errorf("yesterday's domains are still in memory: rua %v, looked up %v", r.rua, r.ruaDay)
	}
	r.mu.Unlock()
	r.Close()
}
