package outbound

import (
	"context"
	"errors"
	"net"

	"github.com/mailstack/terraform-provider-mailstack/runtime/dnsclient"
	"github.com/mailstack/terraform-provider-mailstack/runtime/tlspolicy"
	"github.com/mailstack/terraform-provider-mailstack/runtime/tlsrpt"
)

// TLS reports (RFC 8460) count each connection to an MX host once, as a
// session under the policy that applied (tlspolicy.Policy.ReportPolicy):
// a success when TLS was negotiated as the policy demands, else a failure
// with its result type. A connection that fails before TLS comes into it
// (refused, a 4xx greeting) is no TLS session and is not counted;
// connections to the relay are not reported (they have no policy domain).
// Counting never changes what delivery does.

// sessionReport learns the outcome of one dial for the TLS reports.
type sessionReport struct {
	reports *tlsrpt.Reports
	s       dialSpec
	local   string // sending-mta-ip, once the TCP connection is made
}

// reportSession returns the report of a dial of s, and makes s's dialer
// note the local address; nil when reports are off or s has no policy
// domain.
func (e *Engine) reportSession(s *dialSpec) *sessionReport {
	if e.opts.TLSReports == nil || s.domain == "" {
		return nil
	}
	r := &sessionReport{reports: e.opts.TLSReports, s: *s}
	dialer := s.dialer
	s.dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := dialer(ctx, network, addr)
		if err == nil {
			if a, ok := nc.LocalAddr().(*net.TCPAddr); ok {
				r.local = a.IP.String()
			}
		}
		return nc, err
	}
	return r
}

// done counts the outcome of the dial: the connection c, or err.
func (r *sessionReport) done(ctx context.Context, c *conn, err error) {
	if r == nil || ctx.Err() != nil {
		return
	}
	pol := r.s.policy.ReportPolicy(r.s.domain, r.s.host)
	ip, _, _ := net.SplitHostPort(r.s.addr)
	fail := func(result tlsrpt.ResultType, reason string) {
		r.reports.Failure(pol, tlsrpt.Failure{Result: result, SendingIP: r.local, ReceivingMX: r.s.host, ReceivingIP: ip, Reason: reason})
	}
	switch {
	case err != nil && !tlspolicy.IsPolicyError(err) && !errors.Is(err, errNoTLSRetry):
		// It failed before TLS came into it: no TLS session.
	case r.s.policy.STSFailure != nil:
		// The domain's MTA-STS policy could not be applied: that is the
		// failure, whatever the opportunistic session made of it.
		fail(r.s.policy.STSFailure.Result, r.s.policy.STSFailure.Error())
	case err != nil:
		fail(tlspolicy.ResultOf(err), err.Error())
	case c.tls == nil:
		fail(tlsrpt.StartTLSNotSupported, c.remote+" did not offer STARTTLS or refused it; delivered without TLS")
	case c.reportErr != nil:
		fail(tlspolicy.ResultOf(c.reportErr), c.reportErr.Error())
	default:
		r.reports.Success(pol)
	}
}

// reportPolicyFailure counts a session to MX host of domain that a policy
// ended before it began: an MX the MTA-STS policy does not list, or a
// TLSA lookup that failed.
func (e *Engine) reportPolicyFailure(p tlsrpt.Policy, host string, err error) {
	if e.opts.TLSReports == nil || e.ctx.Err() != nil {
		return
	}
	e.opts.TLSReports.Failure(p, tlsrpt.Failure{Result: tlspolicy.ResultOf(err), ReceivingMX: host, Reason: err.Error()})
}

// lookupTXT reads TXT records with the resolvers of the current settings:
// the TLS reports look up each policy domain's _smtp._tls record with it,
// away from the delivery path.
func (e *Engine) lookupTXT(ctx context.Context, name string) ([]string, error) {
	txts, _, err := e.set.Load().resolver.TXT(ctx, name)
	if errors.Is(err, dnsclient.ErrNotFound) {
		return nil, nil
	}
	return txts, err
}
