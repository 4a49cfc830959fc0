package provider

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
)

var (
	_ resource.Resource                = (*serverResource)(nil)
	_ resource.ResourceWithConfigure   = (*serverResource)(nil)
	_ resource.ResourceWithImportState = (*serverResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*serverResource)(nil)
)

// NewServerResource returns the mailstack_server resource.
func NewServerResource() resource.Resource { return &serverResource{} }

type serverResource struct{ data *providerData }

type serverModel struct {
	ID                  types.String `tfsdk:"id"`
	Name                types.String `tfsdk:"name"`
	Hostname            types.String `tfsdk:"hostname"`
	Domains             types.List   `tfsdk:"domains"`
	MaxMessageBytes     types.Int64  `tfsdk:"max_message_bytes"`
	MaxConnections      types.Int64  `tfsdk:"max_connections"`
	MetricsAddress      types.String `tfsdk:"metrics_address"`
	DeleteMailOnDestroy types.Bool   `tfsdk:"delete_mail_on_destroy"`
	Supervisor          types.String `tfsdk:"supervisor"`
	StateDir            types.String `tfsdk:"state_dir"`
	Running             types.Bool   `tfsdk:"running"`
	Version             types.String `tfsdk:"version"`
	ExecutableSHA256    types.String `tfsdk:"executable_sha256"`
	RuntimeExecutable   types.String `tfsdk:"runtime_executable"`
	serverOutboundModel              // resource_server_outbound.go
	serverStoreModel                 // resource_server_store.go
}

// Supervisors a server can run under.
const (
	supervisorAuto    = "auto"
	supervisorBuiltin = "builtin"
	supervisorSystemd = "systemd"
)

var supervisors = []string{supervisorAuto, supervisorBuiltin, supervisorSystemd}

// serverNameRE keeps a server's name usable as one folder name.
var serverNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Files the provider keeps in a server's state directory beside the
// runtime's own.
const (
	runtimeBinary = "bin/terraform-provider-mailstack"
	runtimeLog    = "runtime.log"
)

// Timeouts of starting and stopping a runtime.
const (
	// startTimeout bounds how long a start waits for the control API.
	startTimeout = 20 * time.Second
	// stopTimeout bounds a supervisor's drain: serve's own drain deadline
	// (30s) plus the supervisor's margin.
	stopTimeout = 50 * time.Second
)

func (r *serverResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_server"
}

func (r *serverResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A mail runtime on the target host. Create copies the provider's own executable into " +
			"the server's state directory (the runtime does not depend on `.terraform`), writes the base config, " +
			"starts the runtime under a supervisor that restarts it if it dies (`runtime supervise`, or a systemd " +
			"unit where systemd is PID 1) and returns when the control API answers. A newer provider build shows in " +
			"plan as a change of `executable_sha256` and updates in place: the runtime drains and restarts on the new " +
			"executable; accepted mail is on disk and survives. Destroy drains and stops it; mail is kept unless " +
			"`delete_mail_on_destroy` is set.",
		Blocks: outboundBlocks(),
		Attributes: withStoreAttributes(withOutboundAttributes(map[string]schema.Attribute{
			// Required
			"hostname": schema.StringAttribute{
				MarkdownDescription: "Name the server greets with and uses in EHLO replies, e.g. `mail.example.com`.",
				Required:            true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			// Optional
			"name": schema.StringAttribute{
				MarkdownDescription: "Name of the server on its host; its state lives in `<state_dir>/<name>`. " +
					"Several servers can run on one host under different names. Changing it replaces the server.",
				Optional:      true,
				Computed:      true,
				Default:       stringdefault.StaticString("default"),
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators: []validator.String{stringvalidator.RegexMatches(serverNameRE,
					"must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")},
			},
			"domains": schema.ListAttribute{
				MarkdownDescription: "Local domains the server accepts mail for. Mail for any other domain is refused (never an open relay).",
				Optional:            true,
				ElementType:         types.StringType,
			},
			"max_message_bytes": schema.Int64Attribute{
				MarkdownDescription: fmt.Sprintf("Largest message accepted, in bytes. Defaults to %d (25 MiB).", config.DefaultMaxMessageBytes),
				Optional:            true,
				Computed:            true,
				Default:             int64default.StaticInt64(config.DefaultMaxMessageBytes),
				Validators:          []validator.Int64{int64validator.AtLeast(1)},
			},
			"max_connections": schema.Int64Attribute{
				MarkdownDescription: fmt.Sprintf("Most open connections per listener, for listeners that set no "+
					"`max_connections` of their own; `0` (the default) means %d. A client over the limit gets the "+
					"protocol's refusal (SMTP `421`, IMAP `* BYE`, POP3 `-ERR`) and is disconnected. Each client address "+
					"may also hold at most %d connections per listener (loopback clients excepted) unless the listener "+
					"sets `max_connections_per_ip`. The listener's attributes explain the defaults.",
					config.DefaultMaxConnections, config.DefaultMaxConnectionsPerIP),
				Optional:   true,
				Computed:   true,
				Default:    int64default.StaticInt64(0),
				Validators: []validator.Int64{int64validator.AtLeast(0)},
			},
			"metrics_address": schema.StringAttribute{
				MarkdownDescription: "Address (`ip:port`, or `:port` for every address) where the runtime serves Prometheus " +
					"metrics at `/metrics` over plain HTTP, e.g. `127.0.0.1:9154`: connections, refusals and TLS handshakes per " +
					"listener, deliveries, failed logins, store fsync latency and certificate expiry. Unset (the default): no " +
					"metrics are served. Keep it on loopback or a management network.",
				Optional:   true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"delete_mail_on_destroy": schema.BoolAttribute{
				MarkdownDescription: "Delete the mail store with the server. Defaults to `false`: destroy stops the runtime and keeps the mail. " +
					"It applies to the embedded store in the state directory; a PostgreSQL database (`store = \"postgres\"`) may " +
					"serve other servers and is never emptied by a destroy.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
			},
			"supervisor": schema.StringAttribute{
				MarkdownDescription: "What keeps the runtime running: " + quoted(supervisors) + ". `builtin` is " +
					"`runtime supervise`, started detached: it restarts a runtime that exits with exponential backoff " +
					"(250ms doubling to 30s) and reports a crash loop in the runtime's status. `systemd` writes and " +
					"enables a unit (`mailstack-<name>.service`; a user unit when the provider does not run as root) " +
					"and needs systemd as PID 1. `auto` (the default) picks `systemd` where it is PID 1, else `builtin`. " +
					"Changing it moves the running server from one to the other in place.",
				Optional:   true,
				Computed:   true,
				Default:    stringdefault.StaticString(supervisorAuto),
				Validators: []validator.String{stringvalidator.OneOf(supervisors...)},
			},
			"runtime_executable": schema.StringAttribute{
				MarkdownDescription: "A build of this provider for another platform (where terraform runs), installed as the " +
					"runtime on a host whose platform it fits, e.g. `dist/linux_arm64/terraform-provider-mailstack`. The " +
					"host's platform is detected with `uname`; the provider's own executable serves a host of its own " +
					"platform. When neither fits, plan fails before anything changes on the host.",
				Optional: true,
			},
			// Computed
			"id": schema.StringAttribute{
				MarkdownDescription: "The server's name; listeners and users refer to it as `server_id`. Import a server by it.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"state_dir": schema.StringAttribute{
				MarkdownDescription: "The server's state directory on the host.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"running": schema.BoolAttribute{
				MarkdownDescription: "Whether the runtime answers on its control socket, its supervisor runs, and its " +
					"state directory is as a start needs it: `config.json` there, owned by the provider's user on the host " +
					"with mode `0700`. A stopped runtime, a dead supervisor, a deleted `config.json` or a state directory " +
					"whose owner or mode changed reads as `false`, which plan shows as a change back to `true` that apply " +
					"repairs: it writes the config again (the listeners then put themselves back), gives the directory " +
					"back to the provider's user with mode `0700`, and starts what is stopped.",
				Computed:      true,
				PlanModifiers: []planmodifier.Bool{alwaysTrue{}},
			},
			"version": schema.StringAttribute{
				MarkdownDescription: "Version of the running runtime, as its status reports it.",
				Computed:            true,
			},
			"executable_sha256": schema.StringAttribute{
				MarkdownDescription: "SHA-256 (hex) of the executable the runtime runs. Plan compares it with this " +
					"provider's own executable, so a newer provider build shows as a change that apply makes in place by " +
					"restarting the runtime on the new executable. The executable file in the state directory counts too: " +
					"deleted (`\"\"`) or replaced by another file, it shows as a change that apply repairs by installing " +
					"it again, without a restart when the runtime already runs the right one.",
				Computed: true,
			},
		})),
	}
}

func (r *serverResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = configuredData(req.ProviderData, &resp.Diagnostics)
}

func (m *serverModel) settings(ctx context.Context, cfg *tfsdk.Config) (config.Server, error) {
	s := config.Server{
		Hostname:        m.Hostname.ValueString(),
		MaxMessageBytes: m.MaxMessageBytes.ValueInt64(),
		MaxConnections:  int(m.MaxConnections.ValueInt64()),
		MetricsAddress:  m.MetricsAddress.ValueString(),
	}
	if diags := m.Domains.ElementsAs(ctx, &s.Domains, false); diags.HasError() {
		return s, errors.New("domains must be a list of strings")
	}
	if diags := m.outboundSettings(ctx, cfg, &s); diags.HasError() {
		return s, fmt.Errorf("reading the outbound settings: %s", diags[0].Detail())
	}
	if diags := m.storeSettings(ctx, cfg, &s); diags.HasError() {
		return s, fmt.Errorf("reading the store settings: %s", diags[0].Detail())
	}
	return s, s.Validate()
}

// ModifyPlan plans the executable this provider would install, so that a
// newer build shows as an in-place update, and refuses a systemd
// supervisor on a host without systemd before anything is applied.
func (r *serverResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.data == nil {
		return
	}
	var plan serverModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !plan.Supervisor.IsUnknown() {
		if _, err := resolveSupervisor(ctx, r.data, plan.Supervisor.ValueString()); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("supervisor"), "Supervisor Not Available", err.Error())
			return
		}
	}
	exe, err := r.data.runtimeFor(ctx, plan.RuntimeExecutable.ValueString())
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("runtime_executable"), "No Runtime Executable for the Host", err.Error())
		return
	}
	want, err := host.FileSHA256(exe)
	if err != nil {
		resp.Diagnostics.AddError("Unable to Read the Runtime Executable", err.Error())
		return
	}
	plan.ExecutableSHA256 = types.StringValue(want)
	plan.Version = types.StringUnknown()
	if !req.State.Raw.IsNull() {
		var state serverModel
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
		if state.ExecutableSHA256.ValueString() == want {
			plan.Version = state.Version
		}
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// desired returns the runtime settings and the supervisor plan asks for.
func (m *serverModel) desired(ctx context.Context, d *providerData, cfg *tfsdk.Config, diags *diag.Diagnostics) (config.Server, string, bool) {
	settings, err := m.settings(ctx, cfg)
	if err != nil {
		diags.AddError("Invalid Server Settings", err.Error())
		return settings, "", false
	}
	mode, err := resolveSupervisor(ctx, d, m.Supervisor.ValueString())
	if err != nil {
		diags.AddAttributeError(path.Root("supervisor"), "Supervisor Not Available", err.Error())
		return settings, "", false
	}
	return settings, mode, true
}

func (r *serverResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan serverModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	settings, mode, ok := plan.desired(ctx, r.data, &req.Config, &resp.Diagnostics)
	if !ok {
		return
	}
	exe, err := r.data.runtimeFor(ctx, plan.RuntimeExecutable.ValueString())
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("runtime_executable"), "No Runtime Executable for the Host", err.Error())
		return
	}
	name := plan.Name.ValueString()
	dir := r.data.server(name)
	tflog.Debug(ctx, "installing the runtime executable, writing config.json and starting the supervised runtime", map[string]any{"id": name, "supervisor": mode})
	if _, err := dir.Client().Status(ctx); err == nil {
		resp.Diagnostics.AddError("Server Already Running",
			fmt.Sprintf("A mail runtime already serves %s. Import it with `terraform import <address> %s`, or choose another name.", dir, name))
		return
	}
	doc := &config.Document{Server: settings, Listeners: map[string]config.Listener{}}
	if err := dir.Create(ctx, doc); err != nil {
		resp.Diagnostics.AddError("Unable to Write Runtime Config", err.Error())
		return
	}
	rs := r.runtimeOf(name, exe)
	st, err := rs.start(ctx, mode)
	if err != nil {
		resp.Diagnostics.AddError("Unable to Start the Mail Runtime", err.Error())
		return
	}
	plan.ID = types.StringValue(name)
	plan.StateDir = types.StringValue(dir.Path)
	plan.setStatus(st)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// setStatus records what a running runtime reports.
func (m *serverModel) setStatus(st control.Status) {
	m.Running = types.BoolValue(true)
	m.Version = types.StringValue(st.Version)
	m.ExecutableSHA256 = types.StringValue(st.ExecutableSHA256)
	m.setQueue(&st.Queue)
}

func (r *serverResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state serverModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	name := state.ID.ValueString()
	tflog.Debug(ctx, "observing the runtime: its state directory, supervisor and control socket", map[string]any{"id": name})
	rs := r.runtimeOf(name, "")
	obs, err := rs.observe(ctx)
	if errors.Is(err, fs.ErrNotExist) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Unable to Read Server", err.Error())
		return
	}
	for _, w := range obs.warnings {
		resp.Diagnostics.AddWarning("Mail Runtime Not Running", w)
	}
	state.Name = types.StringValue(name)
	state.StateDir = types.StringValue(rs.dir.Path)
	state.Running = types.BoolValue(obs.running)
	if obs.status != nil {
		state.Version = types.StringValue(obs.status.Version)
	}
	state.ExecutableSHA256 = types.StringValue(obs.executableSHA256)
	if obs.status != nil {
		state.setQueue(&obs.status.Queue)
	} else {
		state.setQueue(nil)
	}
	if state.DeleteMailOnDestroy.IsNull() {
		state.DeleteMailOnDestroy = types.BoolValue(false)
	}
	if state.Supervisor.IsNull() {
		state.Supervisor = types.StringValue(supervisorAuto) // imported
	}
	if !obs.configMissing {
		resp.Diagnostics.Append(state.readSettings(ctx, obs.settings)...)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// readSettings records the server settings the host has in force.
func (state *serverModel) readSettings(ctx context.Context, settings config.Server) diag.Diagnostics {
	var diags diag.Diagnostics
	state.Hostname = types.StringValue(settings.Hostname)
	state.MaxMessageBytes = types.Int64Value(settings.MaxMessageBytes)
	state.MaxConnections = types.Int64Value(int64(settings.MaxConnections))
	state.MetricsAddress = types.StringNull()
	if settings.MetricsAddress != "" {
		state.MetricsAddress = types.StringValue(settings.MetricsAddress)
	}
	if len(settings.Domains) > 0 || !state.Domains.IsNull() {
		domains, d := types.ListValueFrom(ctx, types.StringType, settings.Domains)
		diags.Append(d...)
		state.Domains = domains
	}
	diags.Append(state.readOutbound(ctx, settings)...)
	state.readStore(settings)
	return diags
}

func (r *serverResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state serverModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	settings, mode, ok := plan.desired(ctx, r.data, &req.Config, &resp.Diagnostics)
	if !ok {
		return
	}
	name := plan.Name.ValueString()
	exe, err := r.data.runtimeFor(ctx, plan.RuntimeExecutable.ValueString())
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("runtime_executable"), "No Runtime Executable for the Host", err.Error())
		return
	}
	tflog.Debug(ctx, "updating the server settings in the runtime; a new executable or supervisor restarts it", map[string]any{"id": name, "supervisor": mode})
	rs := r.runtimeOf(name, exe)
	client := rs.dir.Client()
	current := rs.currentSupervisor(ctx)
	// A restart is needed when the runtime runs another executable than
	// planned; an executable file replaced or deleted under a runtime that
	// runs the right one is just installed again.
	upgrade := false

	// Settings first: live if the runtime answers (validated and
	// persisted by it), else in config.json where a start reads them (a
	// new one if it was deleted: the listeners put themselves back).
	if st, err := client.Status(ctx); err == nil {
		upgrade = st.ExecutableSHA256 != plan.ExecutableSHA256.ValueString()
		if _, err := client.SetServer(ctx, settings); err != nil {
			resp.Diagnostics.AddError("Unable to Update Server Settings", err.Error())
			return
		}
	} else {
		err := rs.dir.EditConfig(ctx, func(doc *config.Document) error {
			doc.Server = settings
			return nil
		})
		if errors.Is(err, fs.ErrNotExist) {
			tflog.Debug(ctx, "writing the missing config.json again", map[string]any{"id": name})
			err = rs.dir.Create(ctx, &config.Document{Server: settings, Listeners: map[string]config.Listener{}})
		}
		if err != nil {
			resp.Diagnostics.AddError("Unable to Update Server Settings", err.Error())
			return
		}
	}

	var st control.Status
	switch {
	case upgrade || current != mode:
		// Install first, while the old runtime still serves, then drain
		// it and start the new one: the downtime is the drain plus a
		// start, and mail accepted before the drain is on disk.
		if _, err := rs.install(ctx); err != nil {
			resp.Diagnostics.AddError("Unable to Install the Runtime Executable", err.Error())
			return
		}
		if err := rs.stop(ctx, current); err != nil {
			resp.Diagnostics.AddError("Unable to Stop the Mail Runtime", err.Error())
			return
		}
		st, err = rs.start(ctx, mode)
	default:
		// Starts it if it is down, or just reports it.
		st, err = rs.start(ctx, mode)
	}
	if err != nil {
		resp.Diagnostics.AddError("Unable to Start the Mail Runtime", err.Error())
		return
	}
	plan.StateDir = types.StringValue(rs.dir.Path)
	plan.setStatus(st)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *serverResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state serverModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	tflog.Debug(ctx, "stopping the runtime and its supervisor and removing the state directory", map[string]any{"id": state.ID.ValueString(), "delete_mail": state.DeleteMailOnDestroy.ValueBool()})
	rs := r.runtimeOf(state.ID.ValueString(), "")
	if err := rs.stop(ctx, rs.currentSupervisor(ctx)); err != nil {
		resp.Diagnostics.AddError("Unable to Stop the Mail Runtime", err.Error())
		return
	}
	if err := rs.dir.Remove(ctx, state.DeleteMailOnDestroy.ValueBool()); err != nil {
		resp.Diagnostics.AddError("Unable to Delete Server State", err.Error())
	}
}

func (r *serverResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	id, ok := r.data.importID(req.ID, &resp.Diagnostics)
	if !ok {
		return
	}
	if !serverNameRE.MatchString(id) {
		resp.Diagnostics.AddError("Invalid Import ID", fmt.Sprintf("%q is not a server name; import a server by its name, e.g. \"default\".", id))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), id)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), id)...)
}
