package provider

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

var (
	_ resource.Resource                   = (*keystoreResource)(nil)
	_ resource.ResourceWithConfigure      = (*keystoreResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*keystoreResource)(nil)
	_ resource.ResourceWithValidateConfig = (*keystoreResource)(nil)
	_ resource.ResourceWithImportState    = (*keystoreResource)(nil)
)

// NewKeystoreResource returns the mailstack_keystore resource.
func NewKeystoreResource() resource.Resource { return &keystoreResource{} }

type keystoreResource struct{ data *providerData }

// Enumerations shared by schema validators and descriptions.
var (
	keystoreTypes       = []string{string(keystore.JKS), string(keystore.PKCS12)}
	keyAlgorithms       = []string{"RSA", "ECDSA"}
	ecdsaCurves         = []string{"P256", "P384"}
	rsaKeySizes         = []int64{2048, 3072, 4096}
	defaultAlias        = "mykey"
	defaultValidity     = int64(365)
	defaultEarlyRenewal = int64(30)
)

// Certificate sources: the blocks of which a keystore has exactly one.
const (
	sourceSelfSigned = "self_signed"
	sourceCSR        = "csr"
	sourceACME       = "acme"
)

// certificateSources lists the certificate source blocks, for validation
// and its message.
var certificateSources = []string{sourceSelfSigned, sourceCSR, sourceACME}

type keystoreModel struct {
	ID                  types.String      `tfsdk:"id"`
	Path                types.String      `tfsdk:"path"`
	Type                types.String      `tfsdk:"type"`
	Password            types.String      `tfsdk:"password"`
	KeyPassword         types.String      `tfsdk:"key_password"`
	Alias               types.String      `tfsdk:"alias"`
	Key                 *keySpecModel     `tfsdk:"key"`
	SelfSigned          []selfSignedModel `tfsdk:"self_signed"`
	CSR                 []csrModel        `tfsdk:"csr"`
	ACME                []acmeModel       `tfsdk:"acme"`
	CertificateChainPEM types.String      `tfsdk:"certificate_chain_pem"`
	CertificatePEM      types.String      `tfsdk:"certificate_pem"`
	CSRPEM              types.String      `tfsdk:"csr_pem"`
	Fingerprint         types.String      `tfsdk:"fingerprint_sha256"`
	NotBefore           types.String      `tfsdk:"not_before"`
	NotAfter            types.String      `tfsdk:"not_after"`
	ReadyForRenewal     types.Bool        `tfsdk:"ready_for_renewal"`
}

type keySpecModel struct {
	Algorithm  types.String `tfsdk:"algorithm"`
	RSABits    types.Int64  `tfsdk:"rsa_bits"`
	ECDSACurve types.String `tfsdk:"ecdsa_curve"`
}

type selfSignedModel struct {
	Subject          *subjectModel `tfsdk:"subject"`
	DNSNames         types.List    `tfsdk:"dns_names"`
	ValidityDays     types.Int64   `tfsdk:"validity_days"`
	EarlyRenewalDays types.Int64   `tfsdk:"early_renewal_days"`
}

type csrModel struct {
	Subject  *subjectModel `tfsdk:"subject"`
	DNSNames types.List    `tfsdk:"dns_names"`
}

type subjectModel struct {
	CommonName         types.String `tfsdk:"common_name"`
	OrganizationalUnit types.String `tfsdk:"organizational_unit"`
	Organization       types.String `tfsdk:"organization"`
	Locality           types.String `tfsdk:"locality"`
	Province           types.String `tfsdk:"province"`
	Country            types.String `tfsdk:"country"`
}

func (r *keystoreResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_keystore"
}

func (r *keystoreResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	aliasValidators := []validator.String{stringvalidator.LengthAtLeast(1), stringvalidator.RegexMatches(aliasPattern, aliasPatternMessage)}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A Java keystore (JKS or PKCS#12) on the target host holding one private key entry " +
			"that this resource owns: `keytool -genkeypair` made declarative, with `keytool -certreq` and the " +
			"installation of the CA reply (`csr` and `certificate_chain_pem`), or a certificate from an ACME CA " +
			"such as Let's Encrypt that the mail runtime obtains and renews (`acme`). Other entries in the file are kept.\n\n" +
			"Read compares the entry on disk with what Terraform wrote: an entry deleted outside Terraform " +
			"(`keytool -delete`) is planned for creation, a replaced certificate is planned for repair in place, " +
			"and a replaced private key plans a replacement. With `acme` the runtime owns the certificate: its " +
			"renewals are refreshed into the state without a plan diff.",
		Attributes: map[string]schema.Attribute{
			// Required
			"path": schema.StringAttribute{
				MarkdownDescription: "Keystore file on the target host. Changing it replaces the resource.",
				Required:            true,
				PlanModifiers:       replace,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"password": schema.StringAttribute{
				MarkdownDescription: "Keystore (store) password, as keytool's `-storepass`. Changing it re-encodes the " +
					"file with the new password in place (`keytool -storepasswd`), keeping every entry; other JKS " +
					"private keys keep their own key passwords, as with keytool.",
				Required:   true,
				Sensitive:  true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			// Optional
			"type": schema.StringAttribute{
				MarkdownDescription: "Keystore format: " + quoted(keystoreTypes) + ". Defaults to `JKS`. Changing it replaces the resource.",
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(string(keystore.JKS)),
				PlanModifiers:       replace,
				Validators:          []validator.String{stringvalidator.OneOf(keystoreTypes...)},
			},
			"key_password": schema.StringAttribute{
				MarkdownDescription: "Password of the private key entry when it differs from `password` (keytool's " +
					"`-keypass`; JKS only: PKCS#12 keys use the store password). Changing it re-encrypts the key in " +
					"place (`keytool -keypasswd`). Not with `acme`: the runtime protects that key with `password`.",
				Optional:   true,
				Sensitive:  true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"alias": schema.StringAttribute{
				MarkdownDescription: "Alias of the private key entry this resource owns, in lower case. Defaults to " +
					"`mykey`, as keytool's. Changing it replaces the resource.",
				Optional:      true,
				Computed:      true,
				Default:       stringdefault.StaticString(defaultAlias),
				PlanModifiers: replace,
				Validators:    aliasValidators,
			},
			"certificate_chain_pem": schema.StringAttribute{
				MarkdownDescription: "`csr` only: the CA reply to `csr_pem`, PEM: the signed certificate and, usually, " +
					"its CA certificates, in any order (`keytool -importcert -trustcacerts` of a certificate reply). " +
					"Setting or changing it installs the chain in place and keeps the key; the chain must end at a " +
					"self-signed root or a trusted certificate entry of the keystore (see " +
					"`mailstack_certificate_import`), and every certificate must be valid. Removing it puts a " +
					"self-signed certificate back. It cannot be set while the key is created: apply once, have " +
					"`csr_pem` signed, then set it. The root of the chain installed before also completes a reply " +
					"(a renewal from the same CA, or an adopted keystore whose root keytool took from the JDK's cacerts).",
				Optional:   true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			// Computed
			"id":              computedString("The keystore's path.", true),
			"certificate_pem": computedString("The entry's certificate (leaf), PEM-encoded.", false),
			"csr_pem": computedString("`csr` only: a PKCS#10 certificate signing request for the key, PEM "+
				"(`keytool -certreq`). Send it to the CA; its reply goes into `certificate_chain_pem`.", false),
			"fingerprint_sha256": computedString("SHA-256 fingerprint of the certificate, as `keytool -list` prints it "+
				"(`AB:CD:...`).", false),
			"not_before": computedString("Start of the certificate's validity, RFC 3339.", false),
			"not_after":  computedString("End of the certificate's validity, RFC 3339.", false),
			"ready_for_renewal": schema.BoolAttribute{
				MarkdownDescription: "`self_signed` only: true once the certificate is within `early_renewal_days` of " +
					"`not_after`; plan then proposes a new certificate for the same key, as hashicorp/tls does with " +
					"`early_renewal_hours`. Always false with `csr` (the CA renews, watch `not_after`) and with `acme` " +
					"(the runtime renews by itself).",
				Computed: true,
			},
		},
		Blocks: map[string]schema.Block{
			"key": schema.SingleNestedBlock{
				MarkdownDescription: "The private key (keytool's `-keyalg` and `-keysize`). Defaults to RSA 2048. " +
					"Changing the algorithm, the RSA size of an RSA key or the curve of an ECDSA key replaces the " +
					"resource (a new key); with `acme` it changes in place: the runtime orders a certificate for a " +
					"new key of that kind (it makes a fresh key for every certificate anyway).",
				Attributes: map[string]schema.Attribute{
					"algorithm": schema.StringAttribute{
						MarkdownDescription: "Key algorithm: " + quoted(keyAlgorithms) + ". Defaults to `RSA`.",
						Optional:            true,
						Computed:            true,
						Default:             stringdefault.StaticString("RSA"),
						Validators:          []validator.String{stringvalidator.OneOf(keyAlgorithms...)},
					},
					"rsa_bits": schema.Int64Attribute{
						MarkdownDescription: "RSA key size: 2048, 3072 or 4096. Defaults to 2048. Ignored for ECDSA.",
						Optional:            true,
						Computed:            true,
						Default:             int64default.StaticInt64(2048),
						Validators:          []validator.Int64{int64validator.OneOf(rsaKeySizes...)},
					},
					"ecdsa_curve": schema.StringAttribute{
						MarkdownDescription: "ECDSA curve: " + quoted(ecdsaCurves) + ". Defaults to `P256`. Ignored for RSA.",
						Optional:            true,
						Computed:            true,
						Default:             stringdefault.StaticString("P256"),
						Validators:          []validator.String{stringvalidator.OneOf(ecdsaCurves...)},
					},
				},
			},
			sourceSelfSigned: schema.ListNestedBlock{
				MarkdownDescription: "Issue a self-signed certificate for the key (`keytool -genkeypair -dname ...`). " +
					"Changing the subject, names or validity issues a new certificate for the same key.",
				Validators: []validator.List{listvalidator.SizeAtMost(1)},
				NestedObject: schema.NestedBlockObject{
					Attributes: map[string]schema.Attribute{
						"dns_names": dnsNamesAttribute(),
						"validity_days": schema.Int64Attribute{
							MarkdownDescription: "Days the certificate is valid from issuance (keytool's `-validity`). Defaults to 365.",
							Optional:            true,
							Computed:            true,
							Default:             int64default.StaticInt64(defaultValidity),
							Validators:          []validator.Int64{int64validator.Between(1, 36500)},
						},
						"early_renewal_days": schema.Int64Attribute{
							MarkdownDescription: "Plan a new certificate this many days before `not_after`. Defaults to 30; " +
								"must be less than `validity_days`.",
							Optional:   true,
							Computed:   true,
							Default:    int64default.StaticInt64(defaultEarlyRenewal),
							Validators: []validator.Int64{int64validator.AtLeast(0)},
						},
					},
					Blocks: map[string]schema.Block{"subject": subjectBlock()},
				},
			},
			sourceACME: acmeBlock(),
			sourceCSR: schema.ListNestedBlock{
				MarkdownDescription: "Have a CA sign the key: the resource generates the key with a self-signed " +
					"placeholder certificate valid 90 days (as `keytool -genkeypair` does) and computes `csr_pem` " +
					"(`keytool -certreq`); the CA's reply goes into `certificate_chain_pem`. Changing the subject or " +
					"names computes a new CSR for the same key.",
				Validators: []validator.List{listvalidator.SizeAtMost(1)},
				NestedObject: schema.NestedBlockObject{
					Attributes: map[string]schema.Attribute{"dns_names": dnsNamesAttribute()},
					Blocks:     map[string]schema.Block{"subject": subjectBlock()},
				},
			},
		},
	}
}

func dnsNamesAttribute() schema.ListAttribute {
	return schema.ListAttribute{
		MarkdownDescription: "DNS subject alternative names (keytool's `-ext SAN=dns:...`), e.g. `[\"mail.example.com\"]`.",
		Optional:            true,
		ElementType:         types.StringType,
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

func computedString(desc string, keep bool) schema.StringAttribute {
	a := schema.StringAttribute{MarkdownDescription: desc, Computed: true}
	if keep {
		a.PlanModifiers = []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	}
	return a
}

func (r *keystoreResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = configuredData(req.ProviderData, &resp.Diagnostics)
}

// source returns the certificate source block the model uses, or "".
func (m *keystoreModel) source() string {
	switch {
	case len(m.SelfSigned) == 1:
		return sourceSelfSigned
	case len(m.CSR) == 1:
		return sourceCSR
	case len(m.ACME) == 1:
		return sourceACME
	}
	return ""
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

func (m *keystoreModel) keySpec() keystore.KeySpec {
	if m.Key == nil {
		return keystore.KeySpec{}
	}
	return keystore.KeySpec{Algorithm: m.Key.Algorithm.ValueString(), RSABits: int(m.Key.RSABits.ValueInt64()), ECDSACurve: m.Key.ECDSACurve.ValueString()}
}

// request is the certificate or CSR the source block asks for, valid from
// now: for csr, the self-signed placeholder gets keytool's 90 days.
func (m *keystoreModel) request(ctx context.Context) (keystore.CertificateRequest, diag.Diagnostics) {
	req := keystore.CertificateRequest{NotBefore: time.Now().Add(-time.Minute)}
	var names types.List
	switch m.source() {
	case sourceSelfSigned:
		s := m.SelfSigned[0]
		req.Subject, names = s.Subject.toKeystore(), s.DNSNames
		req.NotAfter = req.NotBefore.Add(time.Duration(s.ValidityDays.ValueInt64()) * 24 * time.Hour)
	case sourceCSR:
		req.Subject, names = m.CSR[0].Subject.toKeystore(), m.CSR[0].DNSNames
	}
	diags := names.ElementsAs(ctx, &req.DNSNames, false)
	return req, diags
}

func (r *keystoreResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan keystoreModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	tflog.Debug(ctx, "creating the keystore entry on the host", map[string]any{"path": plan.Path.ValueString(), "alias": plan.Alias.ValueString(), "source": plan.source()})
	if plan.source() == sourceACME {
		r.createACME(ctx, &plan, resp.Private, &resp.Diagnostics)
		if !resp.Diagnostics.HasError() {
			resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
		}
		return
	}
	certReq, diags := plan.request(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ksPath, alias := plan.Path.ValueString(), plan.Alias.ValueString()
	if plan.source() == sourceCSR && !plan.CertificateChainPEM.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("certificate_chain_pem"), "CA Reply Before Key",
			replyBeforeKeyDetail(ksPath, alias))
		return
	}
	if err := r.data.mkdirFor(ctx, ksPath); err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("path"), "Unable to Create Keystore Folder", err.Error())
		return
	}
	var cert *x509.Certificate
	var csrPEM []byte
	err := keystore.Update(ctx, r.data.file(ksPath), []byte(plan.Password.ValueString()), keystore.Type(plan.Type.ValueString()), func(ks *keystore.Keystore) error {
		if _, exists := ks.Entry(alias); exists {
			return fmt.Errorf("the keystore already has an entry %q: adopt it with terraform import <address> %s, or choose another alias", alias, ksPath)
		}
		key, err := keystore.GenerateKey(plan.keySpec())
		if err != nil {
			return err
		}
		if cert, err = keystore.SelfSign(key, certReq); err != nil {
			return err
		}
		if plan.source() == sourceCSR {
			if csrPEM, err = keystore.CreateCSR(key, certReq); err != nil {
				return err
			}
		}
		return ks.SetPrivateKeyEntry(alias, key, []*x509.Certificate{cert}, []byte(plan.KeyPassword.ValueString()))
	})
	if err != nil {
		addKeystoreError(&resp.Diagnostics, "Unable to Create Keystore Entry", ksPath, alias, err)
		return
	}
	plan.ID = plan.Path
	plan.setCertificate(cert)
	plan.CSRPEM = types.StringNull()
	if csrPEM != nil {
		plan.CSRPEM = types.StringValue(string(csrPEM))
	}
	resp.Diagnostics.Append(setApplied(ctx, resp.Private, cert)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func replyBeforeKeyDetail(file, alias string) string {
	return fmt.Sprintf("certificate_chain_pem is set while the key of alias %q in %s is being created, so no CA can "+
		"have signed it yet. Apply without certificate_chain_pem, have csr_pem signed, then set the CA's reply.", alias, file)
}

// setCertificate records cert's computed attributes.
func (m *keystoreModel) setCertificate(cert *x509.Certificate) {
	m.CertificatePEM = types.StringValue(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})))
	m.Fingerprint = types.StringValue(keystore.Fingerprint(cert))
	m.NotBefore = types.StringValue(rfc3339(cert.NotBefore))
	m.NotAfter = types.StringValue(rfc3339(cert.NotAfter))
	due := false
	if m.source() == sourceSelfSigned {
		due = dueForRenewal(cert.NotAfter, m.SelfSigned[0].EarlyRenewalDays.ValueInt64(), time.Now())
	}
	m.ReadyForRenewal = types.BoolValue(due)
}

func (r *keystoreResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state keystoreModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ksPath, alias := state.Path.ValueString(), state.Alias.ValueString()
	tflog.Debug(ctx, "reading the keystore on the host", map[string]any{"path": ksPath, "alias": alias})
	ks, err := keystore.Open(ctx, r.data.file(ksPath), []byte(state.Password.ValueString()))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		resp.State.RemoveResource(ctx)
		return
	case errors.Is(err, keystore.ErrWrongStorePassword) && !state.Type.IsNull():
		// Changed outside Terraform (keytool -storepasswd): keep the state,
		// so that a configuration with the new password can be applied.
		resp.Diagnostics.AddWarning("Keystore Password Changed Outside Terraform",
			fmt.Sprintf("The keystore %s (alias %q) no longer opens with the password in the Terraform state. If it "+
				"was changed with keytool -storepasswd, set password to the new one and apply.", ksPath, alias))
		return
	case err != nil:
		addKeystoreError(&resp.Diagnostics, "Unable to Read Keystore", ksPath, alias, err)
		return
	}
	entry, ok := ks.Entry(alias)
	if !ok || entry.Kind != keystore.PrivateKey {
		// Deleted outside Terraform (keytool -delete): plan re-creates it.
		resp.State.RemoveResource(ctx)
		return
	}
	leaf := entry.Chain[0]
	// An imported keystore arrives with only path, alias and passwords.
	adopting := state.Type.IsNull()
	state.Type = types.StringValue(string(ks.Type()))
	if adopting {
		resp.Diagnostics.Append(state.adopt(ctx, ks, entry)...)
	} else {
		resp.Diagnostics.Append(state.refresh(ctx, leaf)...)
	}
	state.setCertificate(leaf)
	if resp.Diagnostics.HasError() {
		return
	}
	if state.source() == sourceACME {
		r.readACME(ctx, &state, leaf, resp.Private, &resp.Diagnostics)
	} else if a, diags := getApplied(ctx, req.Private); diags.HasError() {
		resp.Diagnostics.Append(diags...)
		return
	} else if a.Fingerprint == "" {
		resp.Diagnostics.Append(setApplied(ctx, resp.Private, leaf)...)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// refresh reads what Terraform manages back from the certificate on disk,
// so that a change made outside Terraform shows in plan.
func (m *keystoreModel) refresh(ctx context.Context, leaf *x509.Certificate) diag.Diagnostics {
	var diags diag.Diagnostics
	if m.Key != nil {
		m.Key = describeKey(leaf.PublicKey)
	}
	// A CA may rewrite the subject it was asked for, so only a
	// self-signed certificate is compared with the configuration.
	if m.source() == sourceSelfSigned {
		s := &m.SelfSigned[0]
		s.Subject = subjectFrom(leaf, s.Subject)
		s.DNSNames, diags = dnsNamesFrom(ctx, leaf, s.DNSNames)
	}
	return diags
}

// dnsNamesFrom returns the certificate's DNS names, null when it has none
// and the prior value was null.
func dnsNamesFrom(ctx context.Context, cert *x509.Certificate, prior types.List) (types.List, diag.Diagnostics) {
	if len(cert.DNSNames) == 0 && prior.IsNull() {
		return prior, nil
	}
	return types.ListValueFrom(ctx, types.StringType, cert.DNSNames)
}

// describeKey reports a public key as the key block describes it.
func describeKey(pub crypto.PublicKey) *keySpecModel {
	m := &keySpecModel{Algorithm: types.StringValue("RSA"), RSABits: types.Int64Value(2048), ECDSACurve: types.StringValue("P256")}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		m.RSABits = types.Int64Value(int64(k.N.BitLen()))
	case *ecdsa.PublicKey:
		m.Algorithm = types.StringValue("ECDSA")
		m.ECDSACurve = types.StringValue("P" + fmt.Sprint(k.Curve.Params().BitSize))
	}
	return m
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

func (r *keystoreResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state keystoreModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	tflog.Debug(ctx, "updating the keystore entry on the host", map[string]any{"path": plan.Path.ValueString(), "alias": plan.Alias.ValueString(), "source": plan.source()})
	if plan.source() == sourceACME {
		r.updateACME(ctx, &plan, &state, resp.Private, &resp.Diagnostics)
		if !resp.Diagnostics.HasError() {
			resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
		}
		return
	}
	var (
		certChanged  = plan.CertificatePEM.IsUnknown()
		csrChanged   = plan.CSRPEM.IsUnknown()
		replyChanged = plan.source() == sourceCSR && !plan.CertificateChainPEM.IsNull() &&
			!plan.CertificateChainPEM.Equal(state.CertificateChainPEM)
		passwordChanged    = !plan.Password.Equal(state.Password)
		keyPasswordChanged = !plan.KeyPassword.Equal(state.KeyPassword)
	)
	if !certChanged && !csrChanged && !replyChanged && !passwordChanged && !keyPasswordChanged {
		// Nothing on disk changes (early_renewal_days, say).
		resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
		return
	}
	certReq, diags := plan.request(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ksPath, alias := plan.Path.ValueString(), plan.Alias.ValueString()
	newKeyPW := []byte(plan.KeyPassword.ValueString())
	installReply := plan.source() == sourceCSR && !plan.CertificateChainPEM.IsNull() && (certChanged || replyChanged)
	var leaf *x509.Certificate
	var csrPEM []byte
	err := updateKeystore(ctx, r.data.file(ksPath), []byte(state.Password.ValueString()), []byte(plan.Password.ValueString()), keystore.Type(plan.Type.ValueString()), func(ks *keystore.Keystore) error {
		// The key opens with the old key password, or with the new one if
		// it was changed outside Terraform (or the keystore was imported);
		// after keytool -storepasswd a JKS key keeps the old store password.
		candidates := []string{state.KeyPassword.ValueString(), plan.KeyPassword.ValueString()}
		if state.KeyPassword.IsNull() {
			candidates = append(candidates, state.Password.ValueString())
		}
		key, chain, keyPW, err := openPrivateKey(ks, alias, candidates...)
		if err != nil {
			return err
		}
		newChain := chain
		switch {
		case installReply:
			if err := ks.InstallReply(alias, []byte(keyPW), []byte(plan.CertificateChainPEM.ValueString()), installedRoots(chain)...); err != nil {
				return err
			}
			e, _ := ks.Entry(alias)
			newChain = e.Chain
		case certChanged:
			// self_signed, or the csr placeholder.
			cert, err := keystore.SelfSign(key, certReq)
			if err != nil {
				return err
			}
			newChain = []*x509.Certificate{cert}
		}
		if csrChanged {
			if csrPEM, err = keystore.CreateCSR(key, certReq); err != nil {
				return err
			}
		}
		leaf = newChain[0]
		// The key is protected again when the store password it may use
		// changes, or it opened with another password than the planned one.
		rekey := passwordChanged || keyPW != plan.KeyPassword.ValueString()
		switch {
		case !rekey && sameCertificates(newChain, chain):
			return errNoChange
		case !rekey && installReply:
			return nil // InstallReply kept the key and its protection.
		}
		return ks.SetPrivateKeyEntry(alias, key, newChain, newKeyPW)
	})
	if err != nil {
		summary := "Unable to Update Keystore"
		switch {
		case installReply:
			summary = "Unable to Install CA Reply"
		case certChanged:
			summary = "Unable to Reissue Certificate"
		}
		addKeystoreError(&resp.Diagnostics, summary, ksPath, alias, err)
		return
	}
	plan.setCertificate(leaf)
	if csrChanged {
		plan.CSRPEM = types.StringValue(string(csrPEM))
	}
	resp.Diagnostics.Append(setApplied(ctx, resp.Private, leaf)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// installedRoots returns the self-signed CA certificates that end a chain
// a CA installed (not a self-signed leaf). A new reply may be completed
// with them as with trusted entries: a renewal from the same CA, or an
// adopted keystore whose root keytool took from the JDK's cacerts.
func installedRoots(chain []*x509.Certificate) []*x509.Certificate {
	if len(chain) < 2 {
		return nil
	}
	if top := chain[len(chain)-1]; keystore.IsSelfSigned(top) {
		return []*x509.Certificate{top}
	}
	return nil
}

func (r *keystoreResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state keystoreModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	tflog.Debug(ctx, "deleting the keystore entry on the host", map[string]any{"path": state.Path.ValueString(), "alias": state.Alias.ValueString(), "source": state.source()})
	if state.source() == sourceACME {
		if r.deleteACME(ctx, &state, &resp.Diagnostics); resp.Diagnostics.HasError() {
			return
		}
	}
	ksPath, alias := state.Path.ValueString(), state.Alias.ValueString()
	if !r.data.exists(ctx, ksPath) {
		return // Already gone; Update would create an empty keystore.
	}
	empty := false
	err := keystore.Update(ctx, r.data.file(ksPath), []byte(state.Password.ValueString()), "", func(ks *keystore.Keystore) error {
		if _, ok := ks.Entry(alias); !ok {
			return nil
		}
		if err := ks.DeleteEntry(alias); err != nil {
			return err
		}
		empty = len(ks.Entries()) == 0
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		addKeystoreError(&resp.Diagnostics, "Unable to Delete Keystore Entry", ksPath, alias, err)
		return
	}
	if empty {
		// Nothing else lives in the file: remove it and its lock file.
		for _, p := range []string{ksPath, ksPath + ".lock"} {
			if err := r.data.host.Remove(ctx, p); err != nil {
				resp.Diagnostics.AddError("Unable to Delete Keystore", err.Error())
			}
		}
	}
}
