package provider

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"

	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

// Two listeners that would bind one address and port on the host are
// refused at plan time, before anything is created: against the other
// listeners planned in the same run (whichever is planned second sees the
// first), and against a listener the server's runtime already has there.

// plannedAddr is one listener's planned address and port in a plan run.
type plannedAddr struct {
	id       string // the listener's id; "" for one to be created
	protocol string
	address  string
	port     int
	gone     bool // planned for destruction: it frees its address
}

func (p plannedAddr) addr() string { return net.JoinHostPort(p.address, strconv.Itoa(p.port)) }

// plannedListeners records the listeners planned in one run of the
// provider (one providerData per configured provider, so per run and
// per host: two servers on one host share its ports too).
type plannedListeners struct {
	mu    sync.Mutex
	addrs []plannedAddr
}

// add records p and returns a listener planned before it that would
// clash with it.
func (pl *plannedListeners) add(p plannedAddr) (plannedAddr, bool) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	var clash plannedAddr
	found := false
	for _, q := range pl.addrs {
		if !p.gone && !q.gone && (p.id == "" || p.id != q.id) && q.port == p.port && addressesOverlap(q.address, p.address) {
			clash, found = q, true
		}
	}
	pl.addrs = append(pl.addrs, p)
	return clash, found
}

// planned reports how listener id is planned in this run so far.
func (pl *plannedListeners) planned(id string) (plannedAddr, bool) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for _, q := range pl.addrs {
		if q.id == id {
			return q, true
		}
	}
	return plannedAddr{}, false
}

// checkPortClash refuses a listener whose address and port another
// listener planned in this run, or already serving in the runtime, holds.
// ModifyPlan calls it first, for destroy plans too.
func (r *listenerResource) checkPortClash(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if r.data == nil {
		return
	}
	if req.Plan.Raw.IsNull() {
		var state listenerModel
		if diags := req.State.Get(ctx, &state); !diags.HasError() {
			r.data.planned.add(plannedAddr{id: state.ID.ValueString(), gone: true})
		}
		return
	}
	var plan listenerModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || plan.Port.IsUnknown() || plan.Address.IsUnknown() || plan.Protocol.IsUnknown() {
		return
	}
	p := plannedAddr{id: plan.ID.ValueString(), protocol: plan.Protocol.ValueString(),
		address: plan.Address.ValueString(), port: int(plan.Port.ValueInt64())}
	if plan.ID.IsUnknown() {
		p.id = ""
	}
	addr := p.addr()
	if q, clash := r.data.planned.add(p); clash {
		other := "another listener in this configuration"
		if q.id != "" {
			other = fmt.Sprintf("listener %q in this configuration", q.id)
		}
		resp.Diagnostics.AddAttributeError(path.Root("port"), "Port Clash",
			fmt.Sprintf("This listener (%s on %s) and %s (%s on %s) would both bind port %d. Listeners on one host "+
				"need different ports, or distinct addresses that do not overlap (0.0.0.0 and :: overlap every "+
				"address). Nothing was changed.", p.protocol, addr, other, q.protocol, q.addr(), p.port))
		return
	}
	if plan.ServerID.IsUnknown() {
		return // a new server has no listeners yet
	}
	serverID := plan.ServerID.ValueString()
	client := r.data.client(serverID)
	if _, err := client.Status(ctx); err != nil {
		return // not running: apply starts it, and the runtime checks again
	}
	l := config.Listener{Protocol: p.protocol, Address: p.address, Port: p.port}
	if plan.TLS != nil {
		l.TLS.Mode = plan.TLS.Mode.ValueString()
	}
	_, id, _ := splitListenerID(p.id)
	if msg := r.clash(ctx, client, serverID, id, l, r.movesAway); msg != "" {
		resp.Diagnostics.AddAttributeError(path.Root("port"), "Port Clash", msg+
			" If that listener is removed or moved in this same change, apply that first (e.g. with -target).")
	}
}

// movesAway reports whether listener id of server serverID is planned in
// this run to leave address addr and port.
func (r *listenerResource) movesAway(serverID, id, address string, port int) bool {
	q, ok := r.data.planned.planned(serverID + "/" + id)
	return ok && (q.gone || q.port != port || !addressesOverlap(q.address, address))
}
