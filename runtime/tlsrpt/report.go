// Package tlsrpt keeps SMTP TLS reports (RFC 8460) of outbound delivery:
// for each UTC day and each policy domain (a recipient domain), how many
// TLS sessions succeeded and failed under the policy that applied (an
// MTA-STS policy, DANE TLSA records, or none), and the details of the
// failures with RFC 8460's result types.
//
// It owns the aggregation and the report files: one RFC 8460 JSON report
// per day and domain, at <Dir>/<YYYY-MM-DD>/<policy-domain>.json, each
// replaced atomically. Counting is in memory behind one short mutex, with
// no I/O; the reports that changed are written every FlushInterval and on
// Close. A report is statistics, not mail: a process killed without Close
// loses at most the counts of one FlushInterval. Memory holds only the
// current day's reports, each bounded (at most MaxDetails failure details,
// further ones folded into one per result type, and 16 policies, further
// ones counted under their type alone), and reports older than KeepDays
// are removed.
//
// Reports are only written here, never sent: the rua of a domain's
// _smtp._tls TXT record (RFC 8460 section 3), looked up once a day at a
// periodic flush (SetLookup), is kept in the report file's
// "x-mailstack-rua" member, so that an operator sees where it would go.
package tlsrpt

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// PolicyType is RFC 8460's policy-type (section 4.4, "policy-type").
type PolicyType string

// Policy types.
const (
	PolicySTS      PolicyType = "sts"
	PolicyTLSA     PolicyType = "tlsa"
	PolicyNotFound PolicyType = "no-policy-found"
)

// ResultType is RFC 8460's result-type of a failure (section 4.3).
type ResultType string

// Result types of negotiation failures (RFC 8460 sections 4.3.1 and 4.3.3).
const (
	StartTLSNotSupported    ResultType = "starttls-not-supported"
	CertificateHostMismatch ResultType = "certificate-host-mismatch"
	CertificateExpired      ResultType = "certificate-expired"
	CertificateNotTrusted   ResultType = "certificate-not-trusted"
	ValidationFailure       ResultType = "validation-failure"
)

// Result types of policy failures (RFC 8460 sections 4.3.2.1, DANE, and 4.3.2.2, MTA-STS).
const (
	TLSAInvalid      ResultType = "tlsa-invalid"
	DNSSECInvalid    ResultType = "dnssec-invalid"
	DANERequired     ResultType = "dane-required"
	STSPolicyFetch   ResultType = "sts-policy-fetch-error"
	STSPolicyInvalid ResultType = "sts-policy-invalid"
	STSWebPKIInvalid ResultType = "sts-webpki-invalid"
)

// Policy is the policy a session was held to (RFC 8460 section 4.4,
// "policy").
type Policy struct {
	Type PolicyType `json:"policy-type"`
	// Strings: the MTA-STS policy's lines, or the TLSA records in
	// presentation form ("3 1 1 <hex>").
	Strings []string `json:"policy-string,omitempty"`
	// Domain is the policy domain: the recipient domain.
	Domain string `json:"policy-domain"`
	// MXHosts: the MTA-STS policy's mx patterns, or the MX host the TLSA
	// records belong to.
	MXHosts []string `json:"mx-host,omitempty"`
}

// key identifies a policy within its domain's report.
func (p Policy) key() string {
	return string(p.Type) + "\x00" + strings.Join(p.Strings, "\x01") + "\x00" + strings.Join(p.MXHosts, "\x01")
}

// Failure is one failed session (RFC 8460 section 4.4,
// "failure-details"). Result is required; the rest may be empty.
type Failure struct {
	Result      ResultType
	SendingIP   string // sending-mta-ip
	ReceivingMX string // receiving-mx-hostname
	ReceivingIP string // receiving-ip
	// Reason is a short text for the operator (failure-reason-code); the
	// latest one of a detail is kept.
	Reason string
}

// Report is an RFC 8460 report (section 4.4), as written to a file.
type Report struct {
	OrganizationName string         `json:"organization-name"`
	DateRange        DateRange      `json:"date-range"`
	ContactInfo      string         `json:"contact-info"`
	ReportID         string         `json:"report-id"`
	Policies         []PolicyResult `json:"policies"`
	// RUA is where the policy domain's _smtp._tls record asks reports to
	// be sent; not an RFC 8460 member, and absent when unknown.
	RUA []string `json:"x-mailstack-rua,omitempty"`
}

// DateRange is the day a report covers.
type DateRange struct {
	Start time.Time `json:"start-datetime"`
	End   time.Time `json:"end-datetime"`
}

// PolicyResult is one policy's entry of a report.
type PolicyResult struct {
	Policy         Policy          `json:"policy"`
	Summary        Summary         `json:"summary"`
	FailureDetails []FailureDetail `json:"failure-details,omitempty"`
}

// Summary counts a policy's sessions.
type Summary struct {
	Successful int64 `json:"total-successful-session-count"`
	Failed     int64 `json:"total-failure-session-count"`
}

// FailureDetail is an aggregate of failed sessions alike.
type FailureDetail struct {
	ResultType  ResultType `json:"result-type"`
	SendingIP   string     `json:"sending-mta-ip,omitempty"`
	ReceivingMX string     `json:"receiving-mx-hostname,omitempty"`
	ReceivingIP string     `json:"receiving-ip,omitempty"`
	Count       int64      `json:"failed-session-count"`
	ReasonCode  string     `json:"failure-reason-code,omitempty"`
}

// Decode parses a report file.
func Decode(data []byte) (*Report, error) {
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decoding TLS report: %w", err)
	}
	return &r, nil
}

// dayLayout names a day's folder.
const dayLayout = "2006-01-02"

// newReport is the frame of the report of day (UTC, dayLayout) for domain.
func newReport(day, domain, org, contact string) (*Report, error) {
	start, err := time.Parse(dayLayout, day)
	if err != nil {
		return nil, err
	}
	return &Report{
		OrganizationName: org, ContactInfo: contact,
		DateRange: DateRange{Start: start, End: start.Add(24*time.Hour - time.Second)},
		// Stable for the day, so that every rewrite is the same report.
		ReportID: start.Format(time.RFC3339) + "_" + domain + "@" + org,
	}, nil
}

// sortPolicies orders a report's policies and details for stable files.
func sortPolicies(ps []PolicyResult) {
	sort.Slice(ps, func(i, j int) bool { return ps[i].Policy.key() < ps[j].Policy.key() })
	for _, p := range ps {
		sort.Slice(p.FailureDetails, func(i, j int) bool {
			a, b := p.FailureDetails[i], p.FailureDetails[j]
			return detailKey{a.ResultType, a.SendingIP, a.ReceivingMX, a.ReceivingIP}.less(detailKey{b.ResultType, b.SendingIP, b.ReceivingMX, b.ReceivingIP})
		})
	}
}
