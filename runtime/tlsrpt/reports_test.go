package tlsrpt

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil/tlsrpttest"
)

func open(t *testing.T, dir string, c *testutil.Clock, tweak ...func(*Options)) *Reports {
	t.Helper()
	opts := Options{Dir: dir, Organization: "mail.ours.test", Contact: "postmaster@ours.test", Now: c.Now, FlushInterval: -1}
	for _, f := range tweak {
		f(&opts)
	}
	r, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// read reads and checks the report of domain for day.
func read(t *testing.T, dir, day, domain string) *Report {
	t.Helper()
	path := filepath.Join(dir, day, FileName(domain))
	tlsrpttest.Read(t, path)
	data, _ := os.ReadFile(path)
	rep, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

var (
	sts = Policy{Type: PolicySTS, Domain: "example.org",
		Strings: []string{"version: STSv1", "mode: enforce", "mx: mx.example.org", "max_age: 86400"},
		MXHosts: []string{"mx.example.org"}}
	none = Policy{Type: PolicyNotFound, Domain: "Example.ORG."}
)

// TestAggregation: sessions of one day and domain add up per policy, alike
// failures share one detail, and the file is an RFC 8460 report.
func TestAggregation(t *testing.T) {
	dir := t.TempDir()
	c := testutil.NewClock(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	r := open(t, dir, c)
	for range 3 {
		r.Success(sts)
	}
	strip := Failure{Result: StartTLSNotSupported, SendingIP: "127.0.0.1", ReceivingMX: "mx.example.org", ReceivingIP: "192.0.2.1", Reason: "did not offer STARTTLS"}
	r.Failure(sts, strip)
	r.Failure(sts, strip)
	r.Failure(sts, Failure{Result: CertificateExpired, ReceivingMX: "mx.example.org", ReceivingIP: "192.0.2.2"})
	r.Success(none)
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	// A new host name is in the report at the next flush, without a new
	// session.
	r.SetOrganization("mx.ours.test", "postmaster@ours.test")
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	rep := read(t, dir, "2026-03-01", "example.org")
	if rep.OrganizationName != "mx.ours.test" || rep.ContactInfo != "postmaster@ours.test" {
		t.Errorf("organization %q, contact %q", rep.OrganizationName, rep.ContactInfo)
	}
	if !rep.DateRange.Start.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) || !rep.DateRange.End.Equal(time.Date(2026, 3, 1, 23, 59, 59, 0, time.UTC)) {
		t.Errorf("date range %+v", rep.DateRange)
	}
	if len(rep.Policies) != 2 {
		t.Fatalf("%d policies, want 2: %+v", len(rep.Policies), rep.Policies)
	}
	// Sorted by policy type: no-policy-found before sts.
	if p := rep.Policies[0]; p.Policy.Type != PolicyNotFound || p.Policy.Domain != "example.org" || p.Summary != (Summary{1, 0}) || len(p.FailureDetails) != 0 {
		t.Errorf("no-policy-found: %+v", p)
	}
	p := rep.Policies[1]
	if p.Policy.Type != PolicySTS || p.Summary != (Summary{3, 3}) || strings.Join(p.Policy.MXHosts, ",") != "mx.example.org" || len(p.Policy.Strings) != 4 {
		t.Errorf("sts: %+v", p)
	}
	r2 := open(t, t.TempDir(), c)
	r2.Failure(sts, Failure{Result: ValidationFailure, Reason: strings.Repeat("é", 400)})
	r2.mu.Lock()
	for _, pa := range r2.reports[reportKey{"2026-03-01", "example.org"}].policies {
		for _, d := range pa.details {
			if len(d.ReasonCode) > maxReason+3 || !utf8.ValidString(d.ReasonCode) {
				t.Errorf("a long reason is kept as %d bytes (valid UTF-8: %v)", len(d.ReasonCode), utf8.ValidString(d.ReasonCode))
			}
		}
	}
	r2.mu.Unlock()
	r2.Close()
	want := []FailureDetail{
		{ResultType: CertificateExpired, ReceivingMX: "mx.example.org", ReceivingIP: "192.0.2.2", Count: 1},
		{ResultType: StartTLSNotSupported, SendingIP: "127.0.0.1", ReceivingMX: "mx.example.org", ReceivingIP: "192.0.2.1", Count: 2, ReasonCode: "did not offer STARTTLS"},
	}
	if fmt.Sprint(p.FailureDetails) != fmt.Sprint(want) {
		t.Errorf("failure details\n%+v\nwant\n%+v", p.FailureDetails, want)
	}
}

// TestDayRollover: a session after midnight (UTC) counts in the next day's
// report; the past day's report is written in full at the next flush and
// then kept unchanged.
func TestDayRollover(t *testing.T) {
	dir := t.TempDir()
	c := testutil.NewClock(time.Date(2026, 3, 1, 23, 59, 59, 0, time.UTC))
	r := open(t, dir, c)
	r.Success(sts)
	c.Set(time.Date(2026, 3, 2, 0, 0, 1, 0, time.UTC))
	r.Success(sts)
	r.Success(sts)
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := read(t, dir, "2026-03-01", "example.org").Policies[0].Summary.Successful; got != 1 {
		t.Errorf("2026-03-01: %d sessions, want 1", got)
	}
	if got := read(t, dir, "2026-03-02", "example.org").Policies[0].Summary.Successful; got != 2 {
		t.Errorf("2026-03-02: %d sessions, want 2", got)
	}
	r.mu.Lock()
	n := len(r.reports)
	r.mu.Unlock()
	if n != 1 {
		t.Errorf("%d reports in memory after the flush, want only today's", n)
	}
	r.Success(sts)
	r.Close()
	if got := read(t, dir, "2026-03-01", "example.org").Policies[0].Summary.Successful; got != 1 {
		t.Errorf("2026-03-01 changed after its day: %d sessions", got)
	}
}

// TestRestartContinuesTheDay: reports written before a restart are read
// back, so the day's counts go on rather than start again; a damaged file
// is started afresh.
func TestRestartContinuesTheDay(t *testing.T) {
	dir := t.TempDir()
	c := testutil.NewClock(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	r := open(t, dir, c)
	r.Success(sts)
	r.Failure(sts, Failure{Result: CertificateNotTrusted, ReceivingMX: "mx.example.org"})
	r.SetRUA("example.org", []string{"mailto:tlsrpt@example.org"})
	r.Success(Policy{Type: PolicyNotFound, Domain: "damaged.test"})
	r.Close()
	os.WriteFile(filepath.Join(dir, "2026-03-01", FileName("damaged.test")), []byte("{not json"), 0o600)

	r = open(t, dir, c)
	r.Success(sts)
	r.Failure(sts, Failure{Result: CertificateNotTrusted, ReceivingMX: "mx.example.org"})
	r.Success(Policy{Type: PolicyNotFound, Domain: "damaged.test"})
	r.Close()
	rep := read(t, dir, "2026-03-01", "example.org")
	p := rep.Policies[0]
	if p.Summary != (Summary{2, 2}) || len(p.FailureDetails) != 1 || p.FailureDetails[0].Count != 2 {
		t.Errorf("after a restart: %+v", p)
	}
	if strings.Join(rep.RUA, " ") != "mailto:tlsrpt@example.org" {
		t.Errorf("rua %q not kept", rep.RUA)
	}
	if got := read(t, dir, "2026-03-01", "damaged.test").Policies[0].Summary.Successful; got != 1 {
		t.Errorf("damaged report: %d sessions after a restart, want 1", got)
	}
}

// TestPrune: days older than KeepDays are removed when the reports open
// and at each flush; other files are left alone.
func TestPrune(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"2026-01-01", "2026-02-28", "2026-03-01", "not-a-day"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	c := testutil.NewClock(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	keep2 := func(o *Options) { o.KeepDays = 2 }
	r := open(t, dir, c, keep2)
	exists := func(d string) bool { _, err := os.Stat(filepath.Join(dir, d)); return err == nil }
	if exists("2026-01-01") || exists("2026-02-28") || !exists("2026-03-01") || !exists("not-a-day") {
		t.Error("Open did not keep exactly 2026-03-01 and the foreign folder")
	}
	r.Success(sts)
	c.Set(time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC))
	r.Flush()
	if exists("2026-03-01") || !exists("2026-03-02") {
		t.Error("Flush did not prune 2026-03-01 after midnight")
	}
	r.Close()
}

// TestDetailCap: more distinct failures than MaxDetails fold into one
// detail per result type; the summary still counts every session.
func TestDetailCap(t *testing.T) {
	dir := t.TempDir()
	c := testutil.NewClock(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	r := open(t, dir, c, func(o *Options) { o.MaxDetails = 5 })
	for i := range 50 {
		r.Failure(sts, Failure{Result: CertificateExpired, ReceivingMX: "mx.example.org", ReceivingIP: fmt.Sprintf("192.0.2.%d", i)})
		r.Failure(sts, Failure{Result: StartTLSNotSupported, ReceivingMX: "mx.example.org", ReceivingIP: fmt.Sprintf("198.51.100.%d", i)})
	}
	r.Close()
	p := read(t, dir, "2026-03-01", "example.org").Policies[0]
	if p.Summary.Failed != 100 {
		t.Errorf("summary counts %d failures, want 100", p.Summary.Failed)
	}
	if len(p.FailureDetails) != 7 {
		t.Fatalf("%d details, want 5 plus one per result type", len(p.FailureDetails))
	}
	var folded int64
	for _, d := range p.FailureDetails {
		if d.ReceivingIP == "" {
			folded += d.Count
			if !strings.Contains(d.ReasonCode, "not kept") {
				t.Errorf("folded detail without a reason: %+v", d)
			}
		}
	}
	if folded != 95 {
		t.Errorf("%d failures folded, want 95", folded)
	}
}

// TestPolicyCap: a domain whose policy changes all day keeps at most
// maxPolicies policies; the further sessions count under their type.
func TestPolicyCap(t *testing.T) {
	dir := t.TempDir()
	r := open(t, dir, testutil.NewClock(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)))
	for i := range 3 * maxPolicies {
		p := sts
		p.Strings = []string{"version: STSv1", "mode: enforce", fmt.Sprintf("mx: mx%d.example.org", i), "max_age: 86400"}
		r.Success(p)
	}
	r.Close()
	rep := read(t, dir, "2026-03-01", "example.org")
	if len(rep.Policies) != maxPolicies+1 {
		t.Fatalf("%d policies, want %d and one without strings", len(rep.Policies), maxPolicies+1)
	}
	var total int64
	for _, p := range rep.Policies {
		total += p.Summary.Successful
		if p.Policy.Strings == nil && p.Summary.Successful != 2*maxPolicies {
			t.Errorf("the policy over the cap counts %d sessions, want %d", p.Summary.Successful, 2*maxPolicies)
		}
	}
	if total != 3*maxPolicies {
		t.Errorf("%d sessions counted, want %d", total, 3*maxPolicies)
	}
}

// TestFileName: a domain never names a path outside its day's folder.
func TestFileName(t *testing.T) {
	for domain, want := range map[string]string{
		"example.org":           "example.org.json",
		"../../etc":             "%2E.%2F..%2Fetc.json",
		"xn--bcher-kva.example": "xn--bcher-kva.example.json",
		"bücher.example":        "b%C3%BCcher.example.json",
	} {
		if got := FileName(domain); got != want {
			t.Errorf("FileName(%q) = %q, want %q", domain, got, want)
		}
	}
}

// TestNilReports: outbound holds a nil *Reports when reporting is off.
func TestNilReports(t *testing.T) {
	var r *Reports
	r.Success(sts)
	r.Failure(sts, Failure{Result: ValidationFailure})
	r.SetRUA("example.org", nil)
	if r.Flush() != nil || r.Close() != nil {
		t.Error("a nil Reports fails")
	}
}

// TestPeriodicFlush: with a FlushInterval, counts reach the file without
// a Flush call.
func TestPeriodicFlush(t *testing.T) {
	dir := t.TempDir()
	c := testutil.NewClock(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	r := open(t, dir, c, func(o *Options) { o.FlushInterval = 10 * time.Millisecond })
	defer r.Close()
	r.Success(sts)
	path := filepath.Join(dir, "2026-03-01", FileName("example.org"))
	testutil.Eventually(t, "the periodic flush to write "+path, func() bool {
		_, err := os.Stat(path)
		return err == nil
	})
	read(t, dir, "2026-03-01", "example.org")
}

// TestKillLosesOnlyTheUnflushed: a process that dies without Close (kill
// -9) loses the counts since the last flush and nothing else; the next
// one goes on from the file.
func TestKillLosesOnlyTheUnflushed(t *testing.T) {
	dir := t.TempDir()
	c := testutil.NewClock(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	killed := open(t, dir, c)
	killed.Success(sts)
	killed.Success(sts)
	if err := killed.Flush(); err != nil {
		t.Fatal(err)
	}
	killed.Success(sts) // after the last flush: lost with the process
	r := open(t, dir, c)
	r.Success(sts)
	r.Close()
	if got := read(t, dir, "2026-03-01", "example.org").Policies[0].Summary.Successful; got != 3 {
		t.Errorf("%d sessions after the kill and one more, want 2 flushed + 1", got)
	}
}
