package provider

import (
	"context"
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
)

var (
	_ resource.Resource                = (*dkimKeyResource)(nil)
	_ resource.ResourceWithConfigure   = (*dkimKeyResource)(nil)
	_ resource.ResourceWithImportState = (*dkimKeyResource)(nil)
)

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
			"new selector and publish its record, then remove the old key once the record has spread.",
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

func (r *dkimKeyResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state dkimKeyModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	serverID, name, _ := splitDKIMID(state.ID.ValueString())
	obj, err := r.data.client(serverID).DKIM(ctx, name)
	if control.IsNotFound(err) {
		tflog.Debug(ctx, "DKIM key is gone from the host", map[string]any{"server_id": serverID, "name": name})
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Unable to Read DKIM Key", fmt.Sprintf("Server %q: %s", serverID, err))
		return
	}
	state.set(serverID, obj)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Update never runs: every attribute that can change replaces the key.
func (r *dkimKeyResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	resp.Diagnostics.AddError("Unexpected DKIM Key Update", "Every attribute of mailstack_dkim_key replaces the key. This is always a bug in the provider.")
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
	if r.data.goneWithServer(ctx, serverID, err) {
		return
	}
	resp.Diagnostics.AddError("Unable to Delete DKIM Key", fmt.Sprintf("Server %q could not delete DKIM key %s: %s", serverID, name, err))
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
