package provider

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
)

// warnings records the warnings the provider sends terraform with its
// plans, which terraform prints but terraform-plugin-testing does not
// show a test: a test serves the provider through factories and checks
// them with expect.
type warnings struct {
	mu   sync.Mutex
	seen []string // "<resource type>: <summary>: <detail>"
}

// wrap serves the providers of factories (providerFactories, a
// testClock's), recording the warnings of their plans.
func (w *warnings) wrap(factories map[string]func() (tfprotov6.ProviderServer, error)) map[string]func() (tfprotov6.ProviderServer, error) {
	out := make(map[string]func() (tfprotov6.ProviderServer, error), len(factories))
	for name, f := range factories {
		out[name] = func() (tfprotov6.ProviderServer, error) {
			s, err := f()
			if err != nil {
				return nil, err
			}
			return warningRecorder{ProviderServer: s, w: w}, nil
		}
	}
	return out
}

// reset forgets what was recorded, for a step's PreConfig.
func (w *warnings) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = nil
}

// expect is a plan check that a plan of this step warned about a resource
// of typeName with a summary and detail that match pattern (multi-line).
func (w *warnings) expect(typeName, pattern string) plancheck.PlanCheck {
	return expectWarning{w: w, typeName: typeName, re: regexp.MustCompile("(?s)" + pattern)}
}

type expectWarning struct {
	w        *warnings
	typeName string
	re       *regexp.Regexp
}

func (c expectWarning) CheckPlan(_ context.Context, _ plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	for _, s := range c.w.seen {
		if strings.HasPrefix(s, c.typeName+": ") && c.re.MatchString(s) {
			return
		}
	}
	resp.Error = fmt.Errorf("no warning on %s matches %q; the plans warned:\n%s", c.typeName, c.re, strings.Join(c.w.seen, "\n"))
}

// warningRecorder is the provider's protocol server, recording the
// warnings of PlanResourceChange.
type warningRecorder struct {
	tfprotov6.ProviderServer
	w *warnings
}

func (s warningRecorder) PlanResourceChange(ctx context.Context, req *tfprotov6.PlanResourceChangeRequest) (*tfprotov6.PlanResourceChangeResponse, error) {
	resp, err := s.ProviderServer.PlanResourceChange(ctx, req)
	if resp != nil {
		s.w.mu.Lock()
		for _, d := range resp.Diagnostics {
			if d.Severity == tfprotov6.DiagnosticSeverityWarning {
				s.w.seen = append(s.w.seen, fmt.Sprintf("%s: %s: %s", req.TypeName, d.Summary, d.Detail))
			}
		}
		s.w.mu.Unlock()
	}
	return resp, err
}
