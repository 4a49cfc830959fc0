package tlsrpt

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mailstack/terraform-provider-mailstack/internal/atomicfile"
)

// Defaults for zero Options fields.
const (
	DefaultFlushInterval = time.Minute
	DefaultKeepDays      = 30
	DefaultMaxDetails    = 100
)

// Options configures Reports. Dir is required.
type Options struct {
	// Dir holds the reports, one folder per day (runtime/statedir's
	// TLSReportsDir in a state directory).
	Dir string
	// Organization is the report's organization-name: the server's host
	// name. Contact is its contact-info (a postmaster address). Both can
	// change later (SetOrganization).
	Organization, Contact string
	// FlushInterval is how often reports that changed are written; zero
	// means DefaultFlushInterval, negative means only on Flush and Close.
	FlushInterval time.Duration
	// KeepDays is how many days of reports are kept, today included; zero
	// means DefaultKeepDays.
	KeepDays int
	// MaxDetails bounds the distinct failure details of one domain's
	// report of one day; zero means DefaultMaxDetails. Failures beyond it
	// are counted in one detail per result type that names no host.
	MaxDetails int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Reports aggregates sessions into the reports of the day and writes
// them. Its methods are safe for concurrent use; a nil *Reports records
// nothing.
type Reports struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	reports  map[reportKey]*aggregate
	overflow string              // the reason of details over the cap
	org      string              // organization-name, as last set
	contact  string              // contact-info, as last set
	rua      map[string][]string // by policy domain, as last set
	ruaDay   map[string]string   // the day a domain's rua was last looked up
	lookup   LookupTXT

	flushMu sync.Mutex // one Flush at a time
	stop    chan struct{}
	done    chan struct{}
}

type reportKey struct{ day, domain string }

// aggregate is one domain's report of one day.
type aggregate struct {
	policies map[string]*policyAgg
	details  int // distinct failure details over all policies
	dirty    bool
}

type policyAgg struct {
	policy           Policy
	success, failure int64
	details          map[detailKey]*FailureDetail
}

type detailKey struct {
	result                     ResultType
	sendingIP, mx, receivingIP string
}

func (a detailKey) less(b detailKey) bool {
	if a.result != b.result {
		return a.result < b.result
	}
	if a.mx != b.mx {
		return a.mx < b.mx
	}
	if a.receivingIP != b.receivingIP {
		return a.receivingIP < b.receivingIP
	}
	return a.sendingIP < b.sendingIP
}

// Open returns the reports kept in opts.Dir: it loads today's reports, so
// that a restart goes on counting where the last flush left them, removes
// reports older than KeepDays and starts the periodic flush.
func Open(opts Options) (*Reports, error) {
	if opts.FlushInterval == 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.KeepDays <= 0 {
		opts.KeepDays = DefaultKeepDays
	}
	if opts.MaxDetails <= 0 {
		opts.MaxDetails = DefaultMaxDetails
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating TLS reports folder: %w", err)
	}
	r := &Reports{opts: opts, log: opts.Logger, reports: map[reportKey]*aggregate{},
		rua: map[string][]string{}, ruaDay: map[string]string{},
		org: opts.Organization, contact: opts.Contact,
		overflow: fmt.Sprintf("further failures of this type; more than %d distinct details are not kept", opts.MaxDetails)}
	if err := r.load(day(opts.Now())); err != nil {
		return nil, err
	}
	r.prune(opts.Now())
	if opts.FlushInterval > 0 {
		r.stop, r.done = make(chan struct{}), make(chan struct{})
		go r.flusher()
	}
	return r, nil
}

func day(t time.Time) string { return t.UTC().Format(dayLayout) }

// Success counts a session that negotiated TLS as p demands.
func (r *Reports) Success(p Policy) { r.record(p, nil) }

// Failure counts a session that failed p as f says.
func (r *Reports) Failure(p Policy, f Failure) { r.record(p, &f) }

// record counts one session under p: a success, or the failure f.
func (r *Reports) record(p Policy, f *Failure) {
	if r == nil {
		return
	}
	now := r.opts.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	pa, a := r.policy(now, p)
	a.dirty = true
	if f == nil {
		pa.success++
		return
	}
	pa.failure++
	k := detailKey{f.Result, f.SendingIP, f.ReceivingMX, f.ReceivingIP}
	d := pa.details[k]
	reason := f.Reason
	if d == nil && a.details >= r.opts.MaxDetails {
		// Over the cap: one detail per result type, naming no host.
		k = detailKey{result: f.Result}
		d = pa.details[k]
		reason = r.overflow
	}
	if d == nil {
		d = &FailureDetail{ResultType: k.result, SendingIP: k.sendingIP, ReceivingMX: k.mx, ReceivingIP: k.receivingIP}
		pa.details[k] = d
		a.details++
	}
	d.Count++
	if reason != "" {
		d.ReasonCode = truncate(reason, maxReason)
	}
}

// SetOrganization changes the organization-name and contact-info of the
// reports written from now on (the server's host name changed).
func (r *Reports) SetOrganization(org, contact string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.org == org && r.contact == contact {
		return
	}
	r.org, r.contact = org, contact
	today := day(r.opts.Now())
	for k, a := range r.reports {
		if k.day == today {
			a.dirty = true
		}
	}
}

// SetRUA records where policy domain's _smtp._tls record (RFC 8460
// section 3) asks reports to be sent, for the report files.
func (r *Reports) SetRUA(domain string, rua []string) {
	if r == nil {
		return
	}
	domain = normalize(domain)
	r.mu.Lock()
	defer r.mu.Unlock()
	if strings.Join(r.rua[domain], " ") == strings.Join(rua, " ") {
		return
	}
	r.rua[domain] = rua
	if a := r.reports[reportKey{day(r.opts.Now()), domain}]; a != nil {
		a.dirty = true
	}
}

// policy returns p's aggregate in today's report of its domain, under mu.
func (r *Reports) policy(now time.Time, p Policy) (*policyAgg, *aggregate) {
	p.Domain = normalize(p.Domain)
	k := reportKey{day(now), p.Domain}
	a := r.reports[k]
	if a == nil {
		a = &aggregate{policies: map[string]*policyAgg{}}
		r.reports[k] = a
	}
	pk := p.key()
	pa := a.policies[pk]
	if pa == nil && len(a.policies) >= maxPolicies {
		// Over the cap (a domain that changes its policy all day): the
		// sessions count under the policy type alone.
		p = Policy{Type: p.Type, Domain: p.Domain}
		pk = p.key()
		pa = a.policies[pk]
	}
	if pa == nil {
		pa = &policyAgg{policy: p, details: map[detailKey]*FailureDetail{}}
		a.policies[pk] = pa
	}
	return pa, a
}

// Bounds of a report beside Options.MaxDetails: the distinct policies of
// one domain and day (beyond it, one per policy type without its strings
// and hosts) and a failure-reason-code's bytes.
const (
	maxPolicies = 16
	maxReason   = 300
)

// truncate cuts s to at most n bytes, on a UTF-8 boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

func normalize(domain string) string { return strings.ToLower(strings.TrimSuffix(domain, ".")) }

// snapshot is one report to write.
type snapshot struct {
	key    reportKey
	report *Report
}

// Flush looks up the rua of domains not looked up today (SetLookup),
// writes the reports that changed since the last flush, forgets those of
// past days and removes the folders of days older than KeepDays.
func (r *Reports) Flush() error { return r.flush(true) }

func (r *Reports) flush(lookups bool) error {
	if r == nil {
		return nil
	}
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	now := r.opts.Now()
	today := day(now)
	if lookups {
		r.lookupRUAs(today)
	}
	var snaps []snapshot
	r.mu.Lock()
	for k, a := range r.reports {
		if a.dirty {
			snaps = append(snaps, snapshot{k, r.build(k, a)})
			a.dirty = false
		}
	}
	r.mu.Unlock()
	var errs []error
	failed := map[reportKey]bool{}
	for _, s := range snaps {
		if err := r.write(s); err != nil {
			errs = append(errs, err)
			failed[s.key] = true
		}
	}
	r.mu.Lock()
	for k, a := range r.reports {
		if failed[k] {
			a.dirty = true // written again at the next flush
		}
		if k.day < today && !a.dirty {
			delete(r.reports, k) // a past day's report is final once written
		}
	}
	// The rua of a domain without a report in memory is looked up again
	// when it has one, so memory holds only today's domains.
	for d := range r.rua {
		if _, ok := r.reports[reportKey{today, d}]; !ok {
			delete(r.rua, d)
		}
	}
	for d := range r.ruaDay {
		if _, ok := r.reports[reportKey{today, d}]; !ok {
			delete(r.ruaDay, d)
		}
	}
	r.mu.Unlock()
	r.prune(now)
	return errors.Join(errs...)
}

// build makes the report of aggregate a, under mu.
func (r *Reports) build(k reportKey, a *aggregate) *Report {
	rep, _ := newReport(k.day, k.domain, r.org, r.contact)
	rep.RUA = r.rua[k.domain]
	for _, pa := range a.policies {
		pr := PolicyResult{Policy: pa.policy, Summary: Summary{Successful: pa.success, Failed: pa.failure}}
		for _, d := range pa.details {
			pr.FailureDetails = append(pr.FailureDetails, *d)
		}
		rep.Policies = append(rep.Policies, pr)
	}
	sortPolicies(rep.Policies)
	return rep
}

func (r *Reports) write(s snapshot) error {
	data, err := json.MarshalIndent(s.report, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding TLS report of %s for %s: %w", s.key.day, s.key.domain, err)
	}
	dir := filepath.Join(r.opts.Dir, s.key.day)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("writing TLS report: %w", err)
	}
	return atomicfile.WriteFile(filepath.Join(dir, FileName(s.key.domain)), append(data, '\n'), 0o600)
}

// FileName is the name of a policy domain's report file in a day's
// folder: the domain with every byte outside [a-z0-9._-] (and a leading
// dot) written as %XX, so no domain can name another path.
func FileName(domain string) string {
	var b strings.Builder
	for i := 0; i < len(domain); i++ {
		c := domain[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' && i > 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String() + ".json"
}

// load reads day's report files back into memory.
func (r *Reports) load(d string) error {
	dir := filepath.Join(r.opts.Dir, d)
	files, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading TLS reports: %w", err)
	}
	for _, f := range files {
		if f.IsDir() || !strings.HasSuffix(f.Name(), ".json") || strings.HasPrefix(f.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, f.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("reading TLS report: %w", err)
		}
		rep, err := Decode(data)
		if err != nil {
			// A report is statistics: a damaged one is started afresh.
			r.log.Warn("ignoring an unreadable TLS report", "file", p, "err", err)
			continue
		}
		for _, pr := range rep.Policies {
			k := reportKey{d, normalize(pr.Policy.Domain)}
			if rep.RUA != nil {
				r.rua[k.domain] = rep.RUA
			}
			a := r.reports[k]
			if a == nil {
				a = &aggregate{policies: map[string]*policyAgg{}}
				r.reports[k] = a
			}
			pa := &policyAgg{policy: pr.Policy, success: pr.Summary.Successful, failure: pr.Summary.Failed, details: map[detailKey]*FailureDetail{}}
			for _, fd := range pr.FailureDetails {
				pa.details[detailKey{fd.ResultType, fd.SendingIP, fd.ReceivingMX, fd.ReceivingIP}] = &fd
				a.details++
			}
			a.policies[pr.Policy.key()] = pa
		}
	}
	return nil
}

// prune removes the folders of days older than KeepDays.
func (r *Reports) prune(now time.Time) {
	oldest := day(now.AddDate(0, 0, 1-r.opts.KeepDays))
	entries, err := os.ReadDir(r.opts.Dir)
	if err != nil {
		r.log.Warn("listing TLS reports", "dir", r.opts.Dir, "err", err)
		return
	}
	for _, e := range entries {
		if _, err := time.Parse(dayLayout, e.Name()); err != nil || !e.IsDir() || e.Name() >= oldest {
			continue
		}
		if err := os.RemoveAll(filepath.Join(r.opts.Dir, e.Name())); err != nil {
			r.log.Warn("removing old TLS reports", "dir", e.Name(), "err", err)
		}
	}
}

func (r *Reports) flusher() {
	defer close(r.done)
	t := time.NewTicker(r.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			if err := r.Flush(); err != nil {
				r.log.Warn("writing TLS reports", "err", err)
			}
		}
	}
}

// Close stops the periodic flush and writes what changed, without DNS
// lookups, so that a shutdown does not wait for them.
func (r *Reports) Close() error {
	if r == nil {
		return nil
	}
	if r.stop != nil {
		close(r.stop)
		<-r.done
		r.stop = nil
	}
	return r.flush(false)
}
