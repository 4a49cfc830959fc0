package provider

// The acme certificate source of mailstack_keystore. The mail runtime of
// acme.server_id owns the certificate: it obtains it from the ACME CA,
// writes it into the keystore's private key entry and renews it
// (runtime/acme). The resource hands the runtime its settings through the
// control API (PUT /v1/acme/{id}, which returns once the certificate is in
// the keystore) and reads the certificate back from the keystore file, as
// for the other sources. Renewals are the runtime's business, so they
// refresh the state without a plan diff; a runtime that no longer keeps
// the keystore (stopped, config or state folder lost) shows as
// `renewing = false`, which apply repairs, keeping the certificate the
// keystore holds while it is current for the settings.

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/runtime/acme"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
)

// acmeSource is the acme block.
type acmeSource struct{}

var _ runtimeSource = acmeSource{}

func (acmeSource) block() string { return sourceACME }

func (acmeSource) schema() schema.Block { return acmeBlock() }

func (acmeSource) keyFromBlock() bool { return false }

// renewal: the runtime renews by itself; Terraform never plans it.
func (acmeSource) renewal(*keystoreModel, *x509.Certificate) (time.Duration, bool) { return 0, false }

// acmeModel is the acme block.
type acmeModel struct {
	ServerID          types.String `tfsdk:"server_id"`
	Domains           types.List   `tfsdk:"domains"`
	Email             types.String `tfsdk:"email"`
	DirectoryURL      types.String `tfsdk:"directory_url"`
	CACertificatesPEM types.String `tfsdk:"ca_certificates_pem"`
	Challenge         types.String `tfsdk:"challenge"`
	ChallengeAddress  types.String `tfsdk:"challenge_address"`
	RenewBeforeDays   types.Int64  `tfsdk:"renew_before_days"`
	EABKeyID          types.String `tfsdk:"eab_key_id"`
	EABHMACKey        types.String `tfsdk:"eab_hmac_key"`
	Renewing          types.Bool   `tfsdk:"renewing"`
}

func acmeBlock() schema.ListNestedBlock {
	optional := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{MarkdownDescription: desc, Optional: true,
			Validators: []validator.String{stringvalidator.LengthAtLeast(1)}}
	}
	return schema.ListNestedBlock{
		MarkdownDescription: "Have the mail runtime of `server_id` obtain the certificate from an ACME CA (Let's " +
			"Encrypt, step-ca, ...) and renew it. Apply returns once the CA issued the certificate and it is in the " +
			"keystore's private key entry (full chain, with a fresh key of the `key` block's kind), so Java servers " +
			"reading the file get it as well as the runtime's listeners. The runtime renews it `renew_before_days` " +
			"before it expires and writes each renewal into the keystore; the listeners serve it from their next " +
			"handshake. Renewals refresh `certificate_pem`, `fingerprint_sha256` and `not_after` without a plan " +
			"diff. Changing `domains`, `directory_url` or the `key` block orders a new certificate in place; the " +
			"other settings change in place without one. Registering the account accepts the CA's terms of service.",
		Validators: []validator.List{listvalidator.SizeAtMost(1)},
		NestedObject: schema.NestedBlockObject{
			Attributes: map[string]schema.Attribute{
				"server_id": schema.StringAttribute{
					MarkdownDescription: "`id` of the `mailstack_server` whose runtime obtains and renews the certificate.",
					Required:            true,
					Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
				},
				"domains": schema.ListAttribute{
					MarkdownDescription: "DNS names the certificate covers (at most 100; the first is also its common " +
						"name). Each must resolve to this host for the CA, which validates it on port 80 (`http-01`) or " +
						"443 (`tls-alpn-01`). No wildcards or IP addresses.",
					Required:    true,
					ElementType: types.StringType,
					Validators:  []validator.List{listvalidator.SizeBetween(1, acme.MaxDomains)},
				},
				"email": optional("Contact address of the ACME account, for the CA's expiry notices."),
				"directory_url": schema.StringAttribute{
					MarkdownDescription: "The CA's ACME directory. Defaults to Let's Encrypt production (`" +
						acme.LetsEncryptProduction + "`); try things out against staging (`" + acme.LetsEncryptStaging +
						"`), whose rate limits are generous.",
					Optional:   true,
					Computed:   true,
					Default:    stringdefault.StaticString(acme.DefaultDirectoryURL),
					Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
				},
				"ca_certificates_pem": optional("Root certificates, PEM, trusted for the directory's HTTPS besides " +
					"the system roots: for a private ACME CA such as step-ca or Pebble."),
				"challenge": schema.StringAttribute{
					MarkdownDescription: "Challenge the runtime answers: " + quoted(acme.Challenges) + ". Defaults to `" +
						acme.DefaultChallenge + "`.",
					Optional:   true,
					Computed:   true,
					Default:    stringdefault.StaticString(acme.DefaultChallenge),
					Validators: []validator.String{stringvalidator.OneOf(acme.Challenges...)},
				},
				"challenge_address": optional("Where the runtime listens for the CA's validation, `host:port` with " +
					"an IP address or an empty host (all addresses). Defaults to `" + acme.DefaultHTTP01Address +
					"` for `http-01` and `" + acme.DefaultTLSALPN01Address + "` for `tls-alpn-01`; another port needs " +
					"a port forward from those. The listener answers only for `domains`."),
				"renew_before_days": schema.Int64Attribute{
					MarkdownDescription: fmt.Sprintf("Renew this many days before the certificate expires. Defaults "+
						"to %d. A certificate that lives shorter than 1.5 times that is renewed once a third of its "+
						"lifetime has passed.", acme.DefaultRenewBeforeDays),
					Optional:   true,
					Computed:   true,
					Default:    int64default.StaticInt64(acme.DefaultRenewBeforeDays),
					Validators: []validator.Int64{int64validator.Between(1, acme.MaxRenewBeforeDays)},
				},
				"eab_key_id": optional("External account binding key id, for CAs that require one " +
					"(RFC 8555 section 7.3.4). Set with `eab_hmac_key`."),
				"eab_hmac_key": schema.StringAttribute{
					MarkdownDescription: "External account binding MAC key, base64url, as the CA hands it out.",
					Optional:            true,
					Sensitive:           true,
					Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
				},
				"renewing": schema.BoolAttribute{
					MarkdownDescription: "True while the runtime keeps this keystore with these settings and renews " +
						"it. Read sets it false when the runtime does not answer or has forgotten the keystore; " +
						"plan then shows the repair, which keeps the certificate the keystore holds while it names " +
						"the `domains`, has a key of the `key` block's kind and is not due for renewal, and orders a " +
						"new one otherwise.",
					Computed:      true,
					PlanModifiers: []planmodifier.Bool{alwaysTrue{}},
				},
			},
		},
	}
}

// acmeConfig is the runtime's config for the acme block: what PUT
// /v1/acme/{id} takes. Unset optional fields stay zero (the runtime's
// defaults).
//
// password is the store password; abs makes the keystore path absolute on
// the host, as the runtime needs.
func (m *keystoreModel) acmeConfig(ctx context.Context, password string, abs func(string) (string, error)) (acme.Config, diag.Diagnostics) {
	a := m.ACME[0]
	var domains []string
	diags := a.Domains.ElementsAs(ctx, &domains, false)
	ksPath, err := abs(m.Path.ValueString())
	if err != nil {
		diags.AddAttributeError(path.Root("path"), "Invalid Keystore Path", err.Error())
	}
	spec := m.keySpec()
	key := acme.Key{Algorithm: keyAlgorithmEnum.normal(spec.Algorithm)}
	if key.Algorithm == keystore.ECDSA {
		key.ECDSACurve = ecdsaCurveEnum.normal(spec.ECDSACurve)
	} else {
		key.RSABits = spec.RSABits
	}
	return acme.Config{
		KeystorePath:      ksPath,
		KeystoreType:      keystoreTypeEnum.normal(m.Type.ValueString()),
		KeystorePassword:  password,
		Alias:             m.Alias.ValueString(),
		Key:               key,
		Domains:           domains,
		Email:             a.Email.ValueString(),
		DirectoryURL:      a.DirectoryURL.ValueString(),
		CACertificatesPEM: a.CACertificatesPEM.ValueString(),
		Challenge:         a.Challenge.ValueString(),
		ChallengeAddress:  a.ChallengeAddress.ValueString(),
		RenewBeforeDays:   int(a.RenewBeforeDays.ValueInt64()),
		EABKeyID:          a.EABKeyID.ValueString(),
		EABHMACKey:        a.EABHMACKey.ValueString(),
	}, diags
}

// acmeID is the runtime's id of the keystore entry.
func acmeID(cfg acme.Config) string { return acme.IDFor(cfg.KeystorePath, cfg.Alias) }

// validate checks the acme block with the runtime's own rules, so that
// what the runtime would refuse fails at plan time. Unknown values are
// checked once known.
func (acmeSource) validate(ctx context.Context, m *keystoreModel, diags *diag.Diagnostics) {
	if !m.KeyPassword.IsNull() {
		diags.AddAttributeError(path.Root("key_password"), "Key Password Not Supported With ACME",
			"The runtime protects the key of an ACME certificate with the store password, as it writes a new key "+
				"with every renewal; remove key_password.")
	}
	a := m.ACME[0]
	for _, v := range []interface{ IsUnknown() bool }{a.Domains, a.Email, a.DirectoryURL, a.CACertificatesPEM,
		a.Challenge, a.ChallengeAddress, a.RenewBeforeDays, a.EABKeyID, a.EABHMACKey, m.Type} {
		if v.IsUnknown() {
			return
		}
	}
	if !m.Key.known() {
		return
	}
	var d []types.String
	if a.Domains.ElementsAs(ctx, &d, false).HasError() {
		return
	}
	for _, s := range d {
		if s.IsUnknown() {
			return
		}
	}
	// Path and password are checked on their own; placeholders keep the
	// runtime's checks of them quiet here.
	cfg, cd := m.acmeConfig(ctx, "password", func(string) (string, error) { return "/keystore", nil })
	if cd.HasError() {
		return
	}
	if err := cfg.WithDefaults().Validate(); err != nil {
		diags.AddAttributeError(path.Root(sourceACME).AtListIndex(0), "Invalid ACME Settings", err.Error())
	}
}

// create has the runtime obtain the first certificate. The alias must be
// new, as with the other sources: an existing entry is adopted with
// terraform import, not overwritten.
func (acmeSource) create(ctx context.Context, r *keystoreResource, a *applyRequest) {
	cfg, d := a.plan.acmeConfig(ctx, a.password, r.data.abs)
	if a.diags.Append(d...); a.diags.HasError() {
		return
	}
	ksPath, alias := a.plan.Path.ValueString(), a.plan.Alias.ValueString()
	ks, err := keystore.Open(ctx, a.file, []byte(cfg.KeystorePassword))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		addKeystoreError(a.diags, "Unable to Open Keystore", ksPath, alias, err)
		return
	default:
		if _, exists := ks.Entry(alias); exists {
			addKeystoreError(a.diags, "Unable to Create Keystore Entry", ksPath, alias,
				fmt.Errorf("the keystore already has an entry %q: adopt it with terraform import <address> %s, or choose another alias", alias, ksPath))
			return
		}
	}
	r.putACME(ctx, a, cfg)
}

// putACME sends cfg to the runtime, waits for the certificate and records
// it in the plan.
func (r *keystoreResource) putACME(ctx context.Context, a *applyRequest, cfg acme.Config) {
	plan, diags := a.plan, a.diags
	serverID := plan.ACME[0].ServerID.ValueString()
	ksPath, alias := plan.Path.ValueString(), plan.Alias.ValueString()
	// A certificate the plan keeps is the one to keep, even where the
	// runtime lost its record of it.
	keep := ""
	if !plan.Fingerprint.IsUnknown() {
		keep = plan.Fingerprint.ValueString()
	}
	if _, err := r.data.client(serverID).PutACME(ctx, acmeID(cfg), cfg, keep); err != nil {
		summary, hint := "Unable to Obtain ACME Certificate", ""
		var apiErr *control.Error
		if !errors.As(err, &apiErr) {
			summary = "Mail Runtime Not Answering"
			hint = fmt.Sprintf("\n\nThe runtime of mailstack_server %q obtains the certificate, and it does not answer: "+
				"is the server applied and running (its attribute `running`)?", serverID)
		}
		diags.AddAttributeError(path.Root(sourceACME).AtListIndex(0), summary,
			fmt.Sprintf("%s\n\nKeystore file: %s\nAlias: %s%s\n\nThe keystore file was left as it was.", err, ksPath, alias, hint))
		return
	}
	chain, err := acmeChain(ctx, a.file, cfg)
	if err != nil {
		addKeystoreError(diags, "Unable to Read ACME Certificate", ksPath, alias, err)
		return
	}
	plan.ID = plan.Path
	plan.recordIssued(issued{chain: chain}, r.now())
	plan.ACME[0].Renewing = types.BoolValue(true)
	diags.Append(setApplied(ctx, a.private, chain[0])...)
	diags.Append(setDamaged(ctx, a.private, false)...)
}

// acmeChain reads the chain the runtime wrote into the keystore.
func acmeChain(ctx context.Context, f keystore.File, cfg acme.Config) ([]*x509.Certificate, error) {
	ks, err := keystore.Open(ctx, f, []byte(cfg.KeystorePassword))
	if err != nil {
		return nil, err
	}
	e, ok := ks.Entry(cfg.Alias)
	if !ok || e.Kind != keystore.PrivateKey {
		return nil, fmt.Errorf("the runtime reported the certificate written, but the keystore has no private key entry %q", cfg.Alias)
	}
	return e.Chain, nil
}

// update changes the settings in place. A new store password is put into
// the file first (the key entry re-protected with it), so that the
// runtime opens the keystore with the password it is then given; a
// damaged file is replaced by an empty keystore, which the runtime fills.
func (acmeSource) update(ctx context.Context, r *keystoreResource, a *applyRequest) {
	cfg, d := a.plan.acmeConfig(ctx, a.password, r.data.abs)
	if a.diags.Append(d...); a.diags.HasError() {
		return
	}
	ksPath, alias := a.plan.Path.ValueString(), a.plan.Alias.ValueString()
	if a.password != a.oldPasswords[0] || a.damaged {
		opts := keystore.EditOptions{Password: []byte(cfg.KeystorePassword), Type: keystore.Type(cfg.KeystoreType), Repair: a.damaged}
		for _, pw := range a.oldPasswords {
			opts.Passwords = append(opts.Passwords, []byte(pw))
		}
		err := keystore.Edit(ctx, a.file, opts, func(ks *keystore.Keystore) error {
			if _, ok := ks.Entry(alias); !ok {
				return nil
			}
			key, chain, err := ks.PrivateKeyEntry(alias, nil)
			if err != nil {
				return err
			}
			return ks.SetPrivateKeyEntry(alias, key, chain, nil)
		})
		if err != nil {
			addKeystoreError(a.diags, "Unable to Change Keystore Password", ksPath, alias, err)
			return
		}
	}
	r.putACME(ctx, a, cfg)
}

// read refreshes what only the runtime knows: whether it still keeps the
// keystore with the settings in state. The certificate it renewed is the
// one Terraform expects, so it becomes the applied one.
func (acmeSource) read(ctx context.Context, r *keystoreResource, state *keystoreModel, password string, leaf *x509.Certificate, private privateState, diags *diag.Diagnostics) {
	cfg, d := state.acmeConfig(ctx, password, r.data.abs)
	if diags.Append(d...); diags.HasError() {
		return
	}
	obj, err := r.data.client(state.ACME[0].ServerID.ValueString()).ACME(ctx, acmeID(cfg))
	renewing := err == nil && reflect.DeepEqual(obj.Config, cfg.WithDefaults().Redacted())
	state.ACME[0].Renewing = types.BoolValue(renewing)
	diags.Append(setApplied(ctx, private, leaf)...)
}

// delete makes the runtime forget the keystore, so that it does not
// write into the file again. When the runtime does not answer, its saved
// state for the keystore is removed, so that it does not resume it.
func (acmeSource) delete(ctx context.Context, r *keystoreResource, state *keystoreModel, diags *diag.Diagnostics) {
	cfg, d := state.acmeConfig(ctx, "", r.data.abs)
	if diags.Append(d...); diags.HasError() {
		return
	}
	serverID := state.ACME[0].ServerID.ValueString()
	err := r.data.client(serverID).DeleteACME(ctx, acmeID(cfg))
	var apiErr *control.Error
	switch {
	case err == nil || control.IsNotFound(err):
	case errors.As(err, &apiErr):
		diags.AddError("Unable to Stop ACME Renewal", fmt.Sprintf("%s\n\nKeystore file: %s\nAlias: %s", err, cfg.KeystorePath, cfg.Alias))
	default:
		if err := r.data.server(serverID).RemoveACME(ctx, acmeID(cfg)); err != nil {
			diags.AddError("Unable to Remove ACME State", fmt.Sprintf("The runtime of mailstack_server %q does not "+
				"answer, and its ACME state for keystore %s (alias %q) could not be removed: %v", serverID, cfg.KeystorePath, cfg.Alias, err))
		}
	}
}

// plan orders a new certificate in place for new domains, directory or
// key kind; anything else keeps the certificate. A renewal or a new key
// written by the runtime is not drift. When the runtime no longer keeps
// the keystore (renewing = false: it was stopped, lost its config or its
// ACME record), the repair keeps the certificate the keystore holds if it
// is still current for the settings (putACME has the runtime keep it),
// and orders a new one only if not.
func (acmeSource) plan(ctx context.Context, p *planRequest) planned {
	if p.state == nil {
		return planned{}
	}
	a, s := p.plan.ACME[0], p.state.ACME[0]
	changed := keyChanged(p.plan, p.state) || !a.Domains.Equal(s.Domains) || !a.DirectoryURL.Equal(s.DirectoryURL)
	return planned{certificate: changed || (!s.Renewing.ValueBool() && !acmeCurrent(ctx, p))}
}

// acmeCurrent reports whether the certificate in state is one the runtime
// would keep for the planned settings, by the runtime's own rule
// (acme.Config.Current). Unknown settings count as not current.
func acmeCurrent(ctx context.Context, p *planRequest) bool {
	if p.leaf == nil || !p.plan.Key.known() || p.plan.ACME[0].RenewBeforeDays.IsUnknown() || p.plan.ACME[0].Domains.IsUnknown() {
		return false
	}
	// Only the domains, key kind and renewal window matter here.
	cfg, d := p.plan.acmeConfig(ctx, "", func(string) (string, error) { return "/keystore", nil })
	return !d.HasError() && cfg.WithDefaults().Current(p.leaf, p.now)
}
