package provider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"slices"
	"strconv"
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
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
)

var (
	_ resource.Resource                   = (*listenerResource)(nil)
	_ resource.ResourceWithConfigure      = (*listenerResource)(nil)
	_ resource.ResourceWithImportState    = (*listenerResource)(nil)
	_ resource.ResourceWithValidateConfig = (*listenerResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*listenerResource)(nil)
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
	MaxConnections    types.Int64  `tfsdk:"max_connections"`
	MaxConnsPerIP     types.Int64  `tfsdk:"max_connections_per_ip"`
	Bound             types.Bool   `tfsdk:"bound"`
	ServedFingerprint types.String `tfsdk:"served_fingerprint_sha256"`
	JamesTLSXML       types.String `tfsdk:"james_tls_xml"`
}

type tlsModel struct {
	Mode                      types.String       `tfsdk:"mode"`
	KeystorePath              types.String       `tfsdk:"keystore_path"`
	KeystorePassword          types.String       `tfsdk:"keystore_password"`
	KeystorePasswordWO        types.String       `tfsdk:"keystore_password_wo"`
	KeystorePasswordWOVersion types.Int64        `tfsdk:"keystore_password_wo_version"`
	KeyPassword               types.String       `tfsdk:"key_password"`
	Alias                     types.String       `tfsdk:"alias"`
	MinVersion                types.String       `tfsdk:"min_version"`
	CipherSuites              types.List         `tfsdk:"cipher_suites"`
	ClientAuth                types.String       `tfsdk:"client_auth"`
	Expected                  types.String       `tfsdk:"expected_fingerprint_sha256"`
	Certificates              []certificateModel `tfsdk:"certificate"`
	SessionTickets            types.Bool         `tfsdk:"session_tickets"`
	TicketLifetime            types.String       `tfsdk:"session_ticket_lifetime"`
	OCSPStapling              types.Bool         `tfsdk:"ocsp_stapling"`
}

// certificateModel is one tls.certificate block: a keystore entry or a
// pair of PEM files.
type certificateModel struct {
	KeystorePath              types.String `tfsdk:"keystore_path"`
	KeystorePassword          types.String `tfsdk:"keystore_password"`
	KeystorePasswordWO        types.String `tfsdk:"keystore_password_wo"`
	KeystorePasswordWOVersion types.Int64  `tfsdk:"keystore_password_wo_version"`
	KeyPassword               types.String `tfsdk:"key_password"`
	Alias                     types.String `tfsdk:"alias"`
	CertificateFile           types.String `tfsdk:"certificate_file"`
	PrivateKeyFile            types.String `tfsdk:"private_key_file"`
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
		// Version 0 until the first change of shape, which brings an
		// upgrader (see mailstack_keystore's).
		Version: 0,
		MarkdownDescription: "One port of a `mailstack_server` serving one protocol with implicit TLS " +
			"(Apache James's `socketTLS`), STARTTLS, or no TLS. Apply returns when the port is bound and " +
			"serves the keystore's certificate. Every attribute but `server_id` changes in place: sockets " +
			"that stay are not reopened and sessions in flight finish.\n\n" +
			"Plan opens the keystore when it exists already and reports a wrong password, an ambiguous alias or a " +
			"key password that does not open the key on the attribute to fix; it warns when the keystore would " +
			"not suit Apache James (several private keys, or a key password that differs from the store " +
			"password: James has one `<secret>`). `james_tls_xml` is the `<tls>` block James would need for the " +
			"same port.\n\n" +
			"The runtime logs to `<state_dir>/<server_id>/runtime.log` on the target host; its listeners, by id, " +
			"are in `<state_dir>/<server_id>/config.json`.",
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
				MarkdownDescription: "TCP port, 1-65535. Two listeners on one host may share a port only on distinct " +
					"addresses that do not overlap (`0.0.0.0` and `::` overlap every address): plan fails, before anything " +
					"is created, when another listener in the configuration or one the server already runs holds it.",
				Required:   true,
				Validators: []validator.Int64{int64validator.Between(1, 65535)},
			},
			// Optional
			"address": schema.StringAttribute{
				MarkdownDescription: "IP address to bind. Defaults to `0.0.0.0` (every IPv4 address).",
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString("0.0.0.0"),
				Validators:          []validator.String{ipAddress{}},
			},
			"max_connections": schema.Int64Attribute{
				MarkdownDescription: fmt.Sprintf("Most connections this listener holds open at once. Unset: the "+
					"server's `max_connections` (%[1]d unless set). A client over the limit hears the protocol's refusal "+
					"(SMTP `421 4.7.0`, IMAP `* BYE [UNAVAILABLE]`, POP3 `-ERR [SYS/TEMP]`) and is disconnected; a "+
					"changed limit keeps the sessions already open. Why %[1]d: an idle session costs the runtime about "+
					"70 KiB and a file descriptor, so %[1]d stay near 150 MiB, leave room for 1,000 IMAP IDLE clients on "+
					"one port (twice Dovecot's default of 1,024 processes) and are far above what one SMTP port of a "+
					"small site sees (Postfix runs at most 100 smtpd processes).", config.DefaultMaxConnections),
				Optional:   true,
				Validators: []validator.Int64{int64validator.AtLeast(1)},
			},
			"max_connections_per_ip": schema.Int64Attribute{
				MarkdownDescription: fmt.Sprintf("Most connections one client address may hold open on this listener, "+
					"so that one host cannot take every slot (slowloris). Unset: %d, and loopback clients are exempt "+
					"(local webmail, fetchmail, monitoring and load tests all share 127.0.0.1), as Postfix's "+
					"`smtpd_client_connection_count_limit` of 50 exempts `$mynetworks`. A value set here applies to "+
					"every client, loopback included. Clients behind one NAT share an address, and a mail client holds "+
					"several IMAP connections: raise it on an IMAP port that a whole office reaches through one "+
					"gateway.", config.DefaultMaxConnectionsPerIP),
				Optional:   true,
				Validators: []validator.Int64{int64validator.AtLeast(1)},
			},
			// Computed
			"id": schema.StringAttribute{
				MarkdownDescription: "`<server_id>/<listener id>`; import a listener by it, or by " +
					"`<server_id>/<address>:<port>`.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"bound": schema.BoolAttribute{
				MarkdownDescription: "Whether the runtime has the port bound. `false` (runtime stopped, port taken " +
					"at start-up) shows in plan as a change that apply repairs.",
				Computed:      true,
				PlanModifiers: []planmodifier.Bool{alwaysTrue{}},
			},
			"served_fingerprint_sha256": schema.StringAttribute{
				MarkdownDescription: "SHA-256 fingerprint of the certificate the port serves, as `keytool -list` prints it. " +
					"Empty without TLS. Unknown in a plan that changes the listener (unless " +
					"`tls.expected_fingerprint_sha256` says what it will be): the runtime may serve a renewed " +
					"certificate by then.",
				Computed: true,
			},
			"james_tls_xml": schema.StringAttribute{
				MarkdownDescription: "The `<tls socketTLS=... startTLS=...>` block of Apache James's `smtpserver.xml`, " +
					"`imapserver.xml` or `pop3server.xml` for the same port: the keystore (as `file://` path and " +
					"`<keystoreType>`), TLS versions, cipher suites and client authentication. The password is not in " +
					"it: `<secret>` holds `" + jamesSecretPlaceholder + "`, e.g. for `replace(mailstack_listener.x.james_tls_xml, " +
					"\"" + jamesSecretPlaceholder + "\", var.keystore_password)`. James serves one keystore per port: " +
					"`certificate` blocks have no equivalent in it.",
				Computed: true,
			},
		},
		Blocks: map[string]schema.Block{
			"tls": schema.SingleNestedBlock{
				MarkdownDescription: "TLS settings. Implicit TLS and STARTTLS are one choice per listener, never both. " +
					"Without this block the listener has no TLS, as with `mode = \"none\"` (and as a James server " +
					"without `<tls>`): plan warns for submission, IMAP and POP3, whose passwords would cross in clear.",
				Attributes: withKeystoreEntry(map[string]schema.Attribute{
					"mode": schema.StringAttribute{
						MarkdownDescription: "`implicit` (TLS from the first byte: `socketTLS`), `starttls` (plain text " +
							"upgraded by STARTTLS/STLS; no password is accepted before it) or `none` (plain text only). " +
							"On `none`, submission, IMAP and POP3 take a password in clear only from loopback clients " +
							"(`127.0.0.0/8`, `::1`), as Dovecot's `disable_plaintext_auth` does: a client from any other " +
							"address is offered no AUTH, USER or `AUTH=PLAIN` (IMAP says `LOGINDISABLED`) and its login is " +
							"refused (`523 5.7.10`, `NO [PRIVACYREQUIRED]`, `-ERR [AUTH]`). Use `none` for a local webmail " +
							"or a TLS proxy on the same host, never for clients on the network. Required in a `tls` " +
							"block (it is optional only because the block is).",
						Optional:   true,
						Validators: []validator.String{stringvalidator.OneOf(config.TLSModes...)},
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
							"trusted certificate entries of `keystore_path`, as a Java truststore would. Defaults to `none`.",
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
					"session_tickets": schema.BoolAttribute{
						MarkdownDescription: "Session resumption with tickets (TLS 1.2 tickets, TLS 1.3 PSK), so that a client " +
							"that reconnects skips the full handshake. Defaults to `true`, except on `smtp` (MX) listeners, where " +
							"it defaults to `false`: some sending MTAs mishandle tickets, and a peer seldom reconnects soon enough " +
							"to resume. The ticket keys are the server's, shared by all its listeners (a ticket from port 993 " +
							"resumes on 465), kept in memory only and rotated daily.",
						Optional: true,
					},
					"session_ticket_lifetime": schema.StringAttribute{
						MarkdownDescription: fmt.Sprintf("How long a ticket resumes a session, as a duration such as `12h`, "+
							"from `%s` to `%s` (RFC 8446's limit). Defaults to `%s`.", config.MinSessionTicketLifetime,
							config.MaxSessionTicketLifetime, config.DefaultSessionTicketLifetime),
						Optional:   true,
						Validators: []validator.String{ticketLifetime{}},
					},
					"ocsp_stapling": schema.BoolAttribute{
						MarkdownDescription: "Staple OCSP responses to certificates that name an OCSP responder: the runtime " +
							"fetches them in the background, keeps them in the server's state directory across restarts and " +
							"fetches again half-way through their validity; a handshake never waits for a responder. A " +
							"certificate with the must-staple extension (RFC 7633) is served only with a good response. On " +
							"unless set to `false`.",
						Optional: true,
					},
				}, "JKS or PKCS#12 keystore holding the default certificate: the one served to "+
					"clients whose server name (SNI) no `certificate` block serves, or that send none. Unless `mode` "+
					"is `none`, it or a `certificate` block is required (without it the first block is the default). "+
					"The runtime watches it: a renewed or edited keystore is served from the next handshake.",
					"Password of the keystore, kept in the Terraform state (sensitive). With `keystore_path`, exactly one "+
						"of it and `keystore_password_wo` is required."),
				Blocks: map[string]schema.Block{
					"certificate": schema.ListNestedBlock{
						MarkdownDescription: "More certificates on this port, chosen per handshake by the server name the " +
							"client asks for (SNI): a certificate for exactly that name, then one whose wildcard covers it, " +
							"then the default (`keystore_path`, else the first block). Among certificates for one name (an RSA " +
							"and an ECDSA one), each client gets the first it supports, ECDSA before RSA: old clients get RSA, " +
							"new ones the cheaper ECDSA handshake. Each is a keystore entry (`keystore_path`, " +
							"`keystore_password`, `key_password`, `alias`) or PEM files (`certificate_file`, " +
							"`private_key_file`, as certbot and cert-manager write them); each is watched and reloaded on its own.",
						NestedObject: schema.NestedBlockObject{
							Attributes: withKeystoreEntry(map[string]schema.Attribute{
								"certificate_file": schema.StringAttribute{
									MarkdownDescription: "PEM file with the certificate chain, leaf first (certbot's `fullchain.pem`).",
									Optional:            true,
								},
								"private_key_file": schema.StringAttribute{
									MarkdownDescription: "PEM file with the private key (PKCS#8, PKCS#1 or SEC 1, unencrypted; certbot's `privkey.pem`).",
									Optional:            true,
								},
							}, "JKS or PKCS#12 keystore; an `acme` keystore's renewals are served as they land.",
								"Password of the keystore (or `keystore_password_wo`)."),
						},
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
	if m.TLS == nil || m.TLS.Mode.ValueString() == config.TLSNone {
		if p := m.Protocol.ValueString(); p != config.ProtocolSMTP && !m.Protocol.IsUnknown() {
			resp.Diagnostics.AddAttributeWarning(path.Root("tls"), "Listener Without TLS",
				fmt.Sprintf("This %s listener has no TLS: its users' passwords and mail would cross the network in "+
					"clear. Add a tls block with mode = \"implicit\" or \"starttls\" unless it only serves a trusted "+
					"network.", p))
		}
		return
	}
	mode := m.TLS.Mode
	if mode.IsUnknown() {
		return
	}
	if mode.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("tls").AtName("mode"), "Missing TLS Attribute",
			"A tls block needs mode: \"implicit\", \"starttls\" or \"none\".")
		return
	}
	if m.TLS.KeystorePath.IsNull() && len(m.TLS.Certificates) == 0 {
		resp.Diagnostics.AddAttributeError(path.Root("tls").AtName("keystore_path"), "Missing TLS Attribute",
			fmt.Sprintf("tls.keystore_path (or a tls.certificate block) is required when tls.mode is %q.", mode.ValueString()))
	}
	if !m.TLS.KeystorePath.IsNull() {
		checkPasswords(m.TLS.KeystorePassword, m.TLS.KeystorePasswordWO, m.TLS.KeystorePasswordWOVersion, path.Root("tls"), &resp.Diagnostics)
	}
	for i, c := range m.TLS.Certificates {
		if !c.KeystorePath.IsNull() {
			checkPasswords(c.KeystorePassword, c.KeystorePasswordWO, c.KeystorePasswordWOVersion, path.Root("tls").AtName("certificate").AtListIndex(i), &resp.Diagnostics)
		}
		given := func(v types.String) string {
			if v.IsNull() {
				return ""
			}
			return "given" // unknown counts as given
		}
		password := c.KeystorePassword
		if password.IsNull() {
			password = c.KeystorePasswordWO
		}
		src := config.Certificate{KeystorePath: given(c.KeystorePath), KeystorePassword: given(password),
			KeyPassword: given(c.KeyPassword), Alias: given(c.Alias),
			CertificateFile: given(c.CertificateFile), PrivateKeyFile: given(c.PrivateKeyFile)}
		if err := src.Validate(); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("tls").AtName("certificate").AtListIndex(i), "Invalid Certificate Block",
				fmt.Sprintf("tls.certificate[%d] names %s.", i, err))
		}
	}
	if m.Port.IsUnknown() || m.Protocol.IsUnknown() {
		return
	}
	if hint := unusualPort(m.Protocol.ValueString(), mode.ValueString(), int(m.Port.ValueInt64())); hint != "" {
		resp.Diagnostics.AddAttributeWarning(path.Root("tls").AtName("mode"), "Unusual TLS Mode for This Port", hint)
	}
}

// checkPasswords wants exactly one of a keystore_password and its
// write-only twin, and the version only with the twin.
func checkPasswords(password, wo types.String, version types.Int64, at path.Path, diags *diag.Diagnostics) {
	if !password.IsUnknown() && !wo.IsUnknown() && password.IsNull() == wo.IsNull() {
		diags.AddAttributeError(at.AtName("keystore_password"), "Missing TLS Attribute",
			"Exactly one of keystore_password and keystore_password_wo is required with keystore_path.")
	}
	if !password.IsNull() && !version.IsNull() {
		diags.AddAttributeError(at.AtName("keystore_password_wo_version"), "Conflicting TLS Attributes",
			"keystore_password_wo_version goes with keystore_password_wo, not with keystore_password.")
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

// settings is the listener as the runtime takes it, with the keystore
// passwords pw (keystorePasswords); abs makes paths absolute on the host:
// the runtime runs in its own folder.
func (m *listenerModel) settings(ctx context.Context, pw tlsPasswords, abs func(string) (string, error)) (config.Listener, error) {
	l := config.Listener{
		Protocol:            m.Protocol.ValueString(),
		Address:             m.Address.ValueString(),
		Port:                int(m.Port.ValueInt64()),
		MaxConnections:      int(m.MaxConnections.ValueInt64()),
		MaxConnectionsPerIP: int(m.MaxConnsPerIP.ValueInt64()),
		TLS:                 config.TLS{Mode: config.TLSNone},
	}
	if m.TLS != nil {
		t := m.TLS
		l.TLS = config.TLS{
			Mode:             t.Mode.ValueString(),
			KeystorePath:     t.KeystorePath.ValueString(),
			KeystorePassword: pw.keystore,
			KeyPassword:      t.KeyPassword.ValueString(),
			Alias:            t.Alias.ValueString(),
			MinVersion:       t.MinVersion.ValueString(),
			ClientAuth:       t.ClientAuth.ValueString(),
		}
		if diags := t.CipherSuites.ElementsAs(ctx, &l.TLS.CipherSuites, false); diags.HasError() {
			return l, fmt.Errorf("tls.cipher_suites must be a list of strings")
		}
		l.TLS.SessionTickets = boolPointer(t.SessionTickets)
		l.TLS.OCSPStapling = boolPointer(t.OCSPStapling)
		l.TLS.SessionTicketLifetime = t.TicketLifetime.ValueString()
		for i, c := range t.Certificates {
			l.TLS.Certificates = append(l.TLS.Certificates, config.Certificate{
				KeystorePath: c.KeystorePath.ValueString(), KeystorePassword: pw.certificates[i],
				KeyPassword: c.KeyPassword.ValueString(), Alias: c.Alias.ValueString(),
				CertificateFile: c.CertificateFile.ValueString(), PrivateKeyFile: c.PrivateKeyFile.ValueString(),
			})
		}
		// The runtime runs in its own folder: give it absolute paths.
		paths := map[string]*string{"tls.keystore_path": &l.TLS.KeystorePath}
		for i := range l.TLS.Certificates {
			c := &l.TLS.Certificates[i]
			paths[fmt.Sprintf("tls.certificate[%d].keystore_path", i)] = &c.KeystorePath
			paths[fmt.Sprintf("tls.certificate[%d].certificate_file", i)] = &c.CertificateFile
			paths[fmt.Sprintf("tls.certificate[%d].private_key_file", i)] = &c.PrivateKeyFile
		}
		for name, p := range paths {
			if *p == "" {
				continue
			}
			a, err := abs(*p)
			if err != nil {
				return l, fmt.Errorf("%s: %w", name, err)
			}
			*p = a
		}
	}
	return l, l.Validate()
}

// tlsPasswords are the keystore passwords of a tls block and its
// certificate blocks, from the plan or, write-only, the configuration.
type tlsPasswords struct {
	keystore     string
	certificates []string
}

// keystorePasswords resolves the tls block's keystore passwords.
func (m *listenerModel) keystorePasswords(ctx context.Context, cfg configReader) (tlsPasswords, error) {
	var pw tlsPasswords
	if m.TLS == nil {
		return pw, nil
	}
	at := path.Root("tls")
	var err error
	if pw.keystore, err = passwordOr(ctx, m.TLS.KeystorePassword, cfg, at.AtName("keystore_password_wo")); err != nil {
		return pw, err
	}
	for i, c := range m.TLS.Certificates {
		p, err := passwordOr(ctx, c.KeystorePassword, cfg, at.AtName("certificate").AtListIndex(i).AtName("keystore_password_wo"))
		if err != nil {
			return pw, err
		}
		pw.certificates = append(pw.certificates, p)
	}
	return pw, nil
}

// samePasswords reports whether the passwords the runtime has stay: the
// same keystore and key passwords, and no new write-only version.
func (m *listenerModel) samePasswords(prior *listenerModel) bool {
	if (m.TLS == nil) != (prior.TLS == nil) {
		return false
	}
	if m.TLS == nil {
		return true
	}
	same := func(a, b types.String, av, bv types.Int64) bool {
		return a.Equal(b) && av.Equal(bv)
	}
	a, b := m.TLS, prior.TLS
	if !same(a.KeystorePassword, b.KeystorePassword, a.KeystorePasswordWOVersion, b.KeystorePasswordWOVersion) ||
		!a.KeyPassword.Equal(b.KeyPassword) || len(a.Certificates) != len(b.Certificates) {
		return false
	}
	for i, c := range a.Certificates {
		p := b.Certificates[i]
		if !same(c.KeystorePassword, p.KeystorePassword, c.KeystorePasswordWOVersion, p.KeystorePasswordWOVersion) || !c.KeyPassword.Equal(p.KeyPassword) {
			return false
		}
	}
	return true
}

// withKeystoreEntry adds to attrs the attributes that name a keystore
// entry to serve (keystore_path, keystore_password, key_password, alias),
// which the tls block and its certificate blocks share.
func withKeystoreEntry(attrs map[string]schema.Attribute, pathDesc, passwordDesc string) map[string]schema.Attribute {
	attrs["keystore_path"] = schema.StringAttribute{MarkdownDescription: pathDesc, Optional: true}
	attrs["keystore_password"] = schema.StringAttribute{
		MarkdownDescription: passwordDesc,
		Optional:            true,
		Sensitive:           true,
		Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
	}
	attrs["keystore_password_wo"] = schema.StringAttribute{
		MarkdownDescription: "Password of the keystore, write-only (Terraform 1.11 and later): sent to the runtime, which " +
			"keeps it in its config on the host, and never stored in the Terraform state or plan. Change " +
			"`keystore_password_wo_version` to send a new one.",
		Optional:   true,
		Sensitive:  true,
		WriteOnly:  true,
		Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
	}
	attrs["keystore_password_wo_version"] = schema.Int64Attribute{
		MarkdownDescription: "Change it to send a new `keystore_password_wo` to the runtime.",
		Optional:            true,
	}
	attrs["key_password"] = schema.StringAttribute{
		MarkdownDescription: "Password of the private key entry when it differs from the keystore's (JKS only).",
		Optional:            true,
		Sensitive:           true,
	}
	attrs["alias"] = schema.StringAttribute{
		MarkdownDescription: "Private key entry to serve. Optional when the keystore holds exactly one.",
		Optional:            true,
	}
	return attrs
}

// boolPointer maps an optional bool to the runtime's "nil means the
// default".
func boolPointer(v types.Bool) *bool {
	if v.IsNull() || v.IsUnknown() {
		return nil
	}
	b := v.ValueBool()
	return &b
}

func optionalBool(b *bool) types.Bool {
	if b == nil {
		return types.BoolNull()
	}
	return types.BoolValue(*b)
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
	tflog.Debug(ctx, "creating the listener in the runtime over its control socket", map[string]any{"id": plan.ID.ValueString(), "protocol": plan.Protocol.ValueString(), "address": plan.Address.ValueString(), "port": plan.Port.ValueInt64()})
	r.put(ctx, &plan, nil, req.Config, &resp.State, &resp.Diagnostics)
}

func (r *listenerResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, prior listenerModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	tflog.Debug(ctx, "changing the listener in the runtime over its control socket", map[string]any{"id": plan.ID.ValueString(), "protocol": plan.Protocol.ValueString(), "address": plan.Address.ValueString(), "port": plan.Port.ValueInt64()})
	r.put(ctx, &plan, &prior, req.Config, &resp.State, &resp.Diagnostics)
}

// put sends the planned listener to the runtime; it returns when the
// listener is live and serves the certificate it should, and records what
// the runtime reports. prior is the state before an update, nil on create.
func (r *listenerResource) put(ctx context.Context, plan, prior *listenerModel, cfg tfsdk.Config, state *tfsdk.State, diags *diag.Diagnostics) {
	pw, err := plan.keystorePasswords(ctx, cfg)
	if err != nil {
		diags.AddError("Invalid Listener", err.Error())
		return
	}
	settings, err := plan.settings(ctx, pw, r.data.abs)
	if err != nil {
		diags.AddError("Invalid Listener", err.Error())
		return
	}
	serverID, id, _ := splitListenerID(plan.ID.ValueString())
	client := r.data.client(serverID)
	var obj control.ListenerObject
	unchanged := false
	if prior != nil && prior.Bound.ValueBool() && plan.samePasswords(prior) && (prior.TLS == nil) == (plan.TLS == nil) &&
		(prior.TLS == nil || len(prior.TLS.Certificates) == len(plan.TLS.Certificates)) {
		// Only the expected fingerprint changed: nothing to send.
		before, err := prior.settings(ctx, pw, r.data.abs)
		unchanged = err == nil && settingsEqual(before, settings)
	}
	if unchanged {
		obj, err = client.Listener(ctx, id)
	} else {
		obj, err = client.PutListener(ctx, id, settings)
	}
	if err != nil {
		if clash := r.clash(ctx, client, serverID, id, settings, nil); clash != "" {
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
	plan.JamesTLSXML = r.jamesTLSXML(ctx, plan)
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
	tflog.Debug(ctx, "reading the listener's settings and status from the runtime", map[string]any{"id": state.ID.ValueString()})
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
	importing := state.Protocol.IsNull() // an import sets only the id
	state.ServerID = types.StringValue(serverID)
	state.Protocol = types.StringValue(obj.Config.Protocol)
	state.Address = types.StringValue(obj.Config.Address)
	state.Port = types.Int64Value(int64(obj.Config.Port))
	state.MaxConnections = optionalInt(obj.Config.MaxConnections)
	state.MaxConnsPerIP = optionalInt(obj.Config.MaxConnectionsPerIP)
	prior := state.TLS
	if prior == nil && obj.Config.TLS.Mode != config.TLSNone && importing {
		prior = r.storedSecrets(ctx, serverID, id)
	}
	state.TLS = readTLS(ctx, obj.Config.TLS, prior, r.data.abs, &resp.Diagnostics)
	state.Bound = types.BoolValue(obj.Status.Bound)
	served := obj.Status.CertificateFingerprint
	state.ServedFingerprint = types.StringValue(served)
	if xml := r.jamesTLSXML(ctx, &state); !xml.IsUnknown() {
		state.JamesTLSXML = xml
	}
	if state.TLS == nil {
		resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
		return
	}
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
	if prior == nil && t.Mode == config.TLSNone {
		return nil // no tls block, as configured
	}
	m := &tlsModel{
		Mode:           types.StringValue(t.Mode),
		KeystorePath:   optionalString(t.KeystorePath),
		Alias:          optionalString(t.Alias),
		MinVersion:     optionalString(t.MinVersion),
		ClientAuth:     optionalString(t.ClientAuth),
		CipherSuites:   types.ListNull(types.StringType),
		SessionTickets: optionalBool(t.SessionTickets),
		TicketLifetime: optionalString(t.SessionTicketLifetime),
		OCSPStapling:   optionalBool(t.OCSPStapling),
	}
	// asWritten keeps a path as the configuration wrote it when the
	// runtime holds its absolute form.
	asWritten := func(prior types.String, held string) types.String {
		if p, err := abs(prior.ValueString()); err == nil && !prior.IsNull() && p == held {
			return prior
		}
		return optionalString(held)
	}
	if prior != nil {
		m.KeystorePassword, m.KeyPassword, m.Expected = prior.KeystorePassword, prior.KeyPassword, prior.Expected
		m.KeystorePasswordWOVersion = prior.KeystorePasswordWOVersion
		m.KeystorePath = asWritten(prior.KeystorePath, t.KeystorePath)
	} else {
		m.KeystorePassword, m.KeyPassword, m.Expected = types.StringNull(), types.StringNull(), types.StringNull()
		m.KeystorePasswordWOVersion = types.Int64Null()
	}
	for i, c := range t.Certificates {
		cm := certificateModel{
			KeystorePath: optionalString(c.KeystorePath), KeystorePassword: types.StringNull(), KeyPassword: types.StringNull(),
			KeystorePasswordWOVersion: types.Int64Null(),
			Alias:                     optionalString(c.Alias), CertificateFile: optionalString(c.CertificateFile), PrivateKeyFile: optionalString(c.PrivateKeyFile),
		}
		if prior != nil && i < len(prior.Certificates) {
			// The runtime never returns passwords.
			p := prior.Certificates[i]
			cm.KeystorePassword, cm.KeyPassword, cm.KeystorePasswordWOVersion = p.KeystorePassword, p.KeyPassword, p.KeystorePasswordWOVersion
			cm.KeystorePath = asWritten(p.KeystorePath, c.KeystorePath)
			cm.CertificateFile = asWritten(p.CertificateFile, c.CertificateFile)
			cm.PrivateKeyFile = asWritten(p.PrivateKeyFile, c.PrivateKeyFile)
		}
		m.Certificates = append(m.Certificates, cm)
	}
	if len(t.CipherSuites) > 0 {
		l, d := types.ListValueFrom(ctx, types.StringType, t.CipherSuites)
		diags.Append(d...)
		m.CipherSuites = l
	}
	return m
}

// optionalInt maps the runtime's "zero means the default" to null.
func optionalInt(n int) types.Int64 {
	if n == 0 {
		return types.Int64Null()
	}
	return types.Int64Value(int64(n))
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
	tflog.Debug(ctx, "deleting the listener from the runtime; its port is freed", map[string]any{"id": state.ID.ValueString()})
	err := r.data.client(serverID).DeleteListener(ctx, id)
	if r.data.goneWithServer(ctx, serverID, err) {
		return
	}
	var apiErr *control.Error
	if !errors.As(err, &apiErr) {
		// The runtime does not answer (stopped, or crash-looping): take
		// the listener out of its config, so a start does not bind it.
		err = r.data.server(serverID).EditConfig(ctx, func(doc *config.Document) error {
			delete(doc.Listeners, id)
			return nil
		})
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return
		}
	}
	resp.Diagnostics.AddError("Unable to Delete Listener",
		fmt.Sprintf("Server %q could not stop listener %s: %s", serverID, id, err))
}

// ImportState adopts a listener by its id, "<server_id>/<listener id>",
// or by where it listens, "<server_id>/<address>:<port>" (IPv6 in
// brackets), looked up in the server's config.json.
func (r *listenerResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	id, ok := r.data.importID(req.ID, &resp.Diagnostics)
	if !ok {
		return
	}
	if serverID, addr, ok := strings.Cut(id, "/"); ok && serverNameRE.MatchString(serverID) {
		if host, port, err := net.SplitHostPort(addr); err == nil {
			found, err := r.listenerAt(ctx, serverID, host, port)
			if err != nil {
				resp.Diagnostics.AddError("Unable to Import Listener", err.Error())
				return
			}
			id = serverID + "/" + found
		}
	}
	if _, _, ok := splitListenerID(id); !ok {
		resp.Diagnostics.AddError("Invalid Import ID",
			fmt.Sprintf("%q is not <server_id>/<listener id> (e.g. \"default/l-0123456789ab\") nor "+
				"<server_id>/<address>:<port> (e.g. \"default/0.0.0.0:465\", \"default/[::1]:993\").", id))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), id)...)
}

// listenerAt finds the id of the listener of server serverID on host:port.
func (r *listenerResource) listenerAt(ctx context.Context, serverID, host, port string) (string, error) {
	dir := r.data.server(serverID)
	doc, err := dir.LoadConfig(ctx)
	if err != nil {
		return "", fmt.Errorf("server %q: %w (is it applied? its state is in %s)", serverID, err, dir)
	}
	ip := net.ParseIP(host)
	var all []string
	for id, l := range doc.Listeners {
		if strconv.Itoa(l.Port) == port && (l.Address == host || ip != nil && ip.Equal(net.ParseIP(l.Address))) {
			return id, nil
		}
		all = append(all, fmt.Sprintf("%s (%s %s)", l.Addr(), l.Protocol, id))
	}
	slices.Sort(all)
	return "", fmt.Errorf("server %q has no listener on %s; it has: %s", serverID, net.JoinHostPort(host, port), strings.Join(all, ", "))
}

// ticketLifetime validates tls.session_ticket_lifetime.
type ticketLifetime struct{}

var _ validator.String = ticketLifetime{}

func (ticketLifetime) Description(context.Context) string {
	return fmt.Sprintf("must be a duration from %s to %s", config.MinSessionTicketLifetime, config.MaxSessionTicketLifetime)
}

func (v ticketLifetime) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v ticketLifetime) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	t := config.TLS{Mode: config.TLSNone, SessionTicketLifetime: req.ConfigValue.ValueString()}
	if err := t.Validate(); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid Session Ticket Lifetime",
			fmt.Sprintf("%q %s, e.g. \"12h\".", req.ConfigValue.ValueString(), v.Description(ctx)))
	}
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
