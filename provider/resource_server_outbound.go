package provider

import (
	"context"
	"fmt"
	"maps"

	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/objectvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
)

// The outbound part of mailstack_server: how mail for other domains
// leaves (relay, tls_policy, dns_resolvers, ca_certificates_pem, queue)
// and what the queue holds (queue_length, queue_oldest_seconds). It is
// kept apart from resource_server.go, which owns the runtime's life.

// serverOutboundModel is embedded in serverModel.
type serverOutboundModel struct {
	Relay              *relayModel      `tfsdk:"relay"`
	TLSPolicies        []tlsPolicyModel `tfsdk:"tls_policy"`
	DNSResolvers       types.List       `tfsdk:"dns_resolvers"`
	CACertificatesPEM  types.String     `tfsdk:"ca_certificates_pem"`
	Queue              *queueModel      `tfsdk:"queue"`
	QueueLength        types.Int64      `tfsdk:"queue_length"`
	QueueOldestSeconds types.Int64      `tfsdk:"queue_oldest_seconds"`
}

type relayModel struct {
	Address           types.String `tfsdk:"address"`
	Mode              types.String `tfsdk:"mode"`
	Username          types.String `tfsdk:"username"`
	Password          types.String `tfsdk:"password"`
	PasswordWO        types.String `tfsdk:"password_wo"`
	PasswordWOVersion types.Int64  `tfsdk:"password_wo_version"`
}

type tlsPolicyModel struct {
	Domain             types.String `tfsdk:"domain"`
	RequireTLS         types.Bool   `tfsdk:"require_tls"`
	VerifyCertificate  types.Bool   `tfsdk:"verify_certificate"`
	FingerprintsSHA256 types.List   `tfsdk:"fingerprints_sha256"`
}

type queueModel struct {
	RetryMin     types.String `tfsdk:"retry_min"`
	RetryMax     types.String `tfsdk:"retry_max"`
	GiveUpAfter  types.String `tfsdk:"give_up_after"`
	DelayWarning types.String `tfsdk:"delay_warning"`
}

// withOutboundAttributes adds the outbound attributes to the server's.
func withOutboundAttributes(attrs map[string]schema.Attribute) map[string]schema.Attribute {
	maps.Copy(attrs, map[string]schema.Attribute{
		// Optional
		"dns_resolvers": schema.ListAttribute{
			MarkdownDescription: "DNS resolvers outbound delivery asks (MX, A/AAAA, MTA-STS TXT, TLSA), as `IP` or " +
				"`IP:port`. Defaults to the nameservers of the host's `/etc/resolv.conf`. DANE trusts these resolvers' " +
				"DNSSEC validation (the AD bit), as Postfix does: they must be validating resolvers reached over a path " +
				"nobody can tamper with, such as Unbound on loopback.",
			Optional:    true,
			ElementType: types.StringType,
			Validators:  []validator.List{listvalidator.ValueStringsAre(resolverAddr{})},
		},
		"ca_certificates_pem": schema.StringAttribute{
			MarkdownDescription: "PEM CA certificates trusted, besides the host's, when outbound delivery verifies " +
				"a certificate: MTA-STS policy servers, MX hosts under an MTA-STS or `verify_certificate` policy, and " +
				"the relay.",
			Optional: true,
		},
		// Computed
		"queue_length": schema.Int64Attribute{
			MarkdownDescription: "Messages in the outbound queue when the server was last read.",
			Computed:            true,
		},
		"queue_oldest_seconds": schema.Int64Attribute{
			MarkdownDescription: "Age in seconds of the oldest queued message when the server was last read; `0` when the queue is empty.",
			Computed:            true,
		},
	})
	return attrs
}

var relayModes = []string{config.TLSStartTLS, config.TLSImplicit, config.TLSNone}

// outboundBlocks are the server's outbound blocks.
func outboundBlocks() map[string]schema.Block {
	return map[string]schema.Block{
		"relay": schema.SingleNestedBlock{
			MarkdownDescription: "A smarthost that all mail for other domains goes through, instead of the " +
				"recipient domains' MX hosts. Its certificate is verified against the host's CAs and " +
				"`ca_certificates_pem`; a `tls_policy` whose `domain` is the relay's host can pin it instead. " +
				"Set either `password` or the write-only `password_wo` with `password_wo_version`.",
			// A block's attributes cannot be Required without making the
			// block itself required: address is checked here instead.
			Validators: []validator.Object{objectvalidator.AlsoRequires(path.MatchRelative().AtName("address"))},
			Attributes: map[string]schema.Attribute{
				"address": schema.StringAttribute{
					MarkdownDescription: "The relay's `host:port`, e.g. `smtp.example.net:587`. Required in a `relay` block.",
					Optional:            true,
				},
				"mode": schema.StringAttribute{
					MarkdownDescription: "TLS to the relay: " + quoted(relayModes) + ". Defaults to `starttls` " +
						"(required, never plain text); `implicit` is TLS from the first byte (port 465); `none` " +
						"sends in clear and cannot log in.",
					Optional:   true,
					Computed:   true,
					Default:    stringdefault.StaticString(config.TLSStartTLS),
					Validators: []validator.String{stringvalidator.OneOf(relayModes...)},
				},
				"username": schema.StringAttribute{
					MarkdownDescription: "Login at the relay (AUTH PLAIN, only over TLS).",
					Optional:            true,
				},
				"password": schema.StringAttribute{
					MarkdownDescription: "Password at the relay; kept in state (sensitive).",
					Optional:            true,
					Sensitive:           true,
					Validators:          []validator.String{stringvalidator.ConflictsWith(path.MatchRelative().AtParent().AtName("password_wo"))},
				},
				"password_wo": schema.StringAttribute{
					MarkdownDescription: "Password at the relay, write-only: sent to the runtime on every apply, never " +
						"stored in state. Needs Terraform 1.11 or later.",
					Optional:  true,
					Sensitive: true,
					WriteOnly: true,
				},
				"password_wo_version": schema.Int64Attribute{
					MarkdownDescription: "Change it when `password_wo` changes, so that plan shows an update.",
					Optional:            true,
				},
			},
		},
		"tls_policy": schema.ListNestedBlock{
			MarkdownDescription: "What TLS one destination must offer, on top of what DANE and MTA-STS already " +
				"demand (a tls_policy only ever tightens). The message stays queued, with the reason in its queue " +
				"entry, while the destination does not meet it.",
			NestedObject: schema.NestedBlockObject{
				Attributes: map[string]schema.Attribute{
					"domain": schema.StringAttribute{
						MarkdownDescription: "Recipient domain the policy is for, or the relay's host.",
						Required:            true,
					},
					"require_tls": schema.BoolAttribute{
						MarkdownDescription: "Never deliver without STARTTLS. Defaults to `false`.",
						Optional:            true,
						Computed:            true,
						Default:             booldefault.StaticBool(false),
					},
					"verify_certificate": schema.BoolAttribute{
						MarkdownDescription: "Require a certificate from a trusted CA valid for the MX host name. Defaults to `false`.",
						Optional:            true,
						Computed:            true,
						Default:             booldefault.StaticBool(false),
					},
					"fingerprints_sha256": schema.ListAttribute{
						MarkdownDescription: "Pin the peer's leaf certificate: its SHA-256 fingerprint (keytool's " +
							"`AB:CD:...` notation, as `mailstack_keystore.fingerprint_sha256` gives it, or plain hex) must " +
							"be one of these; CA and name are then not checked. List two while rotating.",
						Optional:    true,
						ElementType: types.StringType,
					},
				},
			},
		},
		"queue": schema.SingleNestedBlock{
			MarkdownDescription: "The outbound queue's retry schedule, as Go durations (`5m`, `4h`, `120h`).",
			Attributes: map[string]schema.Attribute{
				"retry_min": schema.StringAttribute{
					MarkdownDescription: fmt.Sprintf("Wait after the first failed attempt; it doubles with each failure. Defaults to `%s`.", config.DefaultRetryMin),
					Optional:            true,
				},
				"retry_max": schema.StringAttribute{
					MarkdownDescription: fmt.Sprintf("Longest wait between attempts. Defaults to `%s`.", config.DefaultRetryMax),
					Optional:            true,
				},
				"give_up_after": schema.StringAttribute{
					MarkdownDescription: fmt.Sprintf("Age at which a message is returned to its sender. Defaults to `%s` (5 days).", config.DefaultGiveUpAfter),
					Optional:            true,
				},
				"delay_warning": schema.StringAttribute{
					MarkdownDescription: fmt.Sprintf("Age at which the sender is told once that a message is delayed; `0s` turns it off. Defaults to `%s`.", config.DefaultDelayWarning),
					Optional:            true,
				},
			},
		},
	}
}

// outboundSettings adds the outbound part of m to s. cfg is the
// configuration, where a write-only relay password is.
func (m *serverOutboundModel) outboundSettings(ctx context.Context, cfg *tfsdk.Config, s *config.Server) diag.Diagnostics {
	var diags diag.Diagnostics
	if r := m.Relay; r != nil {
		s.Relay = &config.Relay{Address: r.Address.ValueString(), Mode: r.Mode.ValueString(),
			Username: r.Username.ValueString(), Password: r.Password.ValueString()}
		if r.Password.IsNull() && cfg != nil {
			var wo types.String
			diags.Append(cfg.GetAttribute(ctx, path.Root("relay").AtName("password_wo"), &wo)...)
			s.Relay.Password = wo.ValueString()
		}
	}
	for _, p := range m.TLSPolicies {
		tp := config.TLSPolicy{Domain: p.Domain.ValueString(), RequireTLS: p.RequireTLS.ValueBool(), VerifyCertificate: p.VerifyCertificate.ValueBool()}
		diags.Append(p.FingerprintsSHA256.ElementsAs(ctx, &tp.FingerprintsSHA256, true)...)
		s.TLSPolicies = append(s.TLSPolicies, tp)
	}
	diags.Append(m.DNSResolvers.ElementsAs(ctx, &s.DNSResolvers, true)...)
	s.CACertificatesPEM = m.CACertificatesPEM.ValueString()
	if q := m.Queue; q != nil {
		s.Queue = config.Queue{RetryMin: q.RetryMin.ValueString(), RetryMax: q.RetryMax.ValueString(),
			GiveUpAfter: q.GiveUpAfter.ValueString(), DelayWarning: q.DelayWarning.ValueString()}
	}
	return diags
}

// readOutbound sets m from the settings the runtime reports; the relay
// password, which the runtime never returns, stays as it was.
func (m *serverOutboundModel) readOutbound(ctx context.Context, s config.Server) diag.Diagnostics {
	var diags diag.Diagnostics
	if s.Relay == nil {
		m.Relay = nil
	} else {
		prev := m.Relay
		m.Relay = &relayModel{Address: types.StringValue(s.Relay.Address), Mode: types.StringValue(s.Relay.Mode),
			Username: optionalString(s.Relay.Username), Password: types.StringNull(), PasswordWO: types.StringNull(), PasswordWOVersion: types.Int64Null()}
		if m.Relay.Mode.ValueString() == "" {
			m.Relay.Mode = types.StringValue(config.TLSStartTLS)
		}
		if prev != nil {
			m.Relay.Password, m.Relay.PasswordWOVersion = prev.Password, prev.PasswordWOVersion
		}
	}
	m.TLSPolicies = nil
	for _, p := range s.TLSPolicies {
		tp := tlsPolicyModel{Domain: types.StringValue(p.Domain), RequireTLS: types.BoolValue(p.RequireTLS),
			VerifyCertificate: types.BoolValue(p.VerifyCertificate), FingerprintsSHA256: types.ListNull(types.StringType)}
		if len(p.FingerprintsSHA256) > 0 {
			var d diag.Diagnostics
			tp.FingerprintsSHA256, d = types.ListValueFrom(ctx, types.StringType, p.FingerprintsSHA256)
			diags.Append(d...)
		}
		m.TLSPolicies = append(m.TLSPolicies, tp)
	}
	if len(s.DNSResolvers) > 0 || !m.DNSResolvers.IsNull() {
		var d diag.Diagnostics
		m.DNSResolvers, d = types.ListValueFrom(ctx, types.StringType, s.DNSResolvers)
		diags.Append(d...)
	}
	m.CACertificatesPEM = optionalString(s.CACertificatesPEM)
	if s.Queue == (config.Queue{}) {
		if m.Queue != nil && *m.Queue != (queueModel{types.StringNull(), types.StringNull(), types.StringNull(), types.StringNull()}) {
			m.Queue = nil
		}
	} else {
		m.Queue = &queueModel{optionalString(s.Queue.RetryMin), optionalString(s.Queue.RetryMax),
			optionalString(s.Queue.GiveUpAfter), optionalString(s.Queue.DelayWarning)}
	}
	return diags
}

// setQueue records the queue summary of a runtime's status; with no
// status (the runtime is down) the queue reads as empty.
func (m *serverOutboundModel) setQueue(q *control.QueueSummary) {
	if q == nil {
		q = &control.QueueSummary{}
	}
	m.QueueLength = types.Int64Value(int64(q.Length))
	m.QueueOldestSeconds = types.Int64Value(q.OldestSeconds)
}

// resolverAddr validates a dns_resolvers entry.
type resolverAddr struct{}

func (resolverAddr) Description(context.Context) string {
	return "an IP address, or IP:port"
}

func (v resolverAddr) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (resolverAddr) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := config.ResolverAddr(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid DNS Resolver", err.Error())
	}
}
