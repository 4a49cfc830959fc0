package provider

// What every certificate source of mailstack_keystore shares, as
// hashicorp/tls's common_cert.go: the settings blocks have in common
// (names, validity, renewal), ValidateConfig and ModifyPlan (keep the
// certificate, issue a new one, renew, repair drift or a damaged file,
// replace the entry for a new key), and the computed attributes of a
// certificate chain.

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

// Source block names.
const (
	sourceSelfSigned    = "self_signed"
	sourceCSR           = "csr"
	sourceLocallySigned = "locally_signed"
	sourcePEM           = "pem"
	sourceACME          = "acme"
)

// Validity and renewal defaults: a year, as keytool's -validity 365; early
// renewal a third of the validity, at most 30 days, so that no validity
// is refused for its default renewal window.
const (
	defaultValidityDays = 365
	maxDefaultEarly     = 30 * 24 * time.Hour
)

type keySpecModel struct {
	Algorithm  types.String `tfsdk:"algorithm"`
	RSABits    types.Int64  `tfsdk:"rsa_bits"`
	ECDSACurve types.String `tfsdk:"ecdsa_curve"`
}

type subjectModel struct {
	CommonName         types.String `tfsdk:"common_name"`
	OrganizationalUnit types.String `tfsdk:"organizational_unit"`
	Organization       types.String `tfsdk:"organization"`
	Locality           types.String `tfsdk:"locality"`
	Province           types.String `tfsdk:"province"`
	Country            types.String `tfsdk:"country"`
}

// nameModel is what a certificate is for: the subject and its alternative
// names (self_signed, csr, locally_signed).
type nameModel struct {
	Subject     *subjectModel `tfsdk:"subject"`
	DNSNames    types.List    `tfsdk:"dns_names"`
	IPAddresses types.List    `tfsdk:"ip_addresses"`
}

// renewalModel is the early renewal window of a certificate.
type renewalModel struct {
	EarlyRenewalDays  types.Int64 `tfsdk:"early_renewal_days"`
	EarlyRenewalHours types.Int64 `tfsdk:"early_renewal_hours"`
}

// issueModel is a certificate the provider issues itself (self_signed,
// locally_signed): names, validity, renewal and usages.
type issueModel struct {
	nameModel
	renewalModel
	ValidityDays  types.Int64 `tfsdk:"validity_days"`
	ValidityHours types.Int64 `tfsdk:"validity_hours"`
	IsCA          types.Bool  `tfsdk:"is_ca_certificate"`
	KeyUsage      types.List  `tfsdk:"key_usage"`
	ExtKeyUsage   types.List  `tfsdk:"extended_key_usage"`
}

// nameAttributes are the attributes of nameModel but the subject block.
func nameAttributes() map[string]schema.Attribute {
	return map[string]schema.Attribute{
		"dns_names": schema.ListAttribute{
			MarkdownDescription: "DNS subject alternative names (keytool's `-ext SAN=dns:...`), e.g. `[\"mail.example.com\"]`.",
			Optional:            true,
			ElementType:         types.StringType,
		},
		"ip_addresses": schema.ListAttribute{
			MarkdownDescription: "IP address subject alternative names (keytool's `-ext SAN=ip:...`), IPv4 or IPv6, for " +
				"clients that connect by address.",
			Optional:    true,
			ElementType: types.StringType,
			Validators:  []validator.List{listvalidator.ValueStringsAre(ipAddress{})},
		},
	}
}

func subjectBlock() schema.SingleNestedBlock {
	attr := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{MarkdownDescription: desc, Optional: true}
	}
	return schema.SingleNestedBlock{
		MarkdownDescription: "Distinguished name, as keytool's `-dname` (`CN=..., OU=..., O=..., L=..., ST=..., C=...`).",
		Attributes: map[string]schema.Attribute{
			"common_name":         attr("CN, e.g. `mail.example.com`."),
			"organizational_unit": attr("OU."),
			"organization":        attr("O."),
			"locality":            attr("L."),
			"province":            attr("ST."),
			"country":             attr("C, two letters."),
		},
	}
}

// renewalAttributes are renewalModel's. derived says how the window
// defaults: from the certificate the CA or the PEM brought (csr, pem), or
// from the validity (self_signed, locally_signed: then computed).
func renewalAttributes(derived bool) map[string]schema.Attribute {
	def := "Defaults to a third of `validity_days` (or of `validity_hours`, in hours), at most 30 days; it must be " +
		"less than the validity."
	if derived {
		def = "Defaults to a third of the certificate's lifetime, at most 30 days."
	}
	conflict := func(other string) []validator.Int64 {
		return []validator.Int64{int64validator.AtLeast(0), int64validator.ConflictsWith(path.MatchRelative().AtParent().AtName(other))}
	}
	return map[string]schema.Attribute{
		"early_renewal_days": schema.Int64Attribute{
			MarkdownDescription: "Renew this many days before `not_after` (see `ready_for_renewal`). " + def,
			Optional:            true,
			Computed:            !derived,
			Validators:          conflict("early_renewal_hours"),
		},
		"early_renewal_hours": schema.Int64Attribute{
			MarkdownDescription: "`early_renewal_days` in hours, for short-lived certificates; set one of them.",
			Optional:            true,
			Computed:            !derived,
			Validators:          conflict("early_renewal_days"),
		},
	}
}

// issueBlock is the schema of a source block whose certificate the
// provider issues (issueModel), with extra attributes.
func issueBlock(desc string, extra map[string]schema.Attribute) schema.ListNestedBlock {
	attrs := nameAttributes()
	for k, v := range renewalAttributes(false) {
		attrs[k] = v
	}
	for k, v := range extra {
		attrs[k] = v
	}
	attrs["validity_days"] = schema.Int64Attribute{
		MarkdownDescription: fmt.Sprintf("Days the certificate is valid from issuance (keytool's `-validity`). "+
			"Defaults to %d unless `validity_hours` is set.", defaultValidityDays),
		Optional:   true,
		Computed:   true,
		Validators: []validator.Int64{int64validator.Between(1, 36500), int64validator.ConflictsWith(path.MatchRelative().AtParent().AtName("validity_hours"))},
	}
	attrs["validity_hours"] = schema.Int64Attribute{
		MarkdownDescription: "The validity in hours instead of days, for short-lived certificates (as hashicorp/tls's " +
			"`validity_period_hours`).",
		Optional:   true,
		Validators: []validator.Int64{int64validator.Between(1, 36500*24)},
	}
	attrs["is_ca_certificate"] = schema.BoolAttribute{
		MarkdownDescription: "Make a CA certificate (basic constraints CA:TRUE, keytool's `-ext bc:c`), which can sign " +
			"the certificates of other keystores with `locally_signed`. Its key usages default to `keyCertSign`, " +
			"`cRLSign` and `digitalSignature`, with no extended key usage.",
		Optional: true,
	}
	attrs["key_usage"] = schema.ListAttribute{
		MarkdownDescription: "Key usages (keytool's `-ext KU=...`): " + quoted(keystore.KeyUsageNames()) + "; any case, " +
			"and hashicorp/tls's spellings (`digital_signature`, `cert_signing`) too. Defaults to `digitalSignature` " +
			"(and `keyEncipherment` for RSA keys) for a server certificate.",
		Optional:    true,
		ElementType: types.StringType,
		Validators:  []validator.List{listvalidator.SizeAtLeast(1), listvalidator.ValueStringsAre(usageValidator{})},
	}
	attrs["extended_key_usage"] = schema.ListAttribute{
		MarkdownDescription: "Extended key usages (keytool's `-ext EKU=...`): " + quoted(keystore.ExtKeyUsageNames()) +
			"; any case, and hashicorp/tls's spellings (`server_auth`). Defaults to `serverAuth`, none for a CA; " +
			"`[]` means none.",
		Optional:    true,
		ElementType: types.StringType,
		Validators:  []validator.List{listvalidator.ValueStringsAre(usageValidator{extended: true})},
	}
	return schema.ListNestedBlock{
		MarkdownDescription: desc,
		Validators:          []validator.List{listvalidator.SizeAtMost(1)},
		NestedObject: schema.NestedBlockObject{
			Attributes: attrs,
			Blocks:     map[string]schema.Block{"subject": subjectBlock()},
		},
	}
}

func (r *keystoreResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var blocks []string
	for _, name := range sourceBlocks() {
		var l types.List
		resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root(name), &l)...)
		if l.IsUnknown() {
			return // dynamic blocks: checked once known
		}
		if len(l.Elements()) > 0 {
			blocks = append(blocks, name)
		}
	}
	if resp.Diagnostics.HasError() {
		return
	}
	if len(blocks) != 1 {
		resp.Diagnostics.AddError("Exactly One Certificate Source Required",
			fmt.Sprintf("A mailstack_keystore needs exactly one of the blocks %s; this one has %d (%s).",
				strings.Join(sourceBlocks(), ", "), len(blocks), strings.Join(blocks, ", ")))
		return
	}
	var m keystoreModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	src := m.source()
	src.validate(ctx, &m, &resp.Diagnostics)
	m.Key.validate(src, &resp.Diagnostics)
	if src.block() != sourceCSR && !m.CertificateChainPEM.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("certificate_chain_pem"), "CA Reply Without CSR",
			"certificate_chain_pem is the CA's reply to a certificate signing request: it needs the csr block.")
	}
	if v := m.CertificateChainPEM; !v.IsNull() && !v.IsUnknown() {
		if _, err := keystore.ParseCertificatesPEM([]byte(v.ValueString())); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("certificate_chain_pem"), "Invalid CA Reply", err.Error())
		}
	}
	if keystoreTypeEnum.normal(m.Type.ValueString()) == string(keystore.PKCS12) && !m.KeyPassword.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("key_password"), "Key Password Not Supported for PKCS#12",
			"PKCS#12 keystores protect keys with the store password (keytool ignores -keypass for them); remove key_password or use type = \"JKS\".")
	}
}

// validate checks that the key block names only what its algorithm uses.
func (k *keySpecModel) validate(src certificateSource, diags *diag.Diagnostics) {
	if k == nil || k.Algorithm.IsUnknown() {
		return
	}
	if src.block() == sourcePEM {
		diags.AddAttributeError(path.Root("key"), "Key Block With PEM", "The key of a pem block is its private_key_pem; remove the key block.")
		return
	}
	alg := keyAlgorithmEnum.normal(cmpOr(k.Algorithm.ValueString(), keystore.RSA))
	if !k.RSABits.IsNull() && !k.RSABits.IsUnknown() && alg != keystore.RSA {
		diags.AddAttributeError(path.Root("key").AtName("rsa_bits"), "RSA Size for Another Key",
			fmt.Sprintf("rsa_bits is only for RSA keys, and this key is %s: remove rsa_bits.", k.Algorithm.ValueString()))
	}
	if !k.ECDSACurve.IsNull() && !k.ECDSACurve.IsUnknown() && alg != keystore.ECDSA {
		diags.AddAttributeError(path.Root("key").AtName("ecdsa_curve"), "Curve for Another Key",
			fmt.Sprintf("ecdsa_curve is only for ECDSA keys, and this key is %s: remove ecdsa_curve.", k.Algorithm.ValueString()))
	}
}

// validate checks an issued certificate's validity against its renewal
// window, with the defaults applied.
func (s *issueModel) validate(at path.Path, diags *diag.Diagnostics) {
	for _, v := range []types.Int64{s.ValidityDays, s.ValidityHours, s.EarlyRenewalDays, s.EarlyRenewalHours} {
		if v.IsUnknown() {
			return
		}
	}
	d := *s
	d.defaults(s)
	validity, early := d.validity(), d.window(0)
	if early >= validity {
		name := "early_renewal_days"
		if !s.EarlyRenewalHours.IsNull() {
			name = "early_renewal_hours"
		}
		diags.AddAttributeError(at.AtName(name), "Early Renewal Not Before Expiry",
			fmt.Sprintf("The early renewal window (%s) must be shorter than the validity (%s), or every plan would "+
				"propose a new certificate.", early, validity))
	}
}

// defaults sets the computed defaults of an issued certificate from its
// configuration c: validity_days 365 unless validity_hours is set, and an
// early renewal window of a third of the validity (at most 30 days), in
// the validity's unit, unless one is set.
func (s *issueModel) defaults(c *issueModel) {
	s.ValidityDays = c.ValidityDays
	if c.ValidityDays.IsNull() && c.ValidityHours.IsNull() {
		s.ValidityDays = types.Int64Value(defaultValidityDays)
	}
	s.EarlyRenewalDays, s.EarlyRenewalHours = c.EarlyRenewalDays, c.EarlyRenewalHours
	switch {
	case !c.EarlyRenewalDays.IsNull() || !c.EarlyRenewalHours.IsNull():
	case s.ValidityDays.IsUnknown() || c.ValidityHours.IsUnknown():
		s.EarlyRenewalDays, s.EarlyRenewalHours = types.Int64Unknown(), types.Int64Unknown()
	case !s.ValidityDays.IsNull():
		days := s.ValidityDays.ValueInt64()
		s.EarlyRenewalDays = types.Int64Value(min(days/3, int64(maxDefaultEarly/(24*time.Hour))))
	default:
		hours := c.ValidityHours.ValueInt64()
		s.EarlyRenewalHours = types.Int64Value(min(hours/3, int64(maxDefaultEarly/time.Hour)))
	}
}

// validity is how long the certificate is issued for.
func (s *issueModel) validity() time.Duration {
	if !s.ValidityHours.IsNull() {
		return time.Duration(s.ValidityHours.ValueInt64()) * time.Hour
	}
	return time.Duration(s.ValidityDays.ValueInt64()) * 24 * time.Hour
}

// window is the early renewal window: as set, else a third of lifetime
// (at most 30 days).
func (r *renewalModel) window(lifetime time.Duration) time.Duration {
	switch {
	case !r.EarlyRenewalDays.IsNull():
		return time.Duration(r.EarlyRenewalDays.ValueInt64()) * 24 * time.Hour
	case !r.EarlyRenewalHours.IsNull():
		return time.Duration(r.EarlyRenewalHours.ValueInt64()) * time.Hour
	}
	return min(lifetime/3, maxDefaultEarly)
}

// lifetime is a certificate's validity period.
func lifetime(c *x509.Certificate) time.Duration { return c.NotAfter.Sub(c.NotBefore) }

// request is the certificate an issueModel asks for, with its usages,
// valid from now.
func (s *issueModel) request(ctx context.Context, now time.Time) (keystore.CertificateRequest, error) {
	req, diags := s.nameModel.request(ctx, now, s.validity())
	if diags.HasError() {
		return req, fmt.Errorf("reading the names of the certificate: %v", diags)
	}
	req.IsCA = s.IsCA.ValueBool()
	var names []string
	if !s.KeyUsage.IsNull() {
		s.KeyUsage.ElementsAs(ctx, &names, false)
		for _, n := range names {
			u, _, err := keystore.ParseKeyUsage(n)
			if err != nil {
				return req, err
			}
			req.KeyUsage |= u
		}
	}
	if !s.ExtKeyUsage.IsNull() {
		names = nil
		s.ExtKeyUsage.ElementsAs(ctx, &names, false)
		req.ExtKeyUsage = []x509.ExtKeyUsage{}
		for _, n := range names {
			u, _, err := keystore.ParseExtKeyUsage(n)
			if err != nil {
				return req, err
			}
			req.ExtKeyUsage = append(req.ExtKeyUsage, u)
		}
	}
	return req, nil
}

// changed reports whether an issued certificate's settings differ between
// plan and state in a way that needs a new certificate.
func (s *issueModel) changed(prior *issueModel) bool {
	return s.nameModel.changed(&prior.nameModel) || s.validity() != prior.validity() ||
		s.IsCA.ValueBool() != prior.IsCA.ValueBool() ||
		usages(s.KeyUsage, false) != usages(prior.KeyUsage, false) || usages(s.ExtKeyUsage, true) != usages(prior.ExtKeyUsage, true)
}

// usages names a usage list canonically, so that another spelling of the
// same usages is no change; null (the default) is "".
func usages(l types.List, extended bool) string {
	if l.IsNull() || l.IsUnknown() {
		return fmt.Sprint(l.IsUnknown())
	}
	var names []string
	for _, v := range l.Elements() {
		s, ok := v.(types.String)
		if !ok || s.IsUnknown() {
			return "unknown"
		}
		var canonical string
		if extended {
			_, canonical, _ = keystore.ParseExtKeyUsage(s.ValueString())
		} else {
			_, canonical, _ = keystore.ParseKeyUsage(s.ValueString())
		}
		names = append(names, canonical)
	}
	return "[" + strings.Join(names, ",") + "]"
}

// changed reports whether the names differ.
func (n *nameModel) changed(prior *nameModel) bool {
	return !n.DNSNames.Equal(prior.DNSNames) || !n.IPAddresses.Equal(prior.IPAddresses) ||
		n.Subject.toKeystore() != prior.Subject.toKeystore()
}

// refresh reads the names back from the certificate on disk, so that one
// issued outside Terraform shows as a difference.
func (n *nameModel) refresh(ctx context.Context, leaf *x509.Certificate) diag.Diagnostics {
	n.Subject = subjectFrom(leaf, n.Subject)
	var diags diag.Diagnostics
	n.DNSNames, diags = listFrom(ctx, leaf.DNSNames, n.DNSNames, func(s string) string { return s })
	ips, d := listFrom(ctx, leaf.IPAddresses, n.IPAddresses, net.IP.String)
	diags.Append(d...)
	if !sameIPs(ctx, ips, n.IPAddresses) {
		n.IPAddresses = ips
	}
	return diags
}

// ModifyPlan works out what apply will do to the entry: keep the
// certificate, issue a new one (settings changed, due for renewal, drift
// on disk, a damaged file), or replace the resource when the key changes
// or was replaced outside Terraform. The sources say what their settings
// ask for (certificateSource.plan); the rest is the same for all.
func (r *keystoreResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		r.planDestroy(ctx, req, resp)
		return
	}
	var plan, config keystoreModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	src := plan.source()
	if src == nil {
		return
	}
	plan.applyDefaults(&config)
	p := &planRequest{plan: &plan, config: &req.Config, r: r, now: r.now(), diags: &resp.Diagnostics}
	if req.State.Raw.IsNull() {
		if plan.DeleteOnDestroy.IsUnknown() {
			plan.DeleteOnDestroy = types.BoolValue(true)
		}
		r.checkNewEntry(ctx, p)
		src.plan(ctx, p)
		if !resp.Diagnostics.HasError() {
			resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		}
		return
	}
	var state keystoreModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	applied, diags := getApplied(ctx, req.Private)
	resp.Diagnostics.Append(diags...)
	damaged, diags := getDamaged(ctx, req.Private)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	p.state, p.leaf = &state, parseCertificatePEM(state.CertificatePEM.ValueString())
	var want planned
	switch prior := state.source(); {
	case prior == nil:
	case damaged:
		want.certificate, want.csr = true, true // a new file: new key, certificate and CSR
	case prior.block() != src.block() && (src.block() == sourceACME || prior.block() == sourceACME):
		// Between the runtime's entry and one the provider writes.
		plan.unknownCertificate()
		resp.RequiresReplace = append(resp.RequiresReplace, path.Root(src.block()))
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	default:
		want = src.plan(ctx, p)
	}
	if resp.Diagnostics.HasError() {
		return
	}
	_, runtimeOwned := src.(runtimeSource)
	keyReplaced := applied.SPKI != "" && p.leaf != nil && spkiSHA256(p.leaf) != applied.SPKI
	if src.keyFromBlock() && !damaged && (want.newKey || keyReplaced) {
		if !csrReplyForNewKey(&plan, alias(&plan), keyReplaced, &resp.Diagnostics) {
			return
		}
		plan.unknownCertificate()
		resp.RequiresReplace = append(resp.RequiresReplace, path.Root("certificate_pem"))
		if want.newKey {
			resp.RequiresReplace = append(resp.RequiresReplace, path.Root("key"))
		}
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}
	if !runtimeOwned && applied.Fingerprint != "" && state.Fingerprint.ValueString() != applied.Fingerprint {
		// The certificate on disk is not the one Terraform installed.
		want.certificate = true
	}
	due := false
	if before, renews := src.renewal(&plan, p.leaf); before > 0 && p.leaf != nil && !p.now.Add(before).Before(p.leaf.NotAfter) {
		if renews {
			want.certificate = true
		} else {
			due = true
			resp.Diagnostics.AddWarning("Certificate Due for Renewal",
				fmt.Sprintf("The certificate of alias %q in %s ends on %s, within its early renewal window. %s",
					alias(&plan), plan.Path.ValueString(), rfc3339(p.leaf.NotAfter), renewalHint(src)))
		}
	}
	plan.planCertificate(want, &state, due)
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// renewalHint says who renews a certificate the provider does not.
func renewalHint(src certificateSource) string {
	if src.block() == sourceCSR {
		return "Have csr_pem signed again and set the CA's reply in certificate_chain_pem."
	}
	return "Set the renewed certificate (and its key) in the pem block."
}

// csrReplyForNewKey stops a plan that would install a CA reply into a new
// key: the reply belongs to the old one. It reports whether to go on.
func csrReplyForNewKey(plan *keystoreModel, alias string, keyReplaced bool, diags *diag.Diagnostics) bool {
	if plan.source().block() != sourceCSR || plan.CertificateChainPEM.IsNull() {
		return true
	}
	why := "The key block changes, so apply would generate a new key."
	if keyReplaced {
		why = "The private key on disk was replaced outside Terraform, so apply would generate a new key."
	}
	diags.AddAttributeError(path.Root("certificate_chain_pem"), "CA Reply For a Replaced Key",
		fmt.Sprintf("%s The CA reply in certificate_chain_pem belongs to the old key of alias %q in %s. Remove "+
			"certificate_chain_pem and apply, have the new csr_pem signed, then set the new reply.", why, alias, plan.Path.ValueString()))
	return false
}

func alias(m *keystoreModel) string { return m.Alias.ValueString() }

// planDestroy says in the plan when destroy leaves the entry on disk.
func (r *keystoreResource) planDestroy(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	var state keystoreModel
	if resp.Diagnostics.Append(req.State.Get(ctx, &state)...); resp.Diagnostics.HasError() {
		return
	}
	if !state.DeleteOnDestroy.ValueBool() {
		resp.Diagnostics.AddWarning("Keystore Entry Kept on Destroy",
			fmt.Sprintf("Destroy leaves the entry %q and the keystore %s on disk: this resource adopted them (terraform "+
				"import) or has delete_on_destroy = false. Set delete_on_destroy = true and apply first to delete them.",
				alias(&state), state.Path.ValueString()))
	}
}

// planRequest is what a source's plan works from.
type planRequest struct {
	plan   *keystoreModel
	state  *keystoreModel // nil on create
	config *tfsdk.Config
	// leaf is the certificate in state.
	leaf  *x509.Certificate
	r     *keystoreResource
	now   time.Time
	diags *diag.Diagnostics
}

// applyDefaults sets the computed defaults that depend on other settings:
// the key's size or curve, validity and renewal windows.
func (m *keystoreModel) applyDefaults(c *keystoreModel) {
	if m.Key != nil && c.Key != nil && !m.Key.Algorithm.IsUnknown() {
		alg := keyAlgorithmEnum.normal(m.Key.Algorithm.ValueString())
		m.Key.RSABits, m.Key.ECDSACurve = c.Key.RSABits, c.Key.ECDSACurve
		if c.Key.RSABits.IsNull() && alg == keystore.RSA {
			m.Key.RSABits = types.Int64Value(2048)
		}
		if c.Key.ECDSACurve.IsNull() && alg == keystore.ECDSA {
			m.Key.ECDSACurve = types.StringValue(keystore.P256)
		}
	}
	for i := range m.SelfSigned {
		if i < len(c.SelfSigned) {
			m.SelfSigned[i].defaults(&c.SelfSigned[i].issueModel)
		}
	}
	for i := range m.LocallySigned {
		if i < len(c.LocallySigned) {
			m.LocallySigned[i].defaults(&c.LocallySigned[i].issueModel)
		}
	}
}

// planCertificate plans a new certificate or keeps the one in state.
func (m *keystoreModel) planCertificate(want planned, state *keystoreModel, due bool) {
	if want.certificate {
		m.unknownCertificate()
	} else {
		m.CertificatePEM, m.ChainPEM, m.IssuerPEM = state.CertificatePEM, state.ChainPEM, state.IssuerPEM
		m.Fingerprint, m.NotBefore, m.NotAfter = state.Fingerprint, state.NotBefore, state.NotAfter
		m.ReadyForRenewal = types.BoolValue(due)
	}
	switch {
	case m.source().block() != sourceCSR:
		m.CSRPEM = types.StringNull()
	case want.csr || state.CSRPEM.IsNull():
		m.CSRPEM = types.StringUnknown()
	default:
		m.CSRPEM = state.CSRPEM
	}
}

// unknownCertificate plans a new certificate.
func (m *keystoreModel) unknownCertificate() {
	for _, s := range []*types.String{&m.CertificatePEM, &m.ChainPEM, &m.IssuerPEM, &m.Fingerprint, &m.NotBefore, &m.NotAfter} {
		*s = types.StringUnknown()
	}
	m.ReadyForRenewal = types.BoolValue(false)
	m.CSRPEM = types.StringNull()
	if m.source().block() == sourceCSR {
		m.CSRPEM = types.StringUnknown()
	}
}

// setChain records the computed attributes of the entry's chain.
func (m *keystoreModel) setChain(chain []*x509.Certificate, now time.Time) {
	leaf := chain[0]
	m.CertificatePEM = types.StringValue(string(keystore.EncodeCertificatesPEM(chain[:1])))
	m.ChainPEM = types.StringValue(string(keystore.EncodeCertificatesPEM(chain)))
	switch {
	case len(chain) > 1:
		m.IssuerPEM = types.StringValue(string(keystore.EncodeCertificatesPEM(chain[1:])))
	case keystore.IsSelfSigned(leaf):
		m.IssuerPEM = m.CertificatePEM
	default:
		m.IssuerPEM = types.StringNull() // a leaf without its issuer
	}
	m.Fingerprint = types.StringValue(keystore.Fingerprint(leaf))
	m.NotBefore = types.StringValue(rfc3339(leaf.NotBefore))
	m.NotAfter = types.StringValue(rfc3339(leaf.NotAfter))
	before, _ := m.source().renewal(m, leaf)
	m.ReadyForRenewal = types.BoolValue(before > 0 && !now.Add(before).Before(leaf.NotAfter))
}

// keySpec is the key block as internal/keystore takes it.
func (m *keystoreModel) keySpec() keystore.KeySpec {
	if m.Key == nil {
		return keystore.KeySpec{}
	}
	return keystore.KeySpec{Algorithm: m.Key.Algorithm.ValueString(), RSABits: int(m.Key.RSABits.ValueInt64()), ECDSACurve: m.Key.ECDSACurve.ValueString()}
}

// known reports whether the key block's values are all known (a missing
// block is: it means the defaults).
func (k *keySpecModel) known() bool {
	return k == nil || !k.Algorithm.IsUnknown() && !k.RSABits.IsUnknown() && !k.ECDSACurve.IsUnknown()
}

// effectiveKey names the key the model asks for, defaults applied and
// spellings normalized: "RSA-2048", "ECDSA-P256", "Ed25519".
func (m *keystoreModel) effectiveKey() string {
	s := m.keySpec()
	switch alg := keyAlgorithmEnum.normal(cmpOr(s.Algorithm, keystore.RSA)); alg {
	case keystore.ECDSA:
		return "ECDSA-" + ecdsaCurveEnum.normal(cmpOr(s.ECDSACurve, keystore.P256))
	case keystore.RSA:
		return fmt.Sprintf("RSA-%d", cmp0(s.RSABits, 2048))
	default:
		return alg
	}
}

// keyChanged reports whether plan asks for another key than state has.
func keyChanged(plan, state *keystoreModel) bool {
	return !plan.Key.known() || plan.effectiveKey() != state.effectiveKey()
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func cmp0(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

// describeKey reports a public key as the key block describes it, in the
// spelling of prior where it names the same.
func describeKey(pub crypto.PublicKey, prior *keySpecModel) *keySpecModel {
	spec, _ := keystore.SpecOf(pub)
	m := &keySpecModel{Algorithm: types.StringValue(spec.Algorithm), RSABits: types.Int64Null(), ECDSACurve: types.StringNull()}
	if spec.Algorithm == "" {
		alg, _ := keyDescription(pub)
		m.Algorithm = types.StringValue(alg)
	}
	if spec.Algorithm == keystore.RSA {
		m.RSABits = types.Int64Value(int64(spec.RSABits))
	}
	if spec.ECDSACurve != "" {
		m.ECDSACurve = types.StringValue(spec.ECDSACurve)
	}
	if prior != nil {
		m.Algorithm = keyAlgorithmEnum.keep(prior.Algorithm, m.Algorithm.ValueString())
		if !m.ECDSACurve.IsNull() {
			m.ECDSACurve = ecdsaCurveEnum.keep(prior.ECDSACurve, m.ECDSACurve.ValueString())
		}
	}
	return m
}

func (s *subjectModel) toKeystore() keystore.Subject {
	if s == nil {
		return keystore.Subject{}
	}
	return keystore.Subject{
		CommonName:         s.CommonName.ValueString(),
		OrganizationalUnit: s.OrganizationalUnit.ValueString(),
		Organization:       s.Organization.ValueString(),
		Locality:           s.Locality.ValueString(),
		Province:           s.Province.ValueString(),
		Country:            s.Country.ValueString(),
	}
}

// subjectFrom reads the subject of cert. Empty fields are null; an empty
// subject stays null when prior was null (no subject block).
func subjectFrom(cert *x509.Certificate, prior *subjectModel) *subjectModel {
	first := func(v []string) string {
		if len(v) == 0 {
			return ""
		}
		return v[0]
	}
	n := cert.Subject
	s := &subjectModel{
		CommonName:         optionalString(n.CommonName),
		OrganizationalUnit: optionalString(first(n.OrganizationalUnit)),
		Organization:       optionalString(first(n.Organization)),
		Locality:           optionalString(first(n.Locality)),
		Province:           optionalString(first(n.Province)),
		Country:            optionalString(first(n.Country)),
	}
	if prior == nil && s.toKeystore() == (keystore.Subject{}) {
		return nil
	}
	return s
}

// listFrom lists a certificate's names as strings; null when it has none
// and the prior value was null.
func listFrom[T any](ctx context.Context, vals []T, prior types.List, str func(T) string) (types.List, diag.Diagnostics) {
	if len(vals) == 0 && prior.IsNull() {
		return prior, nil
	}
	s := make([]string, len(vals))
	for i, v := range vals {
		s[i] = str(v)
	}
	return types.ListValueFrom(ctx, types.StringType, s)
}

// ipAddresses parses a list of IP addresses (validated by the schema).
func ipAddresses(ctx context.Context, l types.List) ([]net.IP, diag.Diagnostics) {
	var s []string
	diags := l.ElementsAs(ctx, &s, false)
	out := make([]net.IP, 0, len(s))
	for _, a := range s {
		if ip := net.ParseIP(a); ip != nil {
			out = append(out, ip)
		}
	}
	return out, diags
}

// sameIPs reports whether two lists name the same addresses in the same
// order, however they are written ("::1" and "0:0::1").
func sameIPs(ctx context.Context, a, b types.List) bool {
	if a.IsNull() != b.IsNull() || a.IsUnknown() || b.IsUnknown() {
		return false
	}
	x, _ := ipAddresses(ctx, a)
	y, _ := ipAddresses(ctx, b)
	if len(x) != len(y) || len(x) != len(a.Elements()) || len(y) != len(b.Elements()) {
		return false
	}
	for i := range x {
		if !x[i].Equal(y[i]) {
			return false
		}
	}
	return true
}

// usageValidator accepts key usage (or extended key usage) names.
type usageValidator struct{ extended bool }

var _ validator.String = usageValidator{}

func (v usageValidator) Description(context.Context) string {
	if v.extended {
		return "must be an extended key usage: " + strings.Join(keystore.ExtKeyUsageNames(), ", ")
	}
	return "must be a key usage: " + strings.Join(keystore.KeyUsageNames(), ", ")
}

func (v usageValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v usageValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	var err error
	if v.extended {
		_, _, err = keystore.ParseExtKeyUsage(req.ConfigValue.ValueString())
	} else {
		_, _, err = keystore.ParseKeyUsage(req.ConfigValue.ValueString())
	}
	if err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid Key Usage", err.Error())
	}
}

// Private state: what the resource last wrote, and whether Read found the
// file damaged.
const (
	// appliedKey remembers the certificate and key the resource last wrote
	// (or adopted), to tell them apart from replacements made on disk
	// outside Terraform.
	appliedKey = "applied"
	// damagedKey is set while the file is no longer a keystore.
	damagedKey = "damaged"
)

type appliedEntry struct {
	Fingerprint string `json:"fingerprint_sha256"`
	SPKI        string `json:"spki_sha256"`
}

// privateState is what Create, Read, Update and ModifyPlan get as Private.
type privateState interface {
	GetKey(ctx context.Context, key string) ([]byte, diag.Diagnostics)
	SetKey(ctx context.Context, key string, value []byte) diag.Diagnostics
}

func getPrivate(ctx context.Context, p privateState, key string, v any) diag.Diagnostics {
	if p == nil {
		return nil
	}
	raw, diags := p.GetKey(ctx, key)
	if diags.HasError() || len(raw) == 0 {
		return diags
	}
	if err := json.Unmarshal(raw, v); err != nil {
		diags.AddError("Invalid Private State", fmt.Sprintf("Private state %q: %v. This is always a bug in the provider.", key, err))
	}
	return diags
}

func setPrivate(ctx context.Context, p privateState, key string, v any) diag.Diagnostics {
	raw, err := json.Marshal(v)
	if err != nil {
		var diags diag.Diagnostics
		diags.AddError("Unable to Record Private State", err.Error())
		return diags
	}
	return p.SetKey(ctx, key, raw)
}

func getApplied(ctx context.Context, p privateState) (appliedEntry, diag.Diagnostics) {
	var a appliedEntry
	return a, getPrivate(ctx, p, appliedKey, &a)
}

func setApplied(ctx context.Context, p privateState, cert *x509.Certificate) diag.Diagnostics {
	return setPrivate(ctx, p, appliedKey, appliedEntry{Fingerprint: keystore.Fingerprint(cert), SPKI: spkiSHA256(cert)})
}

func getDamaged(ctx context.Context, p privateState) (bool, diag.Diagnostics) {
	var d bool
	return d, getPrivate(ctx, p, damagedKey, &d)
}

func setDamaged(ctx context.Context, p privateState, damaged bool) diag.Diagnostics {
	return setPrivate(ctx, p, damagedKey, damaged)
}

// parseCertificatePEM parses the first certificate of s, nil if none.
func parseCertificatePEM(s string) *x509.Certificate {
	certs, err := keystore.ParseCertificatesPEM([]byte(s))
	if err != nil {
		return nil
	}
	return certs[0]
}
