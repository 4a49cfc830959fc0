package provider

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

var (
	_ resource.Resource                     = (*keystoreResource)(nil)
	_ resource.ResourceWithConfigure        = (*keystoreResource)(nil)
	_ resource.ResourceWithModifyPlan       = (*keystoreResource)(nil)
	_ resource.ResourceWithValidateConfig   = (*keystoreResource)(nil)
	_ resource.ResourceWithConfigValidators = (*keystoreResource)(nil)
	_ resource.ResourceWithImportState      = (*keystoreResource)(nil)
	_ resource.ResourceWithUpgradeState     = (*keystoreResource)(nil)
)

// NewKeystoreResource returns the mailstack_keystore resource.
func NewKeystoreResource() resource.Resource { return &keystoreResource{} }

// keystoreResource is mailstack_keystore. Its certificate comes from one of
// several sources (resource_keystore_source.go): the methods here do what
// every source shares (the file, its passwords, mode and owner, drift) and
// hand the rest to the source.
type keystoreResource struct{ data *providerData }

// keystoreSchemaVersion is the version of mailstack_keystore's schema;
// UpgradeState (resource_keystore_upgrade.go) brings older states to it.
const keystoreSchemaVersion = 1

// Defaults of mailstack_keystore.
const defaultAlias = "mykey"

type keystoreModel struct {
	ID                  types.String         `tfsdk:"id"`
	Path                types.String         `tfsdk:"path"`
	Type                types.String         `tfsdk:"type"`
	Password            types.String         `tfsdk:"password"`
	PasswordWO          types.String         `tfsdk:"password_wo"`
	PasswordWOVersion   types.Int64          `tfsdk:"password_wo_version"`
	KeyPassword         types.String         `tfsdk:"key_password"`
	Alias               types.String         `tfsdk:"alias"`
	FileMode            types.String         `tfsdk:"file_mode"`
	Owner               types.String         `tfsdk:"owner"`
	Group               types.String         `tfsdk:"group"`
	DeleteOnDestroy     types.Bool           `tfsdk:"delete_on_destroy"`
	Key                 *keySpecModel        `tfsdk:"key"`
	SelfSigned          []selfSignedModel    `tfsdk:"self_signed"`
	CSR                 []csrModel           `tfsdk:"csr"`
	LocallySigned       []locallySignedModel `tfsdk:"locally_signed"`
	PEM                 []pemModel           `tfsdk:"pem"`
	ACME                []acmeModel          `tfsdk:"acme"`
	CertificateChainPEM types.String         `tfsdk:"certificate_chain_pem"`
	CertificatePEM      types.String         `tfsdk:"certificate_pem"`
	ChainPEM            types.String         `tfsdk:"chain_pem"`
	IssuerPEM           types.String         `tfsdk:"issuer_pem"`
	CSRPEM              types.String         `tfsdk:"csr_pem"`
	Fingerprint         types.String         `tfsdk:"fingerprint_sha256"`
	NotBefore           types.String         `tfsdk:"not_before"`
	NotAfter            types.String         `tfsdk:"not_after"`
	ReadyForRenewal     types.Bool           `tfsdk:"ready_for_renewal"`
}

func (r *keystoreResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_keystore"
}

func (r *keystoreResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	blocks := map[string]schema.Block{"key": keyBlock()}
	for _, s := range certificateSources {
		blocks[s.block()] = s.schema()
	}
	resp.Schema = schema.Schema{
		Version: keystoreSchemaVersion,
		MarkdownDescription: "A Java keystore (JKS or PKCS#12) on the target host holding one private key entry " +
			"that this resource owns: `keytool -genkeypair` made declarative. The certificate comes from exactly one " +
			"source block: `self_signed`; `csr` (`keytool -certreq`, then the CA's reply in `certificate_chain_pem`); " +
			"`locally_signed` (signed in the same apply by a CA keystore or a PEM CA, as hashicorp/tls's " +
			"`tls_locally_signed_cert`); `pem` (a key and chain from elsewhere, the `openssl pkcs12 -export` and " +
			"`keytool -importkeystore` step); or `acme` (a CA such as Let's Encrypt, through the mail runtime, which " +
			"renews it). Other entries in the file are kept, and so are the file's mode, owner and group unless " +
			"`file_mode`, `owner` or `group` say otherwise.\n\n" +
			"Read compares the entry on disk with what Terraform wrote: an entry deleted outside Terraform " +
			"(`keytool -delete`) is planned for creation, a replaced certificate is planned for repair in place, " +
			"a replaced private key plans a replacement, and a file that is no longer a keystore (truncated, " +
			"overwritten) plans its repair: a new file with a new key. With `acme` the runtime owns the " +
			"certificate: its renewals are refreshed into the state without a plan diff.",
		Attributes: map[string]schema.Attribute{
			// Required
			"path": schema.StringAttribute{
				MarkdownDescription: "Keystore file on the target host. Changing it replaces the resource.",
				Required:            true,
				PlanModifiers:       replace,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			// Optional
			"password": schema.StringAttribute{
				MarkdownDescription: "Keystore (store) password, as keytool's `-storepass`; kept in the Terraform state " +
					"(sensitive). Exactly one of `password` and `password_wo` is required. Changing it re-encodes the " +
					"file with the new password in place (`keytool -storepasswd`), keeping every entry; other JKS " +
					"private keys keep their own key passwords, as with keytool.",
				Optional:   true,
				Sensitive:  true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"password_wo": schema.StringAttribute{
				MarkdownDescription: "The store password, write-only (Terraform 1.11 and later): it never enters the " +
					"plan or the state. Terraform cannot tell when a write-only value changes: set a new one together " +
					"with a new `password_wo_version`, and apply re-encodes the file with it. So that Read can open " +
					"the keystore and a new password can replace the old one, the provider keeps the password on the " +
					"target host, mode 0600 under `state_dir` (as the mail runtime keeps the passwords of its " +
					"listeners' keystores).",
				Optional:   true,
				Sensitive:  true,
				WriteOnly:  true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"password_wo_version": schema.Int64Attribute{
				MarkdownDescription: "Change it to apply a new `password_wo`.",
				Optional:            true,
			},
			"type": schema.StringAttribute{
				MarkdownDescription: "Keystore format: " + keystoreTypeEnum.describe() + ". Defaults to `JKS`. " +
					"Changing it replaces the resource.",
				Optional:      true,
				Computed:      true,
				Default:       stringdefault.StaticString(string(keystore.JKS)),
				PlanModifiers: []planmodifier.String{keystoreTypeEnum.requiresReplace()},
				Validators:    []validator.String{keystoreTypeEnum.validator()},
			},
			"key_password": schema.StringAttribute{
				MarkdownDescription: "Password of the private key entry when it differs from the store password " +
					"(keytool's `-keypass`; JKS only: PKCS#12 keys use the store password). Changing it re-encrypts " +
					"the key in place (`keytool -keypasswd`). Not with `acme`: the runtime protects that key with " +
					"the store password. Apache James opens the key with its one `<secret>`: leave it unset for James.",
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
				Validators:    []validator.String{stringvalidator.LengthAtLeast(1), stringvalidator.RegexMatches(aliasPattern, aliasPatternMessage)},
			},
			"file_mode": schema.StringAttribute{
				MarkdownDescription: "Permission bits of the keystore file, octal (`\"0640\"`). Unset, an existing file " +
					"keeps its own and a new one gets `0600`; the computed value is the file's. Set, a file changed " +
					"outside Terraform (`chmod`) shows as drift.",
				Optional:      true,
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
				Validators:    []validator.String{stringvalidator.RegexMatches(fileModePattern, "must be an octal mode such as \"0640\"")},
			},
			"owner": schema.StringAttribute{
				MarkdownDescription: "Owner of the keystore file on the target host, a user name or a uid (changing it " +
					"needs root there). Unset, an existing file keeps its own and a new one gets the provider's user.",
				Optional:      true,
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
				Validators:    []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"group": schema.StringAttribute{
				MarkdownDescription: "Group of the keystore file, a group name or a gid, e.g. the group Apache James runs " +
					"as, with `file_mode = \"0640\"`. Unset, an existing file keeps its own.",
				Optional:      true,
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
				Validators:    []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"delete_on_destroy": schema.BoolAttribute{
				MarkdownDescription: "Whether destroy deletes the entry (and the file, once nothing else is in it). " +
					"Defaults to `true` for an entry this resource created and to `false` for one adopted with " +
					"`terraform import`, which destroy then leaves on disk (the plan says so).",
				Optional:      true,
				Computed:      true,
				PlanModifiers: []planmodifier.Bool{boolplanmodifier.UseStateForUnknown()},
			},
			"certificate_chain_pem": schema.StringAttribute{
				MarkdownDescription: "`csr` only: the CA reply to `csr_pem`, PEM: the signed certificate and, usually, " +
					"its CA certificates, in any order (`keytool -importcert -trustcacerts` of a certificate reply). " +
					"Setting or changing it installs the chain in place and keeps the key; the chain must end at a " +
					"self-signed root or a trusted certificate entry of the keystore (see " +
					"`mailstack_certificate_import`), and every certificate must be valid. Plan checks the reply: one " +
					"for another key or with an expired certificate is an error, one whose chain does not reach a root " +
					"yet a warning. Removing it puts a self-signed certificate back. It cannot be set while the key is " +
					"created: apply once, have `csr_pem` signed, then set it (or sign in one apply with " +
					"`locally_signed`). The root of the chain installed before also completes a reply (a renewal from " +
					"the same CA, or an adopted keystore whose root keytool took from the JDK's cacerts).",
				Optional:   true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			// Computed
			"id":              computedString("The keystore's path.", true),
			"certificate_pem": computedString("The entry's certificate (leaf), PEM-encoded.", false),
			"chain_pem": computedString("The entry's whole certificate chain as installed, leaf first, PEM: what a "+
				"server sends.", false),
			"issuer_pem": computedString("The certificates that issued the leaf (the chain without the leaf), PEM; for "+
				"a self-signed certificate, the certificate itself. Clients trust it: `ca_certificates_pem` of "+
				"`mailstack_tls_probe`.", false),
			"csr_pem": computedString("`csr` only: a PKCS#10 certificate signing request for the key, PEM "+
				"(`keytool -certreq`). Send it to the CA; its reply goes into `certificate_chain_pem`.", false),
			"fingerprint_sha256": computedString("SHA-256 fingerprint of the certificate, as `keytool -list` prints it "+
				"(`AB:CD:...`).", false),
			"not_before": computedString("Start of the certificate's validity, RFC 3339.", false),
			"not_after":  computedString("End of the certificate's validity, RFC 3339.", false),
			"ready_for_renewal": schema.BoolAttribute{
				MarkdownDescription: "True once the certificate is within its early renewal window (`early_renewal_days` " +
					"or `early_renewal_hours`) of `not_after`. With `self_signed` and `locally_signed` plan then proposes " +
					"a new certificate for the same key, as hashicorp/tls does; with `csr` and `pem` plan warns, " +
					"because the CA or whoever made the PEM renews. Always false with `acme` (the runtime renews by " +
					"itself).",
				Computed: true,
			},
		},
		Blocks: blocks,
	}
}

func computedString(desc string, keep bool) schema.StringAttribute {
	a := schema.StringAttribute{MarkdownDescription: desc, Computed: true}
	if keep {
		a.PlanModifiers = []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	}
	return a
}

func (r *keystoreResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{
		resourcevalidator.ExactlyOneOf(path.MatchRoot("password"), path.MatchRoot("password_wo")),
		resourcevalidator.Conflicting(path.MatchRoot("password"), path.MatchRoot("password_wo_version")),
	}
}

func (r *keystoreResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = configuredData(req.ProviderData, &resp.Diagnostics)
}

// rsaKeySizes are the key block's rsa_bits.
var rsaKeySizes = []int64{2048, 3072, 4096}

func keyBlock() schema.SingleNestedBlock {
	return schema.SingleNestedBlock{
		MarkdownDescription: "The private key (keytool's `-keyalg`, `-keysize` and `-groupname`). Defaults to RSA " +
			"2048. Changing the algorithm, the RSA size or the curve replaces the resource (a new key); with `acme` " +
			"it changes in place: the runtime orders a certificate for a new key of that kind (it makes a fresh key " +
			"for every certificate anyway). Not with `pem`, whose key is given.",
		Attributes: map[string]schema.Attribute{
			"algorithm": schema.StringAttribute{
				MarkdownDescription: "Key algorithm: " + keyAlgorithmEnum.describe() + ". Defaults to `RSA`. Ed25519 " +
					"and P-521 keys need JDK 15 or later on the Java side; ACME CAs take RSA, P256 and P384 only.",
				Optional:   true,
				Computed:   true,
				Default:    stringdefault.StaticString(keystore.RSA),
				Validators: []validator.String{keyAlgorithmEnum.validator()},
			},
			"rsa_bits": schema.Int64Attribute{
				MarkdownDescription: "RSA key size: 2048, 3072 or 4096. Defaults to 2048 for RSA; only for RSA keys.",
				Optional:            true,
				Computed:            true,
				Validators:          []validator.Int64{int64validator.OneOf(rsaKeySizes...)},
			},
			"ecdsa_curve": schema.StringAttribute{
				MarkdownDescription: "ECDSA curve: " + ecdsaCurveEnum.describe() + ". Defaults to `P256` for ECDSA; " +
					"only for ECDSA keys.",
				Optional:   true,
				Computed:   true,
				Validators: []validator.String{ecdsaCurveEnum.validator()},
			},
		},
	}
}

func (r *keystoreResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan keystoreModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	tflog.Debug(ctx, "creating the keystore entry on the host", map[string]any{"path": plan.Path.ValueString(), "alias": plan.Alias.ValueString(), "source": plan.source().block()})
	pw, diags := r.password(ctx, &plan, &req.Config)
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	a := &applyRequest{plan: &plan, config: &req.Config, password: pw, private: resp.Private, diags: &resp.Diagnostics}
	if !r.prepareFile(ctx, a) {
		return
	}
	switch src := plan.source().(type) {
	case runtimeSource:
		src.create(ctx, r, a)
	case issuer:
		r.createEntry(ctx, src, a)
	}
	if resp.Diagnostics.HasError() {
		return
	}
	r.finishApply(ctx, a)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *keystoreResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state keystoreModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	tflog.Debug(ctx, "updating the keystore entry on the host", map[string]any{"path": plan.Path.ValueString(), "alias": plan.Alias.ValueString(), "source": plan.source().block()})
	pw, diags := r.password(ctx, &plan, &req.Config)
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	a := &applyRequest{plan: &plan, state: &state, config: &req.Config, password: pw, private: resp.Private, diags: &resp.Diagnostics}
	a.oldPasswords = r.priorPasswords(ctx, &state, pw)
	a.damaged, diags = getDamaged(ctx, req.Private)
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	if !r.prepareFile(ctx, a) {
		return
	}
	switch src := plan.source().(type) {
	case runtimeSource:
		src.update(ctx, r, a)
	case issuer:
		r.updateEntry(ctx, src, a)
	}
	if resp.Diagnostics.HasError() {
		return
	}
	r.finishApply(ctx, a)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *keystoreResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state keystoreModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ksPath, alias := state.Path.ValueString(), state.Alias.ValueString()
	tflog.Debug(ctx, "reading the keystore on the host", map[string]any{"path": ksPath, "alias": alias})
	if r.data.missing(ctx, ksPath) {
		resp.State.RemoveResource(ctx) // deleted outside Terraform: plan creates it
		return
	}
	pw, ok := r.readPassword(ctx, &state)
	if !ok {
		resp.Diagnostics.AddWarning("Keystore Password Not Available",
			fmt.Sprintf("The keystore %s (alias %q) uses password_wo, which the provider keeps on the host under "+
				"state_dir, and that copy is gone, so Read cannot compare the entry with the file. Set "+
				"password_wo with a new password_wo_version to store it again.", r.data.onHost(ksPath), alias))
		return
	}
	ks, err := keystore.Open(ctx, r.data.file(ksPath), []byte(pw))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		resp.State.RemoveResource(ctx)
		return
	case errors.Is(err, keystore.ErrNotKeystore) && !state.Type.IsNull():
		// Truncated or overwritten while the runtime may still serve it:
		// plan shows the repair, apply writes a new keystore.
		resp.Diagnostics.AddWarning("Keystore Damaged",
			fmt.Sprintf("%s\n\nKeystore file: %s\nAlias: %s\n\nThe file is no longer a keystore; apply writes a new "+
				"one, with a new key and certificate for this entry. Anything else the file held is lost.", err, ksPath, alias))
		resp.Diagnostics.Append(setDamaged(ctx, resp.Private, true)...)
		return
	case errors.Is(err, keystore.ErrWrongStorePassword) && !state.Type.IsNull():
		// Changed outside Terraform (keytool -storepasswd): keep the state,
		// so that a configuration with the new password can be applied.
		resp.Diagnostics.AddWarning("Keystore Password Changed Outside Terraform",
			fmt.Sprintf("The keystore %s (alias %q) no longer opens with the password Terraform has. If it was "+
				"changed with keytool -storepasswd, set the new one (password, or password_wo with a new "+
				"password_wo_version) and apply.", r.data.onHost(ksPath), alias))
		return
	case err != nil:
		addKeystoreError(&resp.Diagnostics, "Unable to Read Keystore", ksPath, alias, err)
		return
	}
	resp.Diagnostics.Append(setDamaged(ctx, resp.Private, false)...)
	entry, ok := ks.Entry(alias)
	if !ok || entry.Kind != keystore.PrivateKey {
		resp.State.RemoveResource(ctx) // deleted outside Terraform (keytool -delete): plan creates it
		return
	}
	// An imported keystore arrives with only path, alias and passwords.
	adopting := state.Type.IsNull()
	state.Type = keystoreTypeEnum.keep(state.Type, string(ks.Type()))
	if adopting {
		resp.Diagnostics.Append(state.adopt(ctx, ks, entry)...)
	} else if rf, ok := state.source().(refresher); ok {
		resp.Diagnostics.Append(rf.refresh(ctx, &state, entry.Chain[0])...)
	}
	if state.Key != nil {
		state.Key = describeKey(entry.Chain[0].PublicKey, state.Key)
	}
	state.setChain(entry.Chain, r.data.now())
	resp.Diagnostics.Append(r.readFile(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if rs, ok := state.source().(runtimeSource); ok {
		rs.read(ctx, r, &state, pw, entry.Chain[0], resp.Private, &resp.Diagnostics)
	} else if a, diags := getApplied(ctx, req.Private); diags.HasError() {
		resp.Diagnostics.Append(diags...)
		return
	} else if a.Fingerprint == "" {
		resp.Diagnostics.Append(setApplied(ctx, resp.Private, entry.Chain[0])...)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *keystoreResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state keystoreModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	tflog.Debug(ctx, "deleting the keystore entry on the host", map[string]any{"path": state.Path.ValueString(), "alias": state.Alias.ValueString(),
		"source": state.source().block(), "delete_on_destroy": state.DeleteOnDestroy.ValueBool()})
	if rs, ok := state.source().(runtimeSource); ok {
		// Even a keystore left on disk must stop being renewed into.
		if rs.delete(ctx, r, &state, &resp.Diagnostics); resp.Diagnostics.HasError() {
			return
		}
	}
	r.deleteEntry(ctx, &state, &resp.Diagnostics)
}
