package provider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
)

var (
	_ resource.Resource                   = (*listenerResource)(nil)
	_ resource.ResourceWithConfigure      = (*listenerResource)(nil)
	_ resource.ResourceWithImportState    = (*listenerResource)(nil)
	_ resource.ResourceWithValidateConfig = (*listenerResource)(nil)
)

// NewListenerResource returns the mailstack_listener resource.
func NewListenerResource() resource.Resource { return &listenerResource{} }

type listenerResource struct{ data *providerData }

type listenerModel struct {
	ID                types.String `tfsdk:"id"`
	ServerID          types.String `tfsdk:"server_id"`
	Protocol          types.String `tfsdk:"protocol"`
	Address           types.String `tfsdk:"address"`
	Port              types.Int64  `tfsdk:"port"`
	TLS               *tlsModel    `tfsdk:"tls"`
	Bound             types.Bool   `tfsdk:"bound"`
	ServedFingerprint types.String `tfsdk:"served_fingerprint_sha256"`
}

type tlsModel struct {
	Mode             types.String `tfsdk:"mode"`
	KeystorePath     types.String `tfsdk:"keystore_path"`
	KeystorePassword types.String `tfsdk:"keystore_password"`
	KeyPassword      types.String `tfsdk:"key_password"`
	Alias            types.String `tfsdk:"alias"`
	MinVersion       types.String `tfsdk:"min_version"`
	CipherSuites     types.List   `tfsdk:"cipher_suites"`
	ClientAuth       types.String `tfsdk:"client_auth"`
	Expected         types.String `tfsdk:"expected_fingerprint_sha256"`
}

// quoted renders an enumeration for descriptions: `a`, `b` or `c`.
func quoted(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = "`" + v + "`"
	}
	if len(q) < 2 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

func (r *listenerResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_listener"
}

func (r *listenerResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "One port of a `mailstack_server` serving one protocol with implicit TLS " +
			"(Apache James's `socketTLS`), STARTTLS, or no TLS. Apply returns when the port is bound and " +
			"serves the keystore's certificate. Every attribute but `server_id` changes in place: sockets " +
			"that stay are not reopened and sessions in flight finish.",
		Attributes: map[string]schema.Attribute{
			// Required
			"server_id": schema.StringAttribute{
				MarkdownDescription: "The `id` of the `mailstack_server` this listener belongs to.",
				Required:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"protocol": schema.StringAttribute{
				MarkdownDescription: "Protocol served: " + quoted(config.Protocols) + ".",
				Required:            true,
				Validators:          []validator.String{stringvalidator.OneOf(config.Protocols...)},
			},
			"port": schema.Int64Attribute{
				MarkdownDescription: "TCP port, 1-65535.",
				Required:            true,
				Validators:          []validator.Int64{int64validator.Between(1, 65535)},
			},
			// Optional
			"address": schema.StringAttribute{
				MarkdownDescription: "IP address to bind. Defaults to `0.0.0.0` (every IPv4 address).",
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString("0.0.0.0"),
				Validators:          []validator.String{ipAddress{}},
			},
			// Computed
			"id": schema.StringAttribute{
				MarkdownDescription: "`<server_id>/<listener id>`; import a listener by it.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"bound": schema.BoolAttribute{
				MarkdownDescription: "Whether the runtime has the port bound. `false` (runtime stopped, port taken " +
					"at start-up) shows in plan as a change that apply repairs.",
				Computed:      true,
				PlanModifiers: []planmodifier.Bool{alwaysTrue{}},
			},
			"served_fingerprint_sha256": schema.StringAttribute{
				MarkdownDescription: "SHA-256 fingerprint of the certificate the port serves, as `keytool -list` prints it. " +
					"Empty without TLS.",
				Computed: true,
			},
		},
		Blocks: map[string]schema.Block{
			"tls": schema.SingleNestedBlock{
				MarkdownDescription: "TLS settings. Implicit TLS and STARTTLS are one choice per listener, never both.",
				Attributes: map[string]schema.Attribute{
					"mode": schema.StringAttribute{
						MarkdownDescription: "`implicit` (TLS from the first byte: `socketTLS`), `starttls` (plain text " +
							"upgraded by STARTTLS/STLS; no password is accepted before it) or `none`.",
						Required:   true,
						Validators: []validator.String{stringvalidator.OneOf(config.TLSModes...)},
					},
					"keystore_path": schema.StringAttribute{
						MarkdownDescription: "JKS or PKCS#12 keystore holding the certificate. Required unless `mode` is `none`. " +
							"The runtime watches it: a renewed or edited keystore is served from the next handshake.",
						Optional: true,
					},
					"keystore_password": schema.StringAttribute{
						MarkdownDescription: "Password of the keystore. Required unless `mode` is `none`.",
						Optional:            true,
						Sensitive:           true,
						Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
					},
					"key_password": schema.StringAttribute{
						MarkdownDescription: "Password of the private key entry when it differs from the keystore's (JKS only).",
						Optional:            true,
						Sensitive:           true,
					},
					"alias": schema.StringAttribute{
						MarkdownDescription: "Private key entry to serve. Optional when the keystore holds exactly one.",
						Optional:            true,
					},
					"min_version": schema.StringAttribute{
						MarkdownDescription: "Lowest TLS version accepted: " + quoted(config.TLSVersions) + ". Defaults to `1.2`.",
						Optional:            true,
						Validators:          []validator.String{stringvalidator.OneOf(config.TLSVersions...)},
					},
					"cipher_suites": schema.ListAttribute{
						MarkdownDescription: "TLS 1.2 cipher suites by IANA name, e.g. `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`. " +
							"Defaults to ECDHE with AES-GCM or ChaCha20-Poly1305 only (`" + strings.Join(config.DefaultCipherSuites, "`, `") + "`); " +
							"the CBC-SHA suites Go also allows must be named here to be offered. TLS 1.3 suites are not configurable.",
						Optional:    true,
						ElementType: types.StringType,
					},
					"client_auth": schema.StringAttribute{
						MarkdownDescription: "Client certificates: " + quoted(config.ClientAuthModes) + ". Checked against the " +
							"keystore's trusted certificate entries, as a Java truststore would. Defaults to `none`.",
						Optional:   true,
						Validators: []validator.String{stringvalidator.OneOf(config.ClientAuthModes...)},
					},
					"expected_fingerprint_sha256": schema.StringAttribute{
						MarkdownDescription: "Fingerprint of the certificate this port must serve, usually " +
							"`mailstack_keystore.<name>.fingerprint_sha256`. With it, a renewed certificate makes the listener " +
							"part of the plan and apply returns only once the port serves it (the runtime picks up a changed " +
							"keystore within a second), and a port serving anything else (a keystore replaced on disk) shows as " +
							"drift. Without it, apply checks that the port serves the keystore's certificate when the `tls` " +
							"block changes.",
						Optional: true,
					},
				},
			},
		},
	}
}

func (r *listenerResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = configuredData(req.ProviderData, &resp.Diagnostics)
}

// ValidateConfig catches at plan time what the runtime would refuse.
func (r *listenerResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m listenerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if m.TLS == nil {
		resp.Diagnostics.AddAttributeError(path.Root("tls"), "Missing TLS Block",
			"Every listener declares a tls block; use mode = \"none\" for a listener without TLS.")
		return
	}
	mode := m.TLS.Mode
	if mode.IsUnknown() || mode.IsNull() || mode.ValueString() == config.TLSNone {
		return
	}
	for attr, v := range map[string]types.String{"keystore_path": m.TLS.KeystorePath, "keystore_password": m.TLS.KeystorePassword} {
		if v.IsNull() {
			resp.Diagnostics.AddAttributeError(path.Root("tls").AtName(attr), "Missing TLS Attribute",
				fmt.Sprintf("tls.%s is required when tls.mode is %q.", attr, mode.ValueString()))
		}
	}
	if m.Port.IsUnknown() || m.Protocol.IsUnknown() {
		return
	}
	if hint := unusualPort(m.Protocol.ValueString(), mode.ValueString(), int(m.Port.ValueInt64())); hint != "" {
		resp.Diagnostics.AddAttributeWarning(path.Root("tls").AtName("mode"), "Unusual TLS Mode for This Port", hint)
	}
}

// wellKnown lists the standard ports per protocol and TLS mode.
var wellKnown = map[string]map[string][]int{
	config.ProtocolSMTP:       {config.TLSImplicit: {465}, config.TLSStartTLS: {25}},
	config.ProtocolSubmission: {config.TLSImplicit: {465}, config.TLSStartTLS: {587}},
	config.ProtocolIMAP:       {config.TLSImplicit: {993}, config.TLSStartTLS: {143}},
	config.ProtocolPOP3:       {config.TLSImplicit: {995}, config.TLSStartTLS: {110}},
}

// unusualPort explains a TLS mode on a port that clients expect the other
// mode on, e.g. implicit TLS on 143; "" if nothing is odd.
func unusualPort(protocol, mode string, port int) string {
	other := map[string]string{config.TLSImplicit: config.TLSStartTLS, config.TLSStartTLS: config.TLSImplicit}[mode]
	if other == "" || !slices.Contains(wellKnown[protocol][other], port) {
		return ""
	}
	return fmt.Sprintf("Port %d is where %s clients expect %s, but this listener uses %s; clients configured "+
		"for the standard port will fail to connect.", port, protocol, other, mode)
}

// abs makes the keystore path absolute on the host: the runtime runs in its
// own folder.
func (m *listenerModel) settings(ctx context.Context, abs func(string) (string, error)) (config.Listener, error) {
	l := config.Listener{
		Protocol: m.Protocol.ValueString(),
		Address:  m.Address.ValueString(),
		Port:     int(m.Port.ValueInt64()),
	}
	if m.TLS != nil {
		t := m.TLS
		l.TLS = config.TLS{
			Mode:             t.Mode.ValueString(),
			KeystorePath:     t.KeystorePath.ValueString(),
			KeystorePassword: t.KeystorePassword.ValueString(),
			KeyPassword:      t.KeyPassword.ValueString(),
			Alias:            t.Alias.ValueString(),
			MinVersion:       t.MinVersion.ValueString(),
			ClientAuth:       t.ClientAuth.ValueString(),
		}
		if diags := t.CipherSuites.ElementsAs(ctx, &l.TLS.CipherSuites, false); diags.HasError() {
			return l, fmt.Errorf("tls.cipher_suites must be a list of strings")
		}
		if l.TLS.KeystorePath != "" {
			p, err := abs(l.TLS.KeystorePath)
			if err != nil {
				return l, fmt.Errorf("tls.keystore_path: %w", err)
			}
			l.TLS.KeystorePath = p
		}
	}
	return l, l.Validate()
}

// splitListenerID splits "<server_id>/<listener id>".
func splitListenerID(id string) (serverID, listenerID string, ok bool) {
	serverID, listenerID, ok = strings.Cut(id, "/")
	return serverID, listenerID, ok && serverNameRE.MatchString(serverID) && listenerID != ""
}

func (r *listenerResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan listenerModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	plan.ID = types.StringValue(plan.ServerID.ValueString() + "/l-" + hex.EncodeToString(b[:]))
	r.put(ctx, &plan, nil, &resp.State, &resp.Diagnostics)
}

func (r *listenerResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, prior listenerModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	r.put(ctx, &plan, &prior, &resp.State, &resp.Diagnostics)
}

// put sends the planned listener to the runtime; it returns when the
// listener is live and serves the certificate it should, and records what
// the runtime reports. prior is the state before an update, nil on create.
func (r *listenerResource) put(ctx context.Context, plan, prior *listenerModel, state *tfsdk.State, diags *diag.Diagnostics) {
	settings, err := plan.settings(ctx, r.data.abs)
	if err != nil {
		diags.AddError("Invalid Listener", err.Error())
		return
	}
	serverID, id, _ := splitListenerID(plan.ID.ValueString())
	client := r.data.client(serverID)
	var obj control.ListenerObject
	unchanged := false
	if prior != nil && prior.Bound.ValueBool() {
		// Only the expected fingerprint changed: nothing to send.
		before, err := prior.settings(ctx, r.data.abs)
		unchanged = err == nil && settingsEqual(before, settings)
	}
	if unchanged {
		obj, err = client.Listener(ctx, id)
	} else {
		obj, err = client.PutListener(ctx, id, settings)
	}
	if err != nil {
		if clash := r.clash(ctx, client, serverID, id, settings); clash != "" {
			diags.AddAttributeError(path.Root("port"), "Port Clash", clash)
			return
		}
		diags.AddError("Unable to Apply Listener",
			fmt.Sprintf("Server %q refused listener %s %s: %s", serverID, settings.Protocol, settings.Addr(), err))
		return
	}
	expected := ""
	if plan.TLS != nil {
		expected = plan.TLS.Expected.ValueString()
	}
	if settings.TLS.Mode != config.TLSNone && (!unchanged || expected != "") {
		if obj, err = r.awaitCertificate(ctx, client, id, settings.TLS, expected, obj); err != nil {
			diags.AddError("Listener Not Serving the Expected Certificate", err.Error())
			return
		}
	}
	plan.Bound = types.BoolValue(obj.Status.Bound)
	plan.ServedFingerprint = types.StringValue(obj.Status.CertificateFingerprint)
	diags.Append(state.Set(ctx, plan)...)
}

func (r *listenerResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state listenerModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	serverID, id, ok := splitListenerID(state.ID.ValueString())
	if !ok {
		resp.Diagnostics.AddError("Invalid Listener ID", fmt.Sprintf("%q is not <server_id>/<listener id>. This is always a bug in the provider.", state.ID.ValueString()))
		return
	}
	obj, err := r.data.client(serverID).Listener(ctx, id)
	switch {
	case control.IsNotFound(err):
		resp.State.RemoveResource(ctx)
		return
	case err != nil:
		// The runtime does not answer: the listener is not serving. Keep
		// the settings and let plan show the repair.
		state.Bound = types.BoolValue(false)
		resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
		return
	}
	state.ServerID = types.StringValue(serverID)
	state.Protocol = types.StringValue(obj.Config.Protocol)
	state.Address = types.StringValue(obj.Config.Address)
	state.Port = types.Int64Value(int64(obj.Config.Port))
	prior := state.TLS
	if prior == nil && obj.Config.TLS.Mode != config.TLSNone {
		prior = r.storedSecrets(ctx, serverID, id)
	}
	state.TLS = readTLS(ctx, obj.Config.TLS, prior, r.data.abs, &resp.Diagnostics)
	state.Bound = types.BoolValue(obj.Status.Bound)
	served := obj.Status.CertificateFingerprint
	state.ServedFingerprint = types.StringValue(served)
	if exp := state.TLS.Expected; !exp.IsNull() && obj.Status.Bound && served != "" && served != exp.ValueString() {
		// Serving another certificate than the one configured (a
		// keystore replaced on disk): plan shows the way back.
		state.TLS.Expected = types.StringValue(served)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// readTLS maps the runtime's TLS settings into the model. The runtime
// never returns passwords, so those stay as they were in prior; optional
// attributes the runtime reports as empty stay null.
func readTLS(ctx context.Context, t config.TLS, prior *tlsModel, abs func(string) (string, error), diags *diag.Diagnostics) *tlsModel {
	m := &tlsModel{
		Mode:         types.StringValue(t.Mode),
		KeystorePath: optionalString(t.KeystorePath),
		Alias:        optionalString(t.Alias),
		MinVersion:   optionalString(t.MinVersion),
		ClientAuth:   optionalString(t.ClientAuth),
		CipherSuites: types.ListNull(types.StringType),
	}
	if prior != nil {
		m.KeystorePassword, m.KeyPassword, m.Expected = prior.KeystorePassword, prior.KeyPassword, prior.Expected
		// The runtime holds the absolute form of a relative path.
		if p, err := abs(prior.KeystorePath.ValueString()); err == nil && p == t.KeystorePath {
			m.KeystorePath = prior.KeystorePath
		}
	} else {
		m.KeystorePassword, m.KeyPassword, m.Expected = types.StringNull(), types.StringNull(), types.StringNull()
	}
	if len(t.CipherSuites) > 0 {
		l, d := types.ListValueFrom(ctx, types.StringType, t.CipherSuites)
		diags.Append(d...)
		m.CipherSuites = l
	}
	return m
}

func optionalString(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}

func (r *listenerResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state listenerModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	serverID, id, _ := splitListenerID(state.ID.ValueString())
	err := r.data.client(serverID).DeleteListener(ctx, id)
	if err != nil && !control.IsNotFound(err) {
		resp.Diagnostics.AddError("Unable to Delete Listener",
			fmt.Sprintf("Server %q could not stop listener %s: %s", serverID, id, err))
	}
}

func (r *listenerResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if _, _, ok := splitListenerID(req.ID); !ok {
		resp.Diagnostics.AddError("Invalid Import ID",
			fmt.Sprintf("%q is not <server_id>/<listener id>, e.g. \"default/l-0123456789ab\".", req.ID))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
}

// ipAddress validates an IP address literal.
type ipAddress struct{}

var _ validator.String = ipAddress{}

func (ipAddress) Description(context.Context) string { return "must be an IP address" }

func (v ipAddress) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (ipAddress) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if net.ParseIP(req.ConfigValue.ValueString()) == nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid IP Address",
			fmt.Sprintf("%q is not an IP address; use e.g. \"0.0.0.0\", \"127.0.0.1\" or \"::1\".", req.ConfigValue.ValueString()))
	}
}
