// Package tlsrpttest checks TLS report files for tests: it reads the JSON
// as a generic document, independently of runtime/tlsrpt's types, and
// checks it against the schema of RFC 8460 section 4.4.
package tlsrpttest

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"
)

// resultTypes are RFC 8460 section 4.3's result types.
var resultTypes = []string{
	"starttls-not-supported", "certificate-host-mismatch", "certificate-expired", "certificate-not-trusted",
	"validation-failure", "tlsa-invalid", "dnssec-invalid", "dane-required",
	"sts-policy-fetch-error", "sts-policy-invalid", "sts-webpki-invalid",
}

// Read reads report file path, checks its shape and returns the document.
func Read(t testing.TB, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Check(data)
	if err != nil {
		t.Fatalf("%s is not an RFC 8460 report: %v\n%s", path, err, data)
	}
	return doc
}

// Check parses data and checks that it is an RFC 8460 report: the
// required members with their JSON types, RFC 3339 date-times, known
// policy and result types, and counts that add up.
func Check(data []byte) (map[string]any, error) {
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	for _, k := range []string{"organization-name", "contact-info", "report-id"} {
		if s, ok := doc[k].(string); !ok || s == "" {
			return nil, fmt.Errorf("%s: missing or not a non-empty string", k)
		}
	}
	dr, ok := doc["date-range"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("date-range: missing")
	}
	var times []time.Time
	for _, k := range []string{"start-datetime", "end-datetime"} {
		s, _ := dr[k].(string)
		ts, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return nil, fmt.Errorf("date-range.%s: %v", k, err)
		}
		times = append(times, ts)
	}
	if !times[0].Before(times[1]) {
		return nil, fmt.Errorf("date-range: start %v is not before end %v", times[0], times[1])
	}
	policies, ok := doc["policies"].([]any)
	if !ok || len(policies) == 0 {
		return nil, fmt.Errorf("policies: missing or empty")
	}
	for i, pv := range policies {
		p, _ := pv.(map[string]any)
		pol, _ := p["policy"].(map[string]any)
		if pol == nil {
			return nil, fmt.Errorf("policies[%d].policy: missing", i)
		}
		if pt, _ := pol["policy-type"].(string); !slices.Contains([]string{"sts", "tlsa", "no-policy-found"}, pt) {
			return nil, fmt.Errorf("policies[%d].policy.policy-type: %q", i, pt)
		}
		if d, _ := pol["policy-domain"].(string); d == "" {
			return nil, fmt.Errorf("policies[%d].policy.policy-domain: missing", i)
		}
		for _, k := range []string{"policy-string", "mx-host"} {
			if v, ok := pol[k]; ok {
				if err := stringArray(v); err != nil {
					return nil, fmt.Errorf("policies[%d].policy.%s: %v", i, k, err)
				}
			}
		}
		sum, _ := p["summary"].(map[string]any)
		failed, ok1 := count(sum, "total-failure-session-count")
		_, ok2 := count(sum, "total-successful-session-count")
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("policies[%d].summary: counts missing: %v", i, sum)
		}
		var details float64
		if fv, ok := p["failure-details"]; ok {
			fds, ok := fv.([]any)
			if !ok {
				return nil, fmt.Errorf("policies[%d].failure-details: not an array", i)
			}
			for j, fdv := range fds {
				fd, _ := fdv.(map[string]any)
				if rt, _ := fd["result-type"].(string); !slices.Contains(resultTypes, rt) {
					return nil, fmt.Errorf("policies[%d].failure-details[%d].result-type: %q", i, j, rt)
				}
				n, ok := count(fd, "failed-session-count")
				if !ok || n < 1 {
					return nil, fmt.Errorf("policies[%d].failure-details[%d].failed-session-count: %v", i, j, fd["failed-session-count"])
				}
				details += n
			}
		}
		if details != failed {
			return nil, fmt.Errorf("policies[%d]: the failure details count %v sessions, the summary %v", i, details, failed)
		}
	}
	return doc, nil
}

func count(m map[string]any, k string) (float64, bool) {
	n, ok := m[k].(float64)
	return n, ok && n >= 0 && n == float64(int64(n))
}

func stringArray(v any) error {
	a, ok := v.([]any)
	if !ok {
		return fmt.Errorf("not an array")
	}
	for _, s := range a {
		if _, ok := s.(string); !ok {
			return fmt.Errorf("%v is not a string", s)
		}
	}
	return nil
}
