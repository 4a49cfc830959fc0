package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// alwaysTrue plans a computed health flag (a runtime running, a listener
// bound) as true, so a false read from the host shows in plan as a change
// that apply repairs.
type alwaysTrue struct{}

var _ planmodifier.Bool = alwaysTrue{}

func (alwaysTrue) Description(context.Context) string {
	return "Plans true; a false value read from the host is drift that apply repairs."
}

func (m alwaysTrue) MarkdownDescription(ctx context.Context) string { return m.Description(ctx) }

func (alwaysTrue) PlanModifyBool(_ context.Context, req planmodifier.BoolRequest, resp *planmodifier.BoolResponse) {
	if req.Plan.Raw.IsNull() {
		return // destroy
	}
	resp.PlanValue = types.BoolValue(true)
}
