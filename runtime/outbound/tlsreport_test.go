package outbound

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil/tlsrpttest"
	"github.com/mailstack/terraform-provider-mailstack/runtime/tlsrpt"
)

// reportWant is what a test expects of one domain's TLS report (RFC
// 8460): one policy, its sessions and its failure details.
type reportWant struct {
	typ tlsrpt.PolicyType
	// strings must be among the policy-string lines; mx is the mx-host.
	strings, mx []string
	// ok is the least number of successful sessions; any more must not
	// exceed okMax (a second message may or may not open a connection of
	// its own).
	ok, okMax int64
	failures  []failureWant
	// rua is what the domain's _smtp._tls record asks for, if it has one.
	rua []string
}

type failureWant struct {
	result    tlsrpt.ResultType
	mx, ip    string // receiving-mx-hostname, receiving-ip
	sendingIP string
	count     int64
	reason    string // in the failure-reason-code
}

// checkReport writes the engine's TLS reports and checks domain's report
// of the day: its shape against RFC 8460 (tlsrpttest) and its contents
// against want.
func (h *harness) checkReport(domain string, want reportWant) {
	h.t.Helper()
	if err := h.reports.Flush(); err != nil {
		h.t.Fatal(err)
	}
	path := filepath.Join(h.reportsDir, h.clock.Now().UTC().Format("2006-01-02"), tlsrpt.FileName(domain))
	tlsrpttest.Read(h.t, path)
	data, _ := os.ReadFile(path)
	rep, err := tlsrpt.Decode(data)
	if err != nil {
		h.t.Fatal(err)
	}
	if rep.OrganizationName != "mail.ours.test" || !strings.Contains(rep.ReportID, domain) {
		h.t.Errorf("%s: organization %q, report id %q", domain, rep.OrganizationName, rep.ReportID)
	}
	if !slices.Equal(rep.RUA, want.rua) {
		h.t.Errorf("%s: x-mailstack-rua %q, want %q", domain, rep.RUA, want.rua)
	}
	if len(rep.Policies) != 1 {
		h.t.Fatalf("%s: %d policies, want 1:\n%s", domain, len(rep.Policies), data)
	}
	p := rep.Policies[0]
	if want.okMax < want.ok {
		want.okMax = want.ok
	}
	var failed int64
	for _, f := range want.failures {
		failed += f.count
	}
	switch {
	case p.Policy.Type != want.typ || p.Policy.Domain != domain:
		h.t.Errorf("%s: policy %s for %s, want %s", domain, p.Policy.Type, p.Policy.Domain, want.typ)
	case !slices.Equal(p.Policy.MXHosts, want.mx):
		h.t.Errorf("%s: mx-host %q, want %q", domain, p.Policy.MXHosts, want.mx)
	case p.Summary.Successful < want.ok || p.Summary.Successful > want.okMax || p.Summary.Failed != failed:
		h.t.Errorf("%s: %d successful, %d failed sessions; want %d-%d and %d", domain,
			p.Summary.Successful, p.Summary.Failed, want.ok, want.okMax, failed)
	}
	for _, s := range want.strings {
		if !slices.Contains(p.Policy.Strings, s) {
			h.t.Errorf("%s: policy-string %q lacks %q", domain, p.Policy.Strings, s)
		}
	}
	if len(p.FailureDetails) != len(want.failures) {
		h.t.Fatalf("%s: %d failure details, want %d:\n%s", domain, len(p.FailureDetails), len(want.failures), data)
	}
	for i, f := range want.failures {
		got := p.FailureDetails[i]
		g := failureWant{got.ResultType, got.ReceivingMX, got.ReceivingIP, got.SendingIP, got.Count, f.reason}
		if g != f || !strings.Contains(got.ReasonCode, f.reason) {
			h.t.Errorf("%s: failure %d is %+v (reason %q), want %s", domain, i, g, got.ReasonCode, fmt.Sprintf("%+v", f))
		}
	}
}
