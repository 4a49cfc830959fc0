package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
)

var (
	_ resource.Resource                = (*dkimKeyResource)(nil)
	_ resource.ResourceWithConfigure   = (*dkimKeyResource)(nil)
	_ resource.ResourceWithImportState = (*dkimKeyResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*dkimKeyResource)(nil)
)

// keyGoneKey is the private state Read leaves for ModifyPlan: the runtime
// does not sign with the key and its private key is not on the host
// either, so only a new key (and a new record) can repair it.
const keyGoneKey = "dkim_key_gone"

// NewDKIMKeyResource returns the mailstack_dkim_key resource.
func NewDKIMKeyResource() resource.Resource { return &dkimKeyResource{} }

type dkimKeyResource struct{ data *providerData }

type dkimKeyModel struct {
	ID          types.String `tfsdk:"id"`
	ServerID    types.String `tfsdk:"server_id"`
	Domain      types.String `tfsdk:"domain"`
	Selector    types.String `tfsdk:"selector"`
	Algorithm   types.String `tfsdk:"algorithm"`
	DNSName     types.String `tfsdk:"dns_name"`
	DNSTXTValue types.String `tfsdk:"dns_txt_value"`
	Signing     types.Bool   `tfsdk:"signing"`
}

func (r *dkimKeyResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_dkim_key"
}

func (r *dkimKeyResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A DKIM signing key (RFC 6376) of a `mailstack_server`: outbound mail whose From address " +
			"is in `domain` is signed with it (relaxed/relaxed). The runtime makes the key on the host and keeps it in " +
			"the server's state directory; only the public part reaches Terraform, as `dns_txt_value`, so no DKIM " +
			"secret is ever in the state. Every key of a domain signs, which makes rotation gapless: add a key with a " +
			"new selector and publish its record, then remove the old key once the record has spread. A runtime that " +
			"lost the key from its config (config.json deleted) shows as `signing = false`: apply has it sign with the " +
			"same key again while the key file is still in the state directory, so the published record stays valid; " +
			"only when that file is gone too does plan show the key replaced, with a new record to publish. Likewise a " +
			"key file deleted or damaged while the runtime signs with the key shows as `signing = false`, and apply " +
			"writes the key the runtime holds back to the file; a runtime that restarted meanwhile signs with another " +
			"key than the published one, and plan shows the key replaced.",
		Attributes: map[string]schema.Attribute{
			// Required
			"server_id": schema.StringAttribute{
				MarkdownDescription: "The `id` of the `mailstack_server` that signs with the key.",
				Required:            true,
				PlanModifiers:       replace,
			},
			"domain": schema.StringAttribute{
				MarkdownDescription: "The signing domain (`d=`), e.g. `example.com`. Changing it replaces the key.",
				Required:            true,
				PlanModifiers:       replace,
				Validators:          []validator.String{dkimName{"domain"}},
			},
			"selector": schema.StringAttribute{
				MarkdownDescription: "The selector (`s=`), e.g. `s2026`. Changing it replaces the key.",
				Required:            true,
				PlanModifiers:       replace,
				Validators:          []validator.String{dkimName{"selector"}},
			},
			// Optional
			"algorithm": schema.StringAttribute{
				MarkdownDescription: "Key type: " + quoted(config.DKIMAlgorithms) + ". `RSA` (the default) is a 2048-bit " +
					"key every verifier knows; `Ed25519` (RFC 8463) is small and fast but not yet verified everywhere, so " +
					"pair it with an RSA key. Changing it replaces the key.",
				Optional:      true,
				Computed:      true,
				Default:       stringdefault.StaticString(config.DKIMRSA),
				PlanModifiers: replace,
				Validators:    []validator.String{stringvalidator.OneOf(config.DKIMAlgorithms...)},
			},
			// Computed
			"id": schema.StringAttribute{
				MarkdownDescription: "`<server_id>/<dns_name>`; import a key by it.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"dns_name": schema.StringAttribute{
				MarkdownDescription: "Where the public key is published: `<selector>._domainkey.<domain>`.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"dns_txt_value": schema.StringAttribute{
				MarkdownDescription: "The TXT record to publish at `dns_name`, e.g. `v=DKIM1; k=rsa; p=MIIBIjAN...`. An " +
					"RSA record is longer than 255 bytes: DNS providers that take raw strings need it split into " +
					"several quoted strings of at most 255 bytes.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"signing": schema.BoolAttribute{
				MarkdownDescription: "True while the runtime signs with the key and would after a restart too. Read " +
					"sets it false when the runtime does not answer, does not have the key, signs with another key than " +
					"the one whose record is in state, or its key file is gone or damaged; plan then shows the repair: " +
					"in place (the same key, the same record) while the runtime holds the key or its file is on the " +
					"host, else a replacement (a new key and record).",
				Computed:      true,
				PlanModifiers: []planmodifier.Bool{alwaysTrue{}},
			},
		},
	}
}

func (r *dkimKeyResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = configuredData(req.ProviderData, &resp.Diagnostics)
}

func (m *dkimKeyModel) key() config.DKIMKey {
	return config.DKIMKey{Domain: m.Domain.ValueString(), Selector: m.Selector.ValueString(), Algorithm: m.Algorithm.ValueString()}
}

func (m *dkimKeyModel) set(serverID string, o control.DKIMObject) {
	m.ID = types.StringValue(serverID + "/" + o.Name)
	m.ServerID = types.StringValue(serverID)
	m.Domain = types.StringValue(o.Domain)
	m.Selector = types.StringValue(o.Selector)
	m.Algorithm = types.StringValue(o.Algorithm)
	m.DNSName = types.StringValue(o.Name)
	m.DNSTXTValue = types.StringValue(o.TXT)
	m.Signing = types.BoolValue(true)
}

func (r *dkimKeyResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan dkimKeyModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	serverID, k := plan.ServerID.ValueString(), plan.key()
	client := r.data.client(serverID)
	if _, err := client.DKIM(ctx, k.Name()); err == nil {
		resp.Diagnostics.AddError("DKIM Key Already Exists",
			fmt.Sprintf("Server %q already has a DKIM key %s. Import it with `terraform import <address> %s/%s`.", serverID, k.Name(), serverID, k.Name()))
		return
	}
	tflog.Debug(ctx, "creating DKIM key on the host", map[string]any{"server_id": serverID, "name": k.Name(), "algorithm": k.Algorithm})
	obj, err := client.PutDKIM(ctx, k.Name(), k)
	if err != nil {
		resp.Diagnostics.AddError("Unable to Create DKIM Key", fmt.Sprintf("Server %q could not make DKIM key %s: %s", serverID, k.Name(), err))
		return
	}
	plan.set(serverID, obj)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Read asks the runtime for the key. A runtime that does not answer, or
// answers that it has no such key (its config.json was lost), keeps the
// key in state with signing = false, and leaves ModifyPlan whether its
// private key is still on the host to sign with again.
func (r *dkimKeyResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state dkimKeyModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	serverID, name, _ := splitDKIMID(state.ID.ValueString())
	obj, err := r.data.client(serverID).DKIM(ctx, name)
	var apiErr *control.Error
	switch {
	case err == nil:
		r.readSigning(ctx, &state, obj, resp)
		return
	case control.IsNotFound(err) && state.Algorithm.IsNull():
		// An import of a key the runtime does not have.
		resp.State.RemoveResource(ctx)
		return
	case !control.IsNotFound(err) && errors.As(err, &apiErr):
		resp.Diagnostics.AddError("Unable to Read DKIM Key", fmt.Sprintf("Server %q: %s", serverID, err))
		return
	}
	onHost, hostErr := r.data.server(serverID).HasDKIMKey(ctx, name)
	if hostErr != nil {
		resp.Diagnostics.AddError("Unable to Read DKIM Key", fmt.Sprintf("Server %q does not sign with DKIM key %s (%s), "+
			"and its key file could not be looked at: %s", serverID, name, err, hostErr))
		return
	}
	tflog.Debug(ctx, "the runtime does not sign with the DKIM key", map[string]any{"server_id": serverID, "name": name, "reason": err.Error(), "key_file_on_host": onHost})
	state.Signing = types.BoolValue(false)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
	resp.Diagnostics.Append(setPrivate(ctx, resp.Private, keyGoneKey, !onHost)...)
}

// readSigning records key obj, which the runtime signs with. Two things
// make it sign with the same key after a restart no longer, and plan
// shows their repair. A key file that is gone or damaged (the runtime
// loads keys at start) sets signing = false: Update has the runtime write
// the file again from the key it holds, so the record stays valid. A key
// whose record is not the one in state (its file went away or was
// damaged, and a restart made a new key) has no way back: the state keeps the published
// record, and ModifyPlan plans a replacement with a new record.
func (r *dkimKeyResource) readSigning(ctx context.Context, state *dkimKeyModel, obj control.DKIMObject, resp *resource.ReadResponse) {
	serverID, published := state.ServerID.ValueString(), state.DNSTXTValue
	gone := !published.IsNull() && obj.TXT != published.ValueString()
	state.set(serverID, obj)
	switch {
	case gone:
		state.DNSTXTValue = published
		state.Signing = types.BoolValue(false)
		resp.Diagnostics.AddWarning("DKIM Key Changed on the Host",
			fmt.Sprintf("Server %q signs with another DKIM key %s than the one whose record is in state (its key file "+
				"went away, was damaged or was replaced, and the runtime made or loaded another key when it started), so receivers cannot verify its mail. The "+
				"published key is lost: apply replaces the key, and its new dns_txt_value must be published at %s.",
				serverID, obj.Name, obj.Name))
	case obj.KeyFileProblem != "":
		state.Signing = types.BoolValue(false)
		resp.Diagnostics.AddWarning("DKIM Key File Lost",
			fmt.Sprintf("Server %q signs with DKIM key %s, but its key file no longer holds it: %s. A restart of the runtime "+
				"would sign with a new key whose record is not published. Apply writes the key the runtime holds back "+
				"to the file; the published record stays valid.", serverID, obj.Name, obj.KeyFileProblem))
	}
	tflog.Debug(ctx, "the runtime signs with the DKIM key", map[string]any{"server_id": serverID, "name": obj.Name,
		"key_file_problem": obj.KeyFileProblem, "record_changed": gone})
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
	resp.Diagnostics.Append(setPrivate(ctx, resp.Private, keyGoneKey, gone)...)
}

// ModifyPlan plans a key whose private key is gone from the host as a
// replacement: apply makes a new key, whose record must be published
// anew, and plan says so. A key still on the host is repaired in place
// (Update) and keeps its record.
func (r *dkimKeyResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.State.Raw.IsNull() || req.Plan.Raw.IsNull() {
		return
	}
	var gone bool
	if resp.Diagnostics.Append(getPrivate(ctx, req.Private, keyGoneKey, &gone)...); !gone || resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("dns_txt_value"), types.StringUnknown())...)
	resp.RequiresReplace = append(resp.RequiresReplace, path.Root("dns_txt_value"))
}

// Update repairs a key the runtime forgot: declared again, the runtime
// loads its key file, so the key and its record stay the same. Every
// attribute that can change otherwise replaces the key.
func (r *dkimKeyResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, prior dkimKeyModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	serverID, k := plan.ServerID.ValueString(), plan.key()
	tflog.Debug(ctx, "declaring the DKIM key to the runtime again, which signs with its key file on the host", map[string]any{"server_id": serverID, "name": k.Name()})
	obj, err := r.data.client(serverID).PutDKIM(ctx, k.Name(), k)
	if err != nil {
		resp.Diagnostics.AddError("Unable to Repair DKIM Key", fmt.Sprintf("Server %q could not sign with DKIM key %s again: %s", serverID, k.Name(), err))
		return
	}
	plan.set(serverID, obj)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	if obj.TXT != prior.DNSTXTValue.ValueString() {
		resp.Diagnostics.AddError("DKIM Key Changed on the Host",
			fmt.Sprintf("Server %q signs with DKIM key %s again, but its key file in %s holds another key than the one "+
				"whose record was in state (the file was replaced, or went away or was damaged and the runtime made a new key). Publish "+
				"the new dns_txt_value at %s; until then receivers cannot verify mail signed with it.",
				serverID, k.Name(), r.data.server(serverID).Join(statedir.DKIMDir), k.Name()))
	}
}

func (r *dkimKeyResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state dkimKeyModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	serverID, name, _ := splitDKIMID(state.ID.ValueString())
	tflog.Debug(ctx, "deleting DKIM key on the host", map[string]any{"server_id": serverID, "name": name})
	err := r.data.client(serverID).DeleteDKIM(ctx, name)
	var apiErr *control.Error
	switch {
	case err == nil || control.IsNotFound(err):
	case errors.As(err, &apiErr):
		resp.Diagnostics.AddError("Unable to Delete DKIM Key", fmt.Sprintf("Server %q could not delete DKIM key %s: %s", serverID, name, err))
	default:
		// The runtime does not answer: take the key out of its config and
		// off the host, so that a later start does not sign with it.
		tflog.Debug(ctx, "the runtime does not answer; removing the DKIM key from its state directory", map[string]any{"server_id": serverID, "name": name, "reason": err.Error()})
		if err := r.data.server(serverID).RemoveDKIMKey(ctx, name); err != nil {
			resp.Diagnostics.AddError("Unable to Delete DKIM Key", fmt.Sprintf("The runtime of server %q does not answer, and "+
				"DKIM key %s could not be removed from its state directory: %s", serverID, name, err))
		}
	}
}

func (r *dkimKeyResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	serverID, name, ok := splitDKIMID(req.ID)
	selector, domain, found := strings.Cut(name, "._domainkey.")
	if !ok || !found {
		resp.Diagnostics.AddError("Invalid Import ID",
			fmt.Sprintf("%q is not <server_id>/<selector>._domainkey.<domain>, e.g. \"default/s2026._domainkey.example.com\".", req.ID))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("server_id"), serverID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("selector"), selector)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("domain"), domain)...)
}

// splitDKIMID splits "<server_id>/<dns_name>".
func splitDKIMID(id string) (serverID, name string, ok bool) {
	serverID, name, ok = strings.Cut(id, "/")
	return serverID, name, ok && serverNameRE.MatchString(serverID) && name != ""
}

// dkimName validates a domain or selector as DNS labels.
type dkimName struct{ field string }

func (v dkimName) Description(context.Context) string {
	return "must be one or more DNS labels (letters, digits, '-', '_')"
}

func (v dkimName) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v dkimName) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	k := config.DKIMKey{Domain: "example.com", Selector: "s", Algorithm: config.DKIMRSA}
	if v.field == "domain" {
		k.Domain = req.ConfigValue.ValueString()
	} else {
		k.Selector = req.ConfigValue.ValueString()
	}
	if err := k.Validate(); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid DKIM "+strings.ToUpper(v.field[:1])+v.field[1:], err.Error())
	}
}
