package provider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	mailruntime "github.com/mailstack/terraform-provider-mailstack/runtime"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
)

var (
	_ resource.Resource                = (*serverResource)(nil)
	_ resource.ResourceWithConfigure   = (*serverResource)(nil)
	_ resource.ResourceWithImportState = (*serverResource)(nil)
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
	DeleteMailOnDestroy types.Bool   `tfsdk:"delete_mail_on_destroy"`
	StateDir            types.String `tfsdk:"state_dir"`
	Running             types.Bool   `tfsdk:"running"`
}

// serverNameRE keeps a server's name usable as one folder name.
var serverNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Files the provider keeps in a server's state directory beside the
// runtime's own.
const (
	runtimeBinary = "bin/terraform-provider-mailstack"
	runtimeLog    = "runtime.log"
)

// startTimeout bounds how long Create waits for the control API to answer.
const startTimeout = 20 * time.Second

func (r *serverResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_server"
}

func (r *serverResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A mail runtime on the target host: the provider installs its own executable " +
			"into the server's state directory, writes the base config, starts `runtime serve` detached " +
			"(it outlives `terraform apply`) and returns when the control API answers. Destroy stops it; " +
			"mail is kept unless `delete_mail_on_destroy` is set.",
		Attributes: map[string]schema.Attribute{
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
				MarkdownDescription: "Most open connections per listener; `0` (the default) means no limit.",
				Optional:            true,
				Computed:            true,
				Default:             int64default.StaticInt64(0),
				Validators:          []validator.Int64{int64validator.AtLeast(0)},
			},
			"delete_mail_on_destroy": schema.BoolAttribute{
				MarkdownDescription: "Delete the mail store with the server. Defaults to `false`: destroy stops the runtime and keeps the mail.",
				Optional:            true,
				Computed:            true,
				Default:             booldefault.StaticBool(false),
			},
			// Computed
			"id": schema.StringAttribute{
				MarkdownDescription: "The server's name; listeners and users refer to it as `server_id`.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"state_dir": schema.StringAttribute{
				MarkdownDescription: "The server's state directory on the host.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"running": schema.BoolAttribute{
				MarkdownDescription: "Whether the runtime answers on its control socket. A stopped runtime reads as " +
					"`false`, which plan shows as a change back to `true` that apply repairs by starting it.",
				Computed:      true,
				PlanModifiers: []planmodifier.Bool{alwaysTrue{}},
			},
		},
	}
}

func (r *serverResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = configuredData(req.ProviderData, &resp.Diagnostics)
}

func (r *serverResource) dir(name string) string { return filepath.Join(r.data.stateDir, name) }

func (m *serverModel) settings(ctx context.Context) (config.Server, error) {
	s := config.Server{
		Hostname:        m.Hostname.ValueString(),
		MaxMessageBytes: m.MaxMessageBytes.ValueInt64(),
		MaxConnections:  int(m.MaxConnections.ValueInt64()),
	}
	if diags := m.Domains.ElementsAs(ctx, &s.Domains, false); diags.HasError() {
		return s, errors.New("domains must be a list of strings")
	}
	return s, s.Validate()
}

func (r *serverResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan serverModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	settings, err := plan.settings(ctx)
	if err != nil {
		resp.Diagnostics.AddError("Invalid Server Settings", err.Error())
		return
	}
	name := plan.Name.ValueString()
	dir := r.dir(name)
	if _, err := control.NewClient(dir).Status(ctx); err == nil {
		resp.Diagnostics.AddError("Server Already Running",
			fmt.Sprintf("A mail runtime already serves %s. Import it with `terraform import <address> %s`, or choose another name.", dir, name))
		return
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		resp.Diagnostics.AddError("Unable to Create State Directory", err.Error())
		return
	}
	doc := &config.Document{Server: settings, Listeners: map[string]config.Listener{}}
	if err := mailruntime.SaveConfig(dir, doc); err != nil {
		resp.Diagnostics.AddError("Unable to Write Runtime Config", err.Error())
		return
	}
	if err := r.start(ctx, dir); err != nil {
		resp.Diagnostics.AddError("Unable to Start the Mail Runtime", err.Error())
		return
	}
	plan.ID = types.StringValue(name)
	plan.StateDir = types.StringValue(dir)
	plan.Running = types.BoolValue(true)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// start installs the runtime executable into dir and starts it detached,
// returning once its control API answers.
func (r *serverResource) start(ctx context.Context, dir string) error {
	exe := filepath.Join(dir, runtimeBinary)
	if _, err := hostLocal.InstallExecutable(r.data.runtimeExe, exe); err != nil {
		return err
	}
	logPath := filepath.Join(dir, runtimeLog)
	pid, err := hostLocal.StartDetached(exe, []string{"runtime", "serve", "--state-dir", dir}, logPath)
	if err != nil {
		return err
	}
	client := control.NewClient(dir)
	deadline := time.Now().Add(startTimeout)
	for {
		if _, err := client.Status(ctx); err == nil {
			return nil
		}
		if !hostLocal.Alive(pid) {
			return fmt.Errorf("the runtime exited during start-up; the end of %s says:\n%s", logPath, tail(logPath, 10))
		}
		if time.Now().After(deadline) {
			_ = hostLocal.Stop(pid, 5*time.Second)
			return fmt.Errorf("the runtime did not answer on its control socket within %s; see %s", startTimeout, logPath)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop stops the runtime serving dir, if any.
func (r *serverResource) stop(dir string) error {
	pid, err := hostLocal.ReadPID(filepath.Join(dir, mailruntime.PIDFile))
	if err != nil || pid == 0 {
		return err
	}
	return hostLocal.Stop(pid, 30*time.Second)
}

func (r *serverResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state serverModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	name := state.ID.ValueString()
	dir := r.dir(name)
	settings, running, err := r.observe(ctx, dir)
	if errors.Is(err, os.ErrNotExist) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Unable to Read Server", err.Error())
		return
	}
	state.Name = types.StringValue(name)
	state.StateDir = types.StringValue(dir)
	state.Running = types.BoolValue(running)
	state.Hostname = types.StringValue(settings.Hostname)
	state.MaxMessageBytes = types.Int64Value(settings.MaxMessageBytes)
	state.MaxConnections = types.Int64Value(int64(settings.MaxConnections))
	if len(settings.Domains) > 0 || !state.Domains.IsNull() {
		domains, diags := types.ListValueFrom(ctx, types.StringType, settings.Domains)
		resp.Diagnostics.Append(diags...)
		state.Domains = domains
	}
	if state.DeleteMailOnDestroy.IsNull() {
		state.DeleteMailOnDestroy = types.BoolValue(false)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// observe returns the server settings in force and whether the runtime
// answers: from the runtime when it runs, else from its config file. An
// error wrapping os.ErrNotExist means there is no server in dir.
func (r *serverResource) observe(ctx context.Context, dir string) (config.Server, bool, error) {
	if s, err := control.NewClient(dir).Server(ctx); err == nil {
		return s, true, nil
	}
	doc, err := mailruntime.LoadConfig(dir)
	if err != nil {
		return config.Server{}, false, err
	}
	return doc.Server, false, nil
}

func (r *serverResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan serverModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	settings, err := plan.settings(ctx)
	if err != nil {
		resp.Diagnostics.AddError("Invalid Server Settings", err.Error())
		return
	}
	dir := r.dir(plan.Name.ValueString())
	client := control.NewClient(dir)
	if _, err := client.Status(ctx); err != nil {
		// The runtime is down: write the settings where it reads them at
		// start, then start it.
		doc, err := mailruntime.LoadConfig(dir)
		if err == nil {
			doc.Server = settings
			err = mailruntime.SaveConfig(dir, doc)
		}
		if err == nil {
			err = r.start(ctx, dir)
		}
		if err != nil {
			resp.Diagnostics.AddError("Unable to Start the Mail Runtime", err.Error())
			return
		}
	} else if _, err := client.SetServer(ctx, settings); err != nil {
		resp.Diagnostics.AddError("Unable to Update Server Settings", err.Error())
		return
	}
	plan.StateDir = types.StringValue(dir)
	plan.Running = types.BoolValue(true)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *serverResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state serverModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	dir := r.dir(state.ID.ValueString())
	if err := r.stop(dir); err != nil {
		resp.Diagnostics.AddError("Unable to Stop the Mail Runtime", err.Error())
		return
	}
	if state.DeleteMailOnDestroy.ValueBool() {
		if err := os.RemoveAll(dir); err != nil {
			resp.Diagnostics.AddError("Unable to Delete Server State", err.Error())
		}
		return
	}
	for _, f := range []string{mailruntime.ConfigFile, runtimeBinary, mailruntime.LockFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			resp.Diagnostics.AddError("Unable to Delete Server State", err.Error())
			return
		}
	}
}

func (r *serverResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if !serverNameRE.MatchString(req.ID) {
		resp.Diagnostics.AddError("Invalid Import ID", fmt.Sprintf("%q is not a server name; import a server by its name, e.g. \"default\".", req.ID))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
