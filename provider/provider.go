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
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
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
	// clock is the time the resources see; nil means time.Now (tests
	// move it).
	clock func() time.Time
	// getenv reads the provider's environment variables; nil means
	// os.Getenv (tests give each test's provider its own).
	getenv func(string) string

	// configMu guards config, the provider configuration this instance
	// serves once Configure has run (see claim).
	configMu sync.Mutex
	config   *tftypes.Value
}

// New returns the provider factory for version.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &mailstackProvider{version: version} }
}

type providerModel struct {
	StateDir types.String `tfsdk:"state_dir"`
	SSH      *sshModel    `tfsdk:"ssh"`
}

// sshModel is the provider's ssh block: the host it manages, when it is
// not the one terraform runs on.
type sshModel struct {
	Address              types.String `tfsdk:"address"`
	User                 types.String `tfsdk:"user"`
	PrivateKey           types.String `tfsdk:"private_key"`
	PrivateKeyPassphrase types.String `tfsdk:"private_key_passphrase"`
	Agent                types.Bool   `tfsdk:"agent"`
	HostKey              types.String `tfsdk:"host_key"`
	KnownHosts           types.String `tfsdk:"known_hosts"`
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
					"Defaults to `$XDG_STATE_HOME/mailstack`, or `~/.local/state/mailstack`; on an `ssh` host, " +
					"`~/.local/state/mailstack` of the login, and a relative path is relative to its home.",
				Optional: true,
			},
		},
		Blocks: map[string]schema.Block{
			"ssh": schema.SingleNestedBlock{
				MarkdownDescription: "The host this provider configuration manages, reached over SSH; without this " +
					"block it is the machine terraform runs on. One SSH connection serves every resource of a run. " +
					"Files go over SFTP, the runtime's control socket through the connection itself (no port is " +
					"opened for it). The host key is always verified: against `host_key`, `known_hosts`, or else " +
					"`~/.ssh/known_hosts`. Use one provider configuration per host (`alias`, or OpenTofu's " +
					"provider `for_each`).",
				Attributes: map[string]schema.Attribute{
					"address": schema.StringAttribute{
						MarkdownDescription: "`host` or `host:port` of the SSH server; the port defaults to 22. Required in an `ssh` block.",
						Optional:            true,
					},
					"user": schema.StringAttribute{
						MarkdownDescription: "Login name on the host. It needs write access to `state_dir` and the keystore paths. Required in an `ssh` block.",
						Optional:            true,
					},
					"private_key": schema.StringAttribute{
						MarkdownDescription: "Private key to log in with, PEM or OpenSSH format (e.g. `file(\"~/.ssh/id_ed25519\")`).",
						Optional:            true,
						Sensitive:           true,
					},
					"private_key_passphrase": schema.StringAttribute{
						MarkdownDescription: "Passphrase of an encrypted `private_key`.",
						Optional:            true,
						Sensitive:           true,
					},
					"agent": schema.BoolAttribute{
						MarkdownDescription: "Log in with the keys of the SSH agent at `$SSH_AUTH_SOCK` (besides `private_key`, if set).",
						Optional:            true,
					},
					"host_key": schema.StringAttribute{
						MarkdownDescription: "The host's public key, as `ssh-keyscan` or `/etc/ssh/ssh_host_ed25519_key.pub` shows it " +
							"(`ssh-ed25519 AAAA...`). The host must present it, or a key `known_hosts` lists for it.",
						Optional: true,
					},
					"known_hosts": schema.StringAttribute{
						MarkdownDescription: "A known_hosts file (where terraform runs) that lists the host's key. With neither " +
							"`host_key` nor `known_hosts`, `~/.ssh/known_hosts` is used. An unknown or changed host key is an " +
							"error that names the host and the fingerprint it presented; there is no way to skip the check.",
						Optional: true,
					},
				},
			},
		},
	}
}

func (p *mailstackProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	if !p.claim(req.Config.Raw) {
		resp.Diagnostics.AddError("Several Provider Configurations in One Provider Process",
			"This mailstack provider process was already configured by another provider configuration (another alias, "+
				"host or state_dir). Terraform starts one provider process per provider configuration; one process "+
				"is asked to serve several only when the provider runs in debug mode (TF_REATTACH_PROVIDERS) or inside "+
				"a test binary, and there every resource would act on whichever configuration came last: the wrong host "+
				"for some of them. Run the provider as Terraform installs it (tests: ExternalProviders), or use one "+
				"provider configuration.")
		return
	}
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if cfg.SSH != nil {
		p.configureSSH(cfg, resp)
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
	p.configured(host.Local{}, abs, resp)
}

// claim records config as the one provider configuration this instance
// serves and reports whether it is that one. The framework keeps one
// ResourceData per provider process, so a second, different
// configuration would silently take over the first one's resources.
func (p *mailstackProvider) claim(config tftypes.Value) bool {
	p.configMu.Lock()
	defer p.configMu.Unlock()
	if p.config == nil {
		p.config = &config
		return true
	}
	return p.config.Equal(config)
}

// configured hands resources and data sources the host and state_dir.
func (p *mailstackProvider) configured(h host.Host, stateDir string, resp *provider.ConfigureResponse) {
	exe := p.env(RuntimeExecutableEnv)
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			resp.Diagnostics.AddError("Unable to Locate the Provider Executable", err.Error())
			return
		}
	}
	data := &providerData{version: p.version, host: h, stateDir: stateDir, runtimeExe: exe, clock: p.clock, getenv: p.getenv}
	resp.ResourceData = data
	resp.DataSourceData = data
}

// env reads the environment variable k.
func (p *mailstackProvider) env(k string) string {
	if p.getenv == nil {
		return os.Getenv(k)
	}
	return p.getenv(k)
}

// configureSSH configures a host reached over SSH. It checks the keys
// but does not connect: the first resource that needs the host does.
func (p *mailstackProvider) configureSSH(cfg providerModel, resp *provider.ConfigureResponse) {
	s := cfg.SSH
	for name, v := range map[string]types.String{"address": s.Address, "user": s.User} {
		if v.IsUnknown() || v.ValueString() == "" {
			resp.Diagnostics.AddAttributeError(path.Root("ssh").AtName(name), "Missing SSH Setting",
				fmt.Sprintf("ssh.%s must be set (and known when the provider is configured).", name))
		}
	}
	if resp.Diagnostics.HasError() {
		return
	}
	c := host.SSHConfig{
		Address:    s.Address.ValueString(),
		User:       s.User.ValueString(),
		PrivateKey: []byte(s.PrivateKey.ValueString()),
		Passphrase: []byte(s.PrivateKeyPassphrase.ValueString()),
		Agent:      s.Agent.ValueBool(),
	}
	if k := s.HostKey.ValueString(); k != "" {
		c.HostKeys = []string{k}
	}
	if f := s.KnownHosts.ValueString(); f != "" {
		c.KnownHosts = []string{expandHome(f)}
	}
	h, err := host.SharedSSH(c)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("ssh"), "Invalid SSH Settings", err.Error())
		return
	}
	dir := cfg.StateDir.ValueString()
	if dir == "" {
		dir = ".local/state/mailstack" // in the login's home
	}
	p.configured(h, dir, resp)
}

// expandHome expands a leading ~/ to the home folder where terraform runs.
func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
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
