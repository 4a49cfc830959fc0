package tlspolicy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/runtime/tlsrpt"
)

// MTA-STS modes (RFC 8461 section 3.2).
const (
	ModeEnforce = "enforce"
	ModeTesting = "testing"
	ModeNone    = "none"
)

// maxPolicyAge is the longest max_age honoured (RFC 8461 section 3.2).
const maxPolicyAge = 31557600

// STSPolicy is a parsed MTA-STS policy with the id of the TXT record it
// was fetched for.
type STSPolicy struct {
	ID      string    `json:"id"`
	Mode    string    `json:"mode"`
	MX      []string  `json:"mx"`
	MaxAge  int64     `json:"max_age"`
	Fetched time.Time `json:"fetched"`
}

// Expired reports whether the policy's max_age has passed at now.
func (p *STSPolicy) Expired(now time.Time) bool {
	return now.After(p.Fetched.Add(time.Duration(p.MaxAge) * time.Second))
}

// MatchesMX reports whether host may serve as an MX under the policy
// (RFC 8461 section 4.1: exact, or "*." matching the leftmost label only).
func (p *STSPolicy) MatchesMX(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, pat := range p.MX {
		pat = strings.ToLower(pat)
		if rest, ok := strings.CutPrefix(pat, "*."); ok {
			if _, parent, found := strings.Cut(host, "."); found && parent == rest {
				return true
			}
		} else if host == pat {
			return true
		}
	}
	return false
}

// ParseSTSPolicy parses a policy body (RFC 8461 section 3.2). Lines end in
// CRLF or LF; unknown keys are ignored.
func ParseSTSPolicy(body string) (*STSPolicy, error) {
	p := &STSPolicy{MaxAge: -1}
	version := ""
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("policy line %q is not key: value", line)
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "version":
			version = v
		case "mode":
			p.Mode = v
		case "mx":
			p.MX = append(p.MX, v)
		case "max_age":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("policy max_age %q is not a number of seconds", v)
			}
			p.MaxAge = min(n, maxPolicyAge)
		}
	}
	switch {
	case version != "STSv1":
		return nil, fmt.Errorf("policy version %q is not STSv1", version)
	case p.Mode != ModeEnforce && p.Mode != ModeTesting && p.Mode != ModeNone:
		return nil, fmt.Errorf("policy mode %q is not enforce, testing or none", p.Mode)
	case p.MaxAge < 0:
		return nil, errors.New("policy has no max_age")
	case p.Mode != ModeNone && len(p.MX) == 0:
		return nil, errors.New("policy lists no mx")
	}
	return p, nil
}

// stsRecordID returns the id of a "v=STSv1; id=..." TXT record set
// (RFC 8461 section 3.1); more than one STSv1 record is an error, none is
// ok == false.
func stsRecordID(txts []string) (id string, ok bool, err error) {
	for _, t := range txts {
		fields := strings.Split(t, ";")
		if strings.TrimSpace(fields[0]) != "v=STSv1" {
			continue
		}
		if ok {
			return "", false, errors.New("more than one v=STSv1 TXT record")
		}
		ok = true
		for _, f := range fields[1:] {
			if v, found := strings.CutPrefix(strings.TrimSpace(f), "id="); found {
				id = v
			}
		}
		if id == "" {
			return "", false, errors.New("v=STSv1 TXT record without id")
		}
	}
	return id, ok, nil
}

// errPolicyInvalid marks a fetched policy that does not parse.
var errPolicyInvalid = errors.New("invalid policy")

// stsFetchResult is the RFC 8460 result type of a failed policy fetch
// (section 4.3.2.2): the policy host's certificate failed verification,
// the policy did not parse, or it could not be fetched.
func stsFetchResult(err error) tlsrpt.ResultType {
	var cve *tls.CertificateVerificationError
	switch {
	case errors.As(err, &cve):
		return tlsrpt.STSWebPKIInvalid
	case errors.Is(err, errPolicyInvalid):
		return tlsrpt.STSPolicyInvalid
	}
	return tlsrpt.STSPolicyFetch
}

// maxPolicyBytes bounds a fetched policy.
const maxPolicyBytes = 64 << 10

// fetchSTSPolicy fetches https://mta-sts.<domain>/.well-known/mta-sts.txt
// with client, which must verify certificates and must not follow
// redirects (RFC 8461 section 3.3).
func fetchSTSPolicy(ctx context.Context, client *http.Client, domain string) (*STSPolicy, error) {
	url := "https://mta-sts." + domain + "/.well-known/mta-sts.txt"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching MTA-STS policy %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching MTA-STS policy %s: HTTP %s", url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		return nil, fmt.Errorf("fetching MTA-STS policy %s: content type %q is not text/plain", url, ct)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPolicyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetching MTA-STS policy %s: %w", url, err)
	}
	if len(body) > maxPolicyBytes {
		return nil, fmt.Errorf("fetching MTA-STS policy %s: larger than %d bytes", url, maxPolicyBytes)
	}
	p, err := ParseSTSPolicy(string(body))
	if err != nil {
		return nil, fmt.Errorf("MTA-STS policy %s: %w: %w", url, errPolicyInvalid, err)
	}
	return p, nil
}
