package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
)

var (
	_ resource.Resource                     = (*userResource)(nil)
	_ resource.ResourceWithConfigure        = (*userResource)(nil)
	_ resource.ResourceWithImportState      = (*userResource)(nil)
	_ resource.ResourceWithConfigValidators = (*userResource)(nil)
)

// NewUserResource returns the mailstack_user resource.
func NewUserResource() resource.Resource { return &userResource{} }

type userResource struct{ data *providerData }

type userModel struct {
	ID                types.String `tfsdk:"id"`
	ServerID          types.String `tfsdk:"server_id"`
	Address           types.String `tfsdk:"address"`
	Password          types.String `tfsdk:"password"`
	PasswordWO        types.String `tfsdk:"password_wo"`
	PasswordWOVersion types.Int64  `tfsdk:"password_wo_version"`
	QuotaBytes        types.Int64  `tfsdk:"quota_bytes"`
}

func (r *userResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_user"
}

func (r *userResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A mailbox user of a `mailstack_server`: SMTP submission, IMAP and POP3 log in as " +
			"`address`, and SMTP delivers mail for it. The runtime stores only an argon2id hash of the password. " +
			"Set either `password` (kept in Terraform state, marked sensitive; a password changed at the runtime " +
			"shows as drift) or the write-only `password_wo` with `password_wo_version` (Terraform 1.11 and later: " +
			"the password never enters the state or the plan; bump the version to set a new one).",
		Attributes: map[string]schema.Attribute{
			// Required
			"server_id": schema.StringAttribute{
				MarkdownDescription: "The `id` of the `mailstack_server` the user belongs to.",
				Required:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"address": schema.StringAttribute{
				MarkdownDescription: "The user's mail address and login name, `local@domain`. The domain is compared " +
					"case-insensitively; the local part is kept as written. Changing it replaces the user.",
				Required:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:    []validator.String{mailAddress{}},
			},
			// Optional
			"password": schema.StringAttribute{
				MarkdownDescription: "The user's password. Stored in Terraform state (sensitive). Exactly one of " +
					"`password` and `password_wo` is required.",
				Optional:   true,
				Sensitive:  true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"password_wo": schema.StringAttribute{
				MarkdownDescription: "The user's password, write-only: sent to the runtime on create and whenever " +
					"`password_wo_version` changes, never stored in state. Needs Terraform 1.11 or later.",
				Optional:   true,
				Sensitive:  true,
				WriteOnly:  true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"password_wo_version": schema.Int64Attribute{
				MarkdownDescription: "Change it to set `password_wo` again (Terraform cannot see a write-only value change).",
				Optional:            true,
			},
			"quota_bytes": schema.Int64Attribute{
				MarkdownDescription: "Most bytes the user's mailboxes may hold; delivery beyond it is refused " +
					"temporarily. `0` (the default) means no limit.",
				Optional:   true,
				Computed:   true,
				Default:    int64default.StaticInt64(0),
				Validators: []validator.Int64{int64validator.AtLeast(0)},
			},
			// Computed
			"id": schema.StringAttribute{
				MarkdownDescription: "`<server_id>/<address>`; import a user by it.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
		},
	}
}

func (r *userResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{
		resourcevalidator.ExactlyOneOf(path.MatchRoot("password"), path.MatchRoot("password_wo")),
		resourcevalidator.Conflicting(path.MatchRoot("password"), path.MatchRoot("password_wo_version")),
	}
}

func (r *userResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = configuredData(req.ProviderData, &resp.Diagnostics)
}

// password returns the password to send: password from the plan, or the
// write-only password_wo from the configuration (never in plan or state).
func password(ctx context.Context, plan *userModel, cfg tfsdk.Config) (string, error) {
	if !plan.Password.IsNull() {
		return plan.Password.ValueString(), nil
	}
	var wo types.String
	if diags := cfg.GetAttribute(ctx, path.Root("password_wo"), &wo); diags.HasError() {
		return "", errors.New("reading password_wo from the configuration failed. This is always a bug in the provider")
	}
	if wo.IsNull() || wo.ValueString() == "" {
		return "", errors.New("one of password and password_wo must be set")
	}
	return wo.ValueString(), nil
}

func (r *userResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan userModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	serverID, address := plan.ServerID.ValueString(), plan.Address.ValueString()
	tflog.Debug(ctx, "creating the user in the runtime over its control socket (the runtime stores only a hash)", map[string]any{"server_id": serverID, "address": address})
	client := r.data.client(serverID)
	if _, err := client.User(ctx, address); err == nil {
		resp.Diagnostics.AddError("User Already Exists",
			fmt.Sprintf("Server %q already has a user %s. Import it with `terraform import <address> %s/%s`.", serverID, address, serverID, address))
		return
	} else if !control.IsNotFound(err) {
		resp.Diagnostics.AddError("Unable to Create User", fmt.Sprintf("Server %q: %s", serverID, err))
		return
	}
	if !r.put(ctx, &plan, req.Config, serverID, address, "Unable to Create User", &resp.Diagnostics) {
		return
	}
	plan.ID = types.StringValue(serverID + "/" + address)
	plan.PasswordWO = types.StringNull()
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// put sends the user to the runtime, which stores users whole: the
// password goes with every change.
func (r *userResource) put(ctx context.Context, plan *userModel, cfg tfsdk.Config, serverID, address, summary string, diags *diag.Diagnostics) bool {
	pw, err := password(ctx, plan, cfg)
	if err != nil {
		diags.AddAttributeError(path.Root("password"), "Missing Password", err.Error())
		return false
	}
	if _, err := r.data.client(serverID).PutUser(ctx, address, control.UserRequest{Password: pw, QuotaBytes: plan.QuotaBytes.ValueInt64()}); err != nil {
		diags.AddError(summary, fmt.Sprintf("Server %q refused user %s: %s", serverID, address, err))
		return false
	}
	return true
}

func (r *userResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state userModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	serverID, address, ok := splitUserID(state.ID.ValueString())
	if !ok {
		resp.Diagnostics.AddError("Invalid User ID", fmt.Sprintf("%q is not <server_id>/<address>. This is always a bug in the provider.", state.ID.ValueString()))
		return
	}
	tflog.Debug(ctx, "reading the user from the runtime", map[string]any{"id": state.ID.ValueString()})
	client := r.data.client(serverID)
	u, err := client.User(ctx, address)
	switch {
	case control.IsNotFound(err):
		resp.State.RemoveResource(ctx) // deleted at the runtime: plan re-creates it
		return
	case err != nil:
		// The runtime does not answer; the server shows that as drift,
		// and the user is kept in the durable store meanwhile.
		return
	}
	state.ServerID = types.StringValue(serverID)
	if !sameAddress(state.Address.ValueString(), u.Address) {
		state.Address = types.StringValue(u.Address)
	}
	state.QuotaBytes = types.Int64Value(u.QuotaBytes)
	if pw := state.Password; !pw.IsNull() && pw.ValueString() != "" {
		// A password changed at the runtime: plan sets it back. Runtimes
		// without the check (501) are given the benefit of the doubt.
		if match, err := client.CheckPassword(ctx, address, pw.ValueString()); err == nil && !match {
			state.Password = types.StringNull()
		}
	}
	state.PasswordWO = types.StringNull()
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *userResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan userModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	serverID, address, _ := splitUserID(plan.ID.ValueString())
	tflog.Debug(ctx, "changing the user's password or quota in the runtime", map[string]any{"id": plan.ID.ValueString()})
	if !r.put(ctx, &plan, req.Config, serverID, address, "Unable to Update User", &resp.Diagnostics) {
		return
	}
	plan.PasswordWO = types.StringNull()
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *userResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state userModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	serverID, address, _ := splitUserID(state.ID.ValueString())
	tflog.Debug(ctx, "deleting the user from the runtime; their mail stays on disk", map[string]any{"id": state.ID.ValueString()})
	err := r.data.client(serverID).DeleteUser(ctx, address)
	if r.data.goneWithServer(ctx, serverID, err) {
		return
	}
	resp.Diagnostics.AddError("Unable to Delete User", fmt.Sprintf("Server %q could not delete user %s: %s", serverID, address, err))
}

func (r *userResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	id, ok := r.data.importID(req.ID, &resp.Diagnostics)
	if !ok {
		return
	}
	serverID, address, ok := splitUserID(id)
	if !ok {
		resp.Diagnostics.AddError("Invalid Import ID",
			fmt.Sprintf("%q is not <server_id>/<address>, e.g. \"default/alice@example.com\".", id))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), id)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("server_id"), serverID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("address"), address)...)
}

// splitUserID splits "<server_id>/<address>".
func splitUserID(id string) (serverID, address string, ok bool) {
	serverID, address, ok = strings.Cut(id, "/")
	return serverID, address, ok && serverNameRE.MatchString(serverID) && strings.Contains(address, "@")
}

// sameAddress reports whether two addresses name the same user (the
// runtime lower-cases the domain).
func sameAddress(a, b string) bool {
	ca, errA := store.CanonicalAddress(a)
	cb, errB := store.CanonicalAddress(b)
	return errA == nil && errB == nil && ca == cb
}

// mailAddress validates an address as the runtime's store will.
type mailAddress struct{}

var _ validator.String = mailAddress{}

func (mailAddress) Description(context.Context) string {
	return "must be local@domain, with a local part usable as a folder name"
}

func (v mailAddress) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (mailAddress) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := store.CanonicalAddress(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid Mail Address", err.Error())
	}
}
