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
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

var (
	_ resource.Resource                   = (*keystoreResource)(nil)
	_ resource.ResourceWithConfigure      = (*keystoreResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*keystoreResource)(nil)
	_ resource.ResourceWithValidateConfig = (*keystoreResource)(nil)
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

type keystoreModel struct {
	ID              types.String      `tfsdk:"id"`
	Path            types.String      `tfsdk:"path"`
	Type            types.String      `tfsdk:"type"`
	Password        types.String      `tfsdk:"password"`
	KeyPassword     types.String      `tfsdk:"key_password"`
	Alias           types.String      `tfsdk:"alias"`
	Key             *keySpecModel     `tfsdk:"key"`
	SelfSigned      []selfSignedModel `tfsdk:"self_signed"`
	CertificatePEM  types.String      `tfsdk:"certificate_pem"`
	Fingerprint     types.String      `tfsdk:"fingerprint_sha256"`
	NotBefore       types.String      `tfsdk:"not_before"`
	NotAfter        types.String      `tfsdk:"not_after"`
	ReadyForRenewal types.Bool        `tfsdk:"ready_for_renewal"`
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
	resp.Schema = schema.Schema{
		MarkdownDescription: "A Java keystore (JKS or PKCS#12) on the target host holding one private key entry " +
			"that this resource owns: `keytool -genkeypair` made declarative. Other entries in the file are kept.",
		Attributes: map[string]schema.Attribute{
			// Required
			"path": schema.StringAttribute{
				MarkdownDescription: "Keystore file on the target host. Changing it replaces the resource.",
				Required:            true,
				PlanModifiers:       replace,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"password": schema.StringAttribute{
				MarkdownDescription: "Keystore (store) password, as keytool's `-storepass`.",
				Required:            true,
				Sensitive:           true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
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
				MarkdownDescription: "Password of the private key entry when it differs from `password` (keytool's `-keypass`; JKS only).",
				Optional:            true,
				Sensitive:           true,
				PlanModifiers:       replace,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"alias": schema.StringAttribute{
				MarkdownDescription: "Alias of the private key entry this resource owns. Defaults to `mykey`, as keytool's. Changing it replaces the resource.",
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(defaultAlias),
				PlanModifiers:       replace,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			// Computed
			"id":              computedString("The keystore's path.", true),
			"certificate_pem": computedString("The entry's certificate (leaf), PEM-encoded.", true),
			"fingerprint_sha256": computedString("SHA-256 fingerprint of the certificate, as `keytool -list` prints it "+
				"(`AB:CD:...`).", true),
			"not_before": computedString("Start of the certificate's validity, RFC 3339.", true),
			"not_after":  computedString("End of the certificate's validity, RFC 3339.", true),
			"ready_for_renewal": schema.BoolAttribute{
				MarkdownDescription: "True once the certificate is within `early_renewal_days` of `not_after`, or was " +
					"replaced on disk outside Terraform; plan then proposes a new certificate.",
				Computed: true,
			},
		},
		Blocks: map[string]schema.Block{
			"key": schema.SingleNestedBlock{
				MarkdownDescription: "The private key. Defaults to RSA 2048. Changing it replaces the resource (a new key).",
				Attributes: map[string]schema.Attribute{
					"algorithm": schema.StringAttribute{
						MarkdownDescription: "Key algorithm: " + quoted(keyAlgorithms) + ". Defaults to `RSA`.",
						Optional:            true,
						Computed:            true,
						Default:             stringdefault.StaticString("RSA"),
						PlanModifiers:       replace,
						Validators:          []validator.String{stringvalidator.OneOf(keyAlgorithms...)},
					},
					"rsa_bits": schema.Int64Attribute{
						MarkdownDescription: "RSA key size: 2048, 3072 or 4096. Defaults to 2048. Ignored for ECDSA.",
						Optional:            true,
						Computed:            true,
						Default:             int64default.StaticInt64(2048),
						PlanModifiers:       []planmodifier.Int64{int64planmodifier.RequiresReplace()},
						Validators:          []validator.Int64{int64validator.OneOf(rsaKeySizes...)},
					},
					"ecdsa_curve": schema.StringAttribute{
						MarkdownDescription: "ECDSA curve: " + quoted(ecdsaCurves) + ". Defaults to `P256`. Ignored for RSA.",
						Optional:            true,
						Computed:            true,
						Default:             stringdefault.StaticString("P256"),
						PlanModifiers:       replace,
						Validators:          []validator.String{stringvalidator.OneOf(ecdsaCurves...)},
					},
				},
			},
			"self_signed": schema.ListNestedBlock{
				MarkdownDescription: "Issue a self-signed certificate for the key (`keytool -genkeypair -dname ...`). " +
					"Changing the subject, names or validity issues a new certificate for the same key.",
				Validators: []validator.List{listvalidator.SizeAtMost(1)},
				NestedObject: schema.NestedBlockObject{
					Attributes: map[string]schema.Attribute{
						"dns_names": schema.ListAttribute{
							MarkdownDescription: "DNS subject alternative names, e.g. `[\"mail.example.com\"]`.",
							Optional:            true,
							ElementType:         types.StringType,
						},
						"validity_days": schema.Int64Attribute{
							MarkdownDescription: "Days the certificate is valid from issuance. Defaults to 365.",
							Optional:            true,
							Computed:            true,
							Default:             int64default.StaticInt64(defaultValidity),
							Validators:          []validator.Int64{int64validator.Between(1, 36500)},
						},
						"early_renewal_days": schema.Int64Attribute{
							MarkdownDescription: "Plan a new certificate this many days before `not_after`. Defaults to 30.",
							Optional:            true,
							Computed:            true,
							Default:             int64default.StaticInt64(defaultEarlyRenewal),
							Validators:          []validator.Int64{int64validator.AtLeast(0)},
						},
					},
					Blocks: map[string]schema.Block{"subject": subjectBlock()},
				},
			},
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

func (r *keystoreResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m keystoreModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if len(m.SelfSigned) != 1 {
		resp.Diagnostics.AddError("Missing Certificate Source",
			"A mailstack_keystore needs exactly one of the blocks self_signed, csr or acme.")
	} else if s := m.SelfSigned[0]; !s.ValidityDays.IsUnknown() && !s.EarlyRenewalDays.IsUnknown() {
		validity, early := s.ValidityDays.ValueInt64(), s.EarlyRenewalDays.ValueInt64()
		if s.ValidityDays.IsNull() {
			validity = defaultValidity
		}
		if s.EarlyRenewalDays.IsNull() {
			early = defaultEarlyRenewal
		}
		if early >= validity {
			resp.Diagnostics.AddAttributeError(path.Root("self_signed").AtListIndex(0).AtName("early_renewal_days"),
				"Early Renewal Not Before Expiry",
				fmt.Sprintf("early_renewal_days (%d) must be less than validity_days (%d), or every plan would propose a new certificate.", early, validity))
		}
	}
	if m.Type.ValueString() == string(keystore.PKCS12) && !m.KeyPassword.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("key_password"), "Key Password Not Supported for PKCS#12",
			"PKCS#12 keystores protect keys with the store password (keytool ignores -keypass for them); remove key_password or use type = \"JKS\".")
	}
}

// ModifyPlan proposes a new certificate (same key) when the self_signed
// settings change, the certificate is due for renewal, or the entry on disk
// is not the one Terraform issued.
func (r *keystoreResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.State.Raw.IsNull() || req.Plan.Raw.IsNull() {
		return
	}
	var plan, state keystoreModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	reissue := state.ReadyForRenewal.ValueBool()
	if len(plan.SelfSigned) == 1 && len(state.SelfSigned) == 1 {
		p, s := plan.SelfSigned[0], state.SelfSigned[0]
		reissue = reissue || !p.DNSNames.Equal(s.DNSNames) || !p.ValidityDays.Equal(s.ValidityDays) ||
			p.Subject.toKeystore() != s.Subject.toKeystore()
	}
	if !reissue {
		return
	}
	plan.CertificatePEM = types.StringUnknown()
	plan.Fingerprint = types.StringUnknown()
	plan.NotBefore = types.StringUnknown()
	plan.NotAfter = types.StringUnknown()
	plan.ReadyForRenewal = types.BoolValue(false)
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
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

// request is the certificate the self_signed block asks for, valid from now.
func (s *selfSignedModel) request(ctx context.Context) (keystore.CertificateRequest, diag.Diagnostics) {
	req := keystore.CertificateRequest{Subject: s.Subject.toKeystore(), NotBefore: time.Now().Add(-time.Minute)}
	req.NotAfter = req.NotBefore.Add(time.Duration(s.ValidityDays.ValueInt64()) * 24 * time.Hour)
	diags := s.DNSNames.ElementsAs(ctx, &req.DNSNames, false)
	return req, diags
}

func (r *keystoreResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan keystoreModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	certReq, diags := plan.SelfSigned[0].request(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ksPath, alias := plan.Path.ValueString(), plan.Alias.ValueString()
	if err := os.MkdirAll(filepath.Dir(ksPath), 0o700); err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("path"), "Unable to Create Keystore Folder", err.Error())
		return
	}
	var cert *x509.Certificate
	err := keystore.Update(ksPath, []byte(plan.Password.ValueString()), keystore.Type(plan.Type.ValueString()), func(ks *keystore.Keystore) error {
		if _, exists := ks.Entry(alias); exists {
			return fmt.Errorf("keystore %s already has an entry %q; import the keystore (terraform import <address> %s) or choose another alias", ksPath, alias, ksPath)
		}
		key, err := keystore.GenerateKey(plan.keySpec())
		if err != nil {
			return err
		}
		if cert, err = keystore.SelfSign(key, certReq); err != nil {
			return err
		}
		return ks.SetPrivateKeyEntry(alias, key, []*x509.Certificate{cert}, []byte(plan.KeyPassword.ValueString()))
	})
	if err != nil {
		resp.Diagnostics.AddError("Unable to Create Keystore Entry", err.Error())
		return
	}
	plan.ID = plan.Path
	plan.setCertificate(cert)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// setCertificate records cert's computed attributes.
func (m *keystoreModel) setCertificate(cert *x509.Certificate) {
	m.CertificatePEM = types.StringValue(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})))
	m.Fingerprint = types.StringValue(keystore.Fingerprint(cert))
	m.NotBefore = types.StringValue(cert.NotBefore.UTC().Format(time.RFC3339))
	m.NotAfter = types.StringValue(cert.NotAfter.UTC().Format(time.RFC3339))
	early := int64(0)
	if len(m.SelfSigned) == 1 {
		early = m.SelfSigned[0].EarlyRenewalDays.ValueInt64()
	}
	m.ReadyForRenewal = types.BoolValue(!time.Now().Add(time.Duration(early) * 24 * time.Hour).Before(cert.NotAfter))
}

func (r *keystoreResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state keystoreModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ksPath, alias := state.Path.ValueString(), state.Alias.ValueString()
	ks, err := keystore.Open(ksPath, []byte(state.Password.ValueString()))
	if errors.Is(err, os.ErrNotExist) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Unable to Read Keystore", err.Error())
		return
	}
	key, chain, err := ks.PrivateKeyEntry(alias, []byte(state.KeyPassword.ValueString()))
	if errors.Is(err, keystore.ErrAliasNotFound) {
		// Deleted outside Terraform (keytool -delete): plan re-creates it.
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Unable to Read Keystore Entry", err.Error())
		return
	}
	state.Type = types.StringValue(string(ks.Type()))
	state.Key = describeKey(key.Public())
	cert := chain[0]
	issued := state.Fingerprint.ValueString()
	state.setCertificate(cert)
	if issued != "" && issued != state.Fingerprint.ValueString() {
		// Replaced on disk: not the certificate Terraform issued.
		state.ReadyForRenewal = types.BoolValue(true)
	}
	if len(state.SelfSigned) == 1 {
		s := &state.SelfSigned[0]
		s.Subject = subjectFrom(cert, s.Subject)
		if len(cert.DNSNames) > 0 || !s.DNSNames.IsNull() {
			names, d := types.ListValueFrom(ctx, types.StringType, cert.DNSNames)
			resp.Diagnostics.Append(d...)
			s.DNSNames = names
		}
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
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

// subjectFrom reads the subject of cert, keeping attributes that were null
// and are empty null.
func subjectFrom(cert *x509.Certificate, prior *subjectModel) *subjectModel {
	first := func(v []string) string {
		if len(v) == 0 {
			return ""
		}
		return v[0]
	}
	n := cert.Subject
	return &subjectModel{
		CommonName:         optionalString(n.CommonName),
		OrganizationalUnit: optionalString(first(n.OrganizationalUnit)),
		Organization:       optionalString(first(n.Organization)),
		Locality:           optionalString(first(n.Locality)),
		Province:           optionalString(first(n.Province)),
		Country:            optionalString(first(n.Country)),
	}
}

func (r *keystoreResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state keystoreModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !plan.Password.Equal(state.Password) {
		resp.Diagnostics.AddAttributeError(path.Root("password"), "Keystore Password Change Not Supported",
			"Changing the password of an existing keystore in place is not supported yet; change it with "+
				"`keytool -storepasswd` and then update the configuration.")
		return
	}
	if !plan.CertificatePEM.IsUnknown() {
		// Only non-certificate attributes changed (early_renewal_days).
		plan.setCertificate(mustParsePEM(state.CertificatePEM.ValueString()))
		resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
		return
	}
	certReq, diags := plan.SelfSigned[0].request(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	alias, keyPass := plan.Alias.ValueString(), []byte(plan.KeyPassword.ValueString())
	var cert *x509.Certificate
	err := keystore.Update(plan.Path.ValueString(), []byte(plan.Password.ValueString()), keystore.Type(plan.Type.ValueString()), func(ks *keystore.Keystore) error {
		key, _, err := ks.PrivateKeyEntry(alias, keyPass)
		if err != nil {
			return err
		}
		if cert, err = keystore.SelfSign(key, certReq); err != nil {
			return err
		}
		return ks.SetPrivateKeyEntry(alias, key, []*x509.Certificate{cert}, keyPass)
	})
	if err != nil {
		resp.Diagnostics.AddError("Unable to Reissue Certificate", err.Error())
		return
	}
	plan.setCertificate(cert)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// mustParsePEM parses a certificate this provider wrote into state.
func mustParsePEM(s string) *x509.Certificate {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return &x509.Certificate{}
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return &x509.Certificate{}
	}
	return cert
}

func (r *keystoreResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state keystoreModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ksPath := state.Path.ValueString()
	empty := false
	err := keystore.Update(ksPath, []byte(state.Password.ValueString()), "", func(ks *keystore.Keystore) error {
		if _, ok := ks.Entry(state.Alias.ValueString()); !ok {
			return nil
		}
		if err := ks.DeleteEntry(state.Alias.ValueString()); err != nil {
			return err
		}
		empty = len(ks.Entries()) == 0
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		resp.Diagnostics.AddError("Unable to Delete Keystore Entry", err.Error())
		return
	}
	if empty {
		// Nothing else lives in the file: remove it and its lock file.
		for _, p := range []string{ksPath, ksPath + ".lock"} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				resp.Diagnostics.AddError("Unable to Delete Keystore", err.Error())
			}
		}
	}
}
