// Package provider is the mailstack Terraform provider: one file per
// resource and data source, built on terraform-plugin-framework. Resources
// reach their host only through internal/host (the Host in providerData):
// they write keystores through internal/keystore on a host.File, change a
// stopped runtime's state directory through runtime/statedir and a running
// runtime through its control API (runtime/control); Read always asks the
// keystore file or the runtime what is really there, so drift shows in
// plan.
package provider

import (
	"context"
	"os"
	"path/filepath"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/mailstack/terraform-provider-mailstack/internal/host"
)

// Address is the provider's registry address.
const Address = "registry.terraform.io/mailstack/mailstack"

// RuntimeExecutableEnv names an environment variable that overrides the
// executable installed as the runtime (default: this provider's own). Tests
// set it because their provider runs inside the test binary.
const RuntimeExecutableEnv = "MAILSTACK_RUNTIME_EXECUTABLE"

var _ provider.Provider = (*mailstackProvider)(nil)

type mailstackProvider struct {
	version string
}

// New returns the provider factory for version.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &mailstackProvider{version: version} }
}

type providerModel struct {
	StateDir types.String `tfsdk:"state_dir"`
}

func (p *mailstackProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "mailstack"
	resp.Version = p.version
}

func (p *mailstackProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Provisions TLS mail stacks: Java keystores (JKS and PKCS#12), per-protocol " +
			"listeners with implicit TLS or STARTTLS, and a bundled mail runtime that serves them.",
		Attributes: map[string]schema.Attribute{
			// Optional
			"state_dir": schema.StringAttribute{
				MarkdownDescription: "Folder on the target host under which each `mailstack_server` keeps its " +
					"state (`<state_dir>/<name>`: config, control socket, mail, runtime executable). " +
					"Defaults to `$XDG_STATE_HOME/mailstack`, or `~/.local/state/mailstack`.",
				Optional: true,
			},
		},
	}
}

func (p *mailstackProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	dir := cfg.StateDir.ValueString()
	if dir == "" {
		var err error
		if dir, err = defaultStateDir(); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("state_dir"), "Unable to Find a State Directory",
				"state_dir is not set and no default could be derived: "+err.Error())
			return
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("state_dir"), "Invalid State Directory", err.Error())
		return
	}
	exe := os.Getenv(RuntimeExecutableEnv)
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			resp.Diagnostics.AddError("Unable to Locate the Provider Executable", err.Error())
			return
		}
	}
	data := &providerData{version: p.version, host: host.Local{}, stateDir: abs, runtimeExe: exe}
	resp.ResourceData = data
	resp.DataSourceData = data
}

func defaultStateDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "mailstack"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".local", "state", "mailstack"), nil
}

func (p *mailstackProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		NewKeystoreResource,
		NewCertificateImportResource,
		NewServerResource,
		NewListenerResource,
		NewUserResource,
		NewDKIMKeyResource,
	}
}

func (p *mailstackProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		NewKeystoreDataSource,
		NewTLSProbeDataSource,
	}
}
