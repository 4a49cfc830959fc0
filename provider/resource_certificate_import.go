package provider

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

var (
	_ resource.Resource                     = (*certificateImportResource)(nil)
	_ resource.ResourceWithConfigure        = (*certificateImportResource)(nil)
	_ resource.ResourceWithModifyPlan       = (*certificateImportResource)(nil)
	_ resource.ResourceWithValidateConfig   = (*certificateImportResource)(nil)
	_ resource.ResourceWithConfigValidators = (*certificateImportResource)(nil)
	_ resource.ResourceWithImportState      = (*certificateImportResource)(nil)
)

// NewCertificateImportResource returns the mailstack_certificate_import
// resource.
func NewCertificateImportResource() resource.Resource { return &certificateImportResource{} }

type certificateImportResource struct{ data *providerData }

type certificateImportModel struct {
	ID                types.String `tfsdk:"id"`
	KeystorePath      types.String `tfsdk:"keystore_path"`
	KeystorePassword  types.String `tfsdk:"keystore_password"`
	PasswordWO        types.String `tfsdk:"password_wo"`
	PasswordWOVersion types.Int64  `tfsdk:"password_wo_version"`
	KeystoreType      types.String `tfsdk:"keystore_type"`
	DeleteOnDestroy   types.Bool   `tfsdk:"delete_on_destroy"`
	Alias             types.String `tfsdk:"alias"`
	CertificatePEM    types.String `tfsdk:"certificate_pem"`
	Aliases           types.List   `tfsdk:"aliases"`
	Fingerprint       types.String `tfsdk:"fingerprint_sha256"`
	Fingerprints      types.List   `tfsdk:"fingerprints_sha256"`
	Subject           types.String `tfsdk:"subject"`
	NotAfter          types.String `tfsdk:"not_after"`
}

func (r *certificateImportResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_certificate_import"
}

func (r *certificateImportResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	resp.Schema = schema.Schema{
		// Version 0 until the first change of shape, which brings an
		// upgrader (see mailstack_keystore's).
		Version: 0,
		MarkdownDescription: "Trusted certificate entries in a keystore file (`keytool -importcert -trustcacerts " +
			"-alias root`): a CA root or intermediate, one certificate or a PEM bundle. The keystore may be managed " +
			"by a `mailstack_keystore` or not; entries this resource does not own are kept, and destroy removes " +
			"only its own. One certificate is stored under `alias`; a bundle of n certificates under `alias-1` ... " +
			"`alias-n`, in bundle order (keytool imports one certificate per alias). Read notices an entry removed " +
			"or replaced outside Terraform, and apply puts it back.\n\n" +
			"A `mailstack_keystore` in `csr` mode uses these entries to complete and check a CA reply that lacks " +
			"its root: make the keystore depend on this resource (`depends_on`) so the root is there first.",
		Attributes: map[string]schema.Attribute{
			// Required
			"keystore_path": schema.StringAttribute{
				MarkdownDescription: "Keystore file on the target host; created (empty but for these entries) when " +
					"missing. Changing it replaces the resource.",
				Required:      true,
				PlanModifiers: replace,
				Validators:    []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			// Optional
			"keystore_password": schema.StringAttribute{
				MarkdownDescription: "The keystore's store password (keytool's `-storepass`), kept in the Terraform " +
					"state (sensitive); exactly one of it and `password_wo` is required. This resource never changes " +
					"the file's password: change it with `mailstack_keystore`'s `password` (or keytool -storepasswd) " +
					"and set the new one here too. Plan checks it against an existing keystore.",
				Optional:   true,
				Sensitive:  true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"password_wo": schema.StringAttribute{
				MarkdownDescription: "The keystore's store password, write-only (Terraform 1.11 and later): never in " +
					"the plan or the state. Change `password_wo_version` with it. As for `mailstack_keystore`, the " +
					"provider keeps a copy on the target host (mode 0600 under `state_dir`) so that Read can open the " +
					"keystore.",
				Optional:   true,
				Sensitive:  true,
				WriteOnly:  true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"password_wo_version": schema.Int64Attribute{
				MarkdownDescription: "Change it to use a new `password_wo`.",
				Optional:            true,
			},
			"delete_on_destroy": schema.BoolAttribute{
				MarkdownDescription: "Whether destroy deletes the entries (and the file, once nothing else is in it). " +
					"Defaults to `true` for entries this resource imported and to `false` for ones adopted with " +
					"`terraform import`, which destroy then leaves in the keystore (the plan says so).",
				Optional:      true,
				Computed:      true,
				PlanModifiers: []planmodifier.Bool{boolplanmodifier.UseStateForUnknown()},
			},
			"alias": schema.StringAttribute{
				MarkdownDescription: "Alias of the trusted entry (keytool's `-alias`), lower case; a bundle uses " +
					"`<alias>-1` ... `<alias>-n`. Changing it replaces the resource.",
				Required:      true,
				PlanModifiers: replace,
				Validators:    []validator.String{stringvalidator.LengthAtLeast(1), stringvalidator.RegexMatches(aliasPattern, aliasPatternMessage)},
			},
			"certificate_pem": schema.StringAttribute{
				MarkdownDescription: "The certificate, or a bundle of certificates, PEM (`file(\"ca-chain.pem\")`). " +
					"Changing it updates the entries in place.",
				Required:   true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"keystore_type": schema.StringAttribute{
				MarkdownDescription: "Format of the keystore: " + keystoreTypeEnum.describe() + ". Used when the file does " +
					"not exist yet (default `JKS`); an existing file must have this format. Read from the file when " +
					"not set. Changing it replaces the resource.",
				Optional:      true,
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown(), keystoreTypeEnum.requiresReplace()},
				Validators:    []validator.String{keystoreTypeEnum.validator()},
			},
			// Computed
			"id": schema.StringAttribute{
				MarkdownDescription: "`<keystore_path>:<alias>`, the import id.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"aliases": schema.ListAttribute{
				MarkdownDescription: "The aliases of the trusted entries, in bundle order: `[alias]` for one " +
					"certificate, `[alias-1, ..., alias-n]` for a bundle.",
				Computed:    true,
				ElementType: types.StringType,
			},
			"fingerprint_sha256": schema.StringAttribute{
				MarkdownDescription: "SHA-256 fingerprint of the first certificate, as `keytool -list` prints it.",
				Computed:            true,
			},
			"fingerprints_sha256": schema.ListAttribute{
				MarkdownDescription: "SHA-256 fingerprints of every certificate, in `aliases` order.",
				Computed:            true,
				ElementType:         types.StringType,
			},
			"subject": schema.StringAttribute{
				MarkdownDescription: "Subject of the first certificate, as keytool's \"Owner:\".",
				Computed:            true,
			},
			"not_after": schema.StringAttribute{
				MarkdownDescription: "The earliest end of validity among the certificates, RFC 3339.",
				Computed:            true,
			},
		},
	}
}

func (r *certificateImportResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{
		resourcevalidator.ExactlyOneOf(path.MatchRoot("keystore_password"), path.MatchRoot("password_wo")),
		resourcevalidator.Conflicting(path.MatchRoot("keystore_password"), path.MatchRoot("password_wo_version")),
	}
}

func (r *certificateImportResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = configuredData(req.ProviderData, &resp.Diagnostics)
}

func (r *certificateImportResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var pemText types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("certificate_pem"), &pemText)...)
	if pemText.IsNull() || pemText.IsUnknown() {
		return
	}
	if _, err := keystore.ParseCertificatesPEM([]byte(pemText.ValueString())); err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("certificate_pem"), "Invalid Certificate", err.Error())
	}
}

// trustedAliases are the aliases ImportTrustedPEM gives n certificates.
func trustedAliases(alias string, n int) []string {
	if n == 1 {
		return []string{alias}
	}
	out := make([]string, n)
	for i := range out {
		out[i] = alias + "-" + strconv.Itoa(i+1)
	}
	return out
}

// holdsImport reports whether the trusted group of alias is what
// importing certs under alias makes: the same certificates under the same
// aliases.
func holdsImport(group []keystore.Entry, alias string, certs []*x509.Certificate) bool {
	return sameCertificates(groupCertificates(group), certs) && slices.Equal(groupAliases(group), trustedAliases(alias, len(certs)))
}

// orderedGroup sorts a trusted group as ImportTrustedPEM numbers it:
// alias, then alias-1, alias-2, ..., alias-10 (numerically).
func orderedGroup(group []keystore.Entry, alias string) []keystore.Entry {
	n := func(e keystore.Entry) int {
		i, _ := strconv.Atoi(strings.TrimPrefix(e.Alias, alias+"-"))
		return i // 0 for alias itself
	}
	out := slices.Clone(group)
	slices.SortFunc(out, func(a, b keystore.Entry) int { return n(a) - n(b) })
	return out
}

func groupCertificates(group []keystore.Entry) []*x509.Certificate {
	out := make([]*x509.Certificate, len(group))
	for i, e := range group {
		out[i] = e.Chain[0]
	}
	return out
}

func groupAliases(group []keystore.Entry) []string {
	out := make([]string, len(group))
	for i, e := range group {
		out[i] = e.Alias
	}
	return out
}

// describe sets the computed attributes for certs stored under aliases.
func (m *certificateImportModel) describe(aliases []string, certs []*x509.Certificate) {
	fps := make([]string, len(certs))
	earliest := certs[0].NotAfter
	for i, c := range certs {
		fps[i] = keystore.Fingerprint(c)
		if c.NotAfter.Before(earliest) {
			earliest = c.NotAfter
		}
	}
	m.ID = types.StringValue(m.KeystorePath.ValueString() + ":" + m.Alias.ValueString())
	m.Aliases, _ = types.ListValueFrom(context.Background(), types.StringType, aliases)
	m.Fingerprints, _ = types.ListValueFrom(context.Background(), types.StringType, fps)
	m.Fingerprint = types.StringValue(fps[0])
	m.Subject = types.StringValue(keytoolDN(certs[0].RawSubject))
	m.NotAfter = types.StringValue(rfc3339(earliest))
}

// ModifyPlan shows the entries a new certificate_pem will make, warns
// about certificates that are not valid now and about entries destroy
// leaves, and checks the password against an existing keystore.
func (r *certificateImportResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		var state certificateImportModel
		if resp.Diagnostics.Append(req.State.Get(ctx, &state)...); !resp.Diagnostics.HasError() && !state.DeleteOnDestroy.ValueBool() {
			resp.Diagnostics.AddWarning("Trusted Entries Kept on Destroy",
				fmt.Sprintf("Destroy leaves the trusted entries %q in %s: this resource adopted them (terraform import) "+
					"or has delete_on_destroy = false.", state.Alias.ValueString(), state.KeystorePath.ValueString()))
		}
		return
	}
	var plan certificateImportModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if req.State.Raw.IsNull() && plan.DeleteOnDestroy.IsUnknown() {
		plan.DeleteOnDestroy = types.BoolValue(true)
	}
	r.checkPassword(ctx, &plan, req, &resp.Diagnostics)
	if plan.CertificatePEM.IsUnknown() || plan.Alias.IsUnknown() || plan.KeystorePath.IsUnknown() {
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return // computed attributes stay unknown
	}
	certs, err := keystore.ParseCertificatesPEM([]byte(plan.CertificatePEM.ValueString()))
	if err != nil {
		return // ValidateConfig said so
	}
	now := r.data.now()
	for _, c := range certs {
		if now.After(c.NotAfter) || now.Before(c.NotBefore) {
			resp.Diagnostics.AddAttributeWarning(path.Root("certificate_pem"), "Certificate Not Valid Now",
				fmt.Sprintf("%q is valid from %s to %s. It is imported as keytool would, but no chain through it "+
					"verifies now.", keytoolDN(c.RawSubject), rfc3339(c.NotBefore), rfc3339(c.NotAfter)))
		}
	}
	plan.describe(trustedAliases(plan.Alias.ValueString(), len(certs)), certs)
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// checkPassword checks at plan time that an existing keystore opens with
// the configured password, unless the state's password still opens it (a
// mailstack_keystore changes the password in the same apply).
func (r *certificateImportResource) checkPassword(ctx context.Context, plan *certificateImportModel, req resource.ModifyPlanRequest, diags *diag.Diagnostics) {
	if r.data == nil || plan.KeystorePath.IsUnknown() || plan.KeystorePassword.IsUnknown() {
		return
	}
	pw, err := plan.password(ctx, req.Config)
	if err != nil || pw == "" {
		return
	}
	file := plan.KeystorePath.ValueString()
	_, err = keystore.Open(ctx, r.data.file(file), []byte(pw))
	if !errors.Is(err, keystore.ErrWrongStorePassword) {
		return // missing (created by apply), fine, or reported by apply
	}
	if !req.State.Raw.IsNull() {
		var state certificateImportModel
		req.State.Get(ctx, &state)
		if old, ok := r.readPassword(ctx, &state); ok && old != pw {
			if _, err := keystore.Open(ctx, r.data.file(file), []byte(old)); err == nil {
				return
			}
		}
	}
	attr := "keystore_password"
	if plan.KeystorePassword.IsNull() {
		attr = "password_wo"
	}
	diags.AddAttributeError(path.Root(attr), "Wrong Keystore Password", keystoreErrorDetail(file, plan.Alias.ValueString(), err))
}

// password is the store password to write with: keystore_password, or
// the write-only password_wo from the configuration.
func (m *certificateImportModel) password(ctx context.Context, cfg configReader) (string, error) {
	return passwordOr(ctx, m.KeystorePassword, cfg, path.Root("password_wo"))
}

// readPassword is the password Read and Delete open the file with: the
// state's, or the copy kept on the host for password_wo.
func (r *certificateImportResource) readPassword(ctx context.Context, m *certificateImportModel) (string, bool) {
	return r.data.storedPassword(ctx, m.KeystorePassword, m.KeystorePath.ValueString(), stashTrusted, m.Alias.ValueString())
}

func (r *certificateImportResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan certificateImportModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	file, alias := plan.KeystorePath.ValueString(), plan.Alias.ValueString()
	tflog.Debug(ctx, "importing trusted certificates into the keystore on the host", map[string]any{"keystore_path": file, "alias": alias})
	pw, err := plan.password(ctx, req.Config)
	if err != nil || pw == "" {
		resp.Diagnostics.AddAttributeError(path.Root("password_wo"), "Missing Keystore Password", fmt.Sprint("one of keystore_password and password_wo must be set ", err))
		return
	}
	if err := r.data.mkdirFor(ctx, file); err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("keystore_path"), "Unable to Create Keystore Folder", err.Error())
		return
	}
	var typ keystore.Type
	var certs []*x509.Certificate
	err = keystore.Update(ctx, r.data.file(file), []byte(pw), keystore.Type(keystoreTypeEnum.normal(plan.KeystoreType.ValueString())), func(ks *keystore.Keystore) error {
		typ = ks.Type()
		var err error
		if certs, err = keystore.ParseCertificatesPEM([]byte(plan.CertificatePEM.ValueString())); err != nil {
			return err
		}
		if group := orderedGroup(ks.TrustedGroup(alias), alias); len(group) > 0 {
			if holdsImport(group, alias, certs) {
				return nil // already imported, by keytool say: adopt
			}
			return fmt.Errorf("the keystore already has trusted entries %s: adopt them with terraform import <address> %s:%s, or choose another alias",
				strings.Join(groupAliases(group), ", "), file, alias)
		}
		_, err = ks.ImportTrustedPEM(alias, []byte(plan.CertificatePEM.ValueString()))
		return err
	})
	if err != nil {
		addKeystoreError(&resp.Diagnostics, "Unable to Import Trusted Certificate", file, alias, err)
		return
	}
	plan.KeystoreType = keystoreTypeEnum.keep(plan.KeystoreType, string(typ))
	plan.describe(trustedAliases(alias, len(certs)), certs)
	if plan.DeleteOnDestroy.IsUnknown() {
		plan.DeleteOnDestroy = types.BoolValue(true)
	}
	r.data.keepPassword(ctx, plan.KeystorePassword.IsNull(), file, stashTrusted, alias, pw, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *certificateImportResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state certificateImportModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	file, alias := state.KeystorePath.ValueString(), state.Alias.ValueString()
	tflog.Debug(ctx, "reading the trusted certificate entries from the keystore on the host", map[string]any{"keystore_path": file, "alias": alias})
	if r.data.missing(ctx, file) {
		resp.State.RemoveResource(ctx)
		return
	}
	pw, ok := r.readPassword(ctx, &state)
	if !ok {
		resp.Diagnostics.AddWarning("Keystore Password Not Available",
			fmt.Sprintf("The keystore %s (alias %q) uses password_wo, whose copy under state_dir is gone, so Read "+
				"cannot compare the entries with the file. Set password_wo with a new password_wo_version.", file, alias))
		return
	}
	ks, err := keystore.Open(ctx, r.data.file(file), []byte(pw))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		resp.State.RemoveResource(ctx)
		return
	case errors.Is(err, keystore.ErrWrongStorePassword) && !state.CertificatePEM.IsNull():
		resp.Diagnostics.AddWarning("Keystore Password Changed",
			fmt.Sprintf("The keystore %s (alias %q) no longer opens with the password Terraform has. If its "+
				"password was changed, set the new one (keystore_password, or password_wo with a new "+
				"password_wo_version) and apply.", file, alias))
		return
	case err != nil:
		addKeystoreError(&resp.Diagnostics, "Unable to Read Keystore", file, alias, err)
		return
	}
	group := orderedGroup(ks.TrustedGroup(alias), alias)
	if len(group) == 0 {
		// Deleted outside Terraform (keytool -delete): plan imports again.
		resp.State.RemoveResource(ctx)
		return
	}
	onDisk := groupCertificates(group)
	if inState, err := keystore.ParseCertificatesPEM([]byte(state.CertificatePEM.ValueString())); err != nil || !sameCertificates(onDisk, inState) {
		// Replaced, removed in part, or just imported: the file's entries
		// become the state, and plan shows the difference.
		state.CertificatePEM = types.StringValue(string(keystore.EncodeCertificatesPEM(onDisk)))
	}
	state.KeystoreType = keystoreTypeEnum.keep(state.KeystoreType, string(ks.Type()))
	state.describe(groupAliases(group), onDisk)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// updateTrusted runs fn in keystore.Edit with the planned password, or
// with the prior one when the file still has it: this resource never
// changes the file's password, and the keystore that does may apply later.
func updateTrusted(ctx context.Context, file keystore.File, passwords []string, fn func(*keystore.Keystore) error) error {
	var opts keystore.EditOptions
	for _, pw := range passwords {
		opts.Passwords = append(opts.Passwords, []byte(pw))
	}
	return keystore.Edit(ctx, file, opts, fn)
}

func (r *certificateImportResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state certificateImportModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	file, alias := plan.KeystorePath.ValueString(), plan.Alias.ValueString()
	tflog.Debug(ctx, "replacing the trusted certificate entries in the keystore on the host", map[string]any{"keystore_path": file, "alias": alias})
	pw, err := plan.password(ctx, req.Config)
	if err != nil || pw == "" {
		resp.Diagnostics.AddAttributeError(path.Root("password_wo"), "Missing Keystore Password", fmt.Sprint("one of keystore_password and password_wo must be set ", err))
		return
	}
	passwords := []string{pw}
	if old, ok := r.readPassword(ctx, &state); ok && old != pw {
		passwords = append(passwords, old)
	}
	var certs []*x509.Certificate
	var typ keystore.Type
	err = updateTrusted(ctx, r.data.file(file), passwords, func(ks *keystore.Keystore) error {
		typ = ks.Type()
		var err error
		if certs, err = keystore.ParseCertificatesPEM([]byte(plan.CertificatePEM.ValueString())); err != nil {
			return err
		}
		group := orderedGroup(ks.TrustedGroup(alias), alias)
		if holdsImport(group, alias, certs) {
			return nil // a new password or the same certificates in other PEM text
		}
		_, err = ks.ImportTrustedPEM(alias, []byte(plan.CertificatePEM.ValueString()))
		return err
	})
	if err != nil {
		addKeystoreError(&resp.Diagnostics, "Unable to Import Trusted Certificate", file, alias, err)
		return
	}
	plan.KeystoreType = keystoreTypeEnum.keep(plan.KeystoreType, string(typ))
	plan.describe(trustedAliases(alias, len(certs)), certs)
	r.data.keepPassword(ctx, plan.KeystorePassword.IsNull(), file, stashTrusted, alias, pw, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *certificateImportResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state certificateImportModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	file, alias := state.KeystorePath.ValueString(), state.Alias.ValueString()
	tflog.Debug(ctx, "deleting the trusted certificate entries from the keystore on the host", map[string]any{"keystore_path": file, "alias": alias})
	defer r.data.forgetPassword(ctx, file, stashTrusted, alias, &resp.Diagnostics)
	if !state.DeleteOnDestroy.ValueBool() || !r.data.exists(ctx, file) {
		return
	}
	var owned []string
	resp.Diagnostics.Append(state.Aliases.ElementsAs(ctx, &owned, false)...)
	if resp.Diagnostics.HasError() {
		return
	}
	pw, ok := r.readPassword(ctx, &state)
	if !ok {
		resp.Diagnostics.AddError("Unable to Delete Trusted Certificate", fmt.Sprintf("The password of %s is not "+
			"available (password_wo, and its copy on the host is gone). Remove the entries %s with keytool -delete, "+
			"or set delete_on_destroy = false.", file, strings.Join(owned, ", ")))
		return
	}
	empty := false
	err := updateTrusted(ctx, r.data.file(file), []string{pw}, func(ks *keystore.Keystore) error {
		for _, a := range owned {
			if e, ok := ks.Entry(a); ok && e.Kind == keystore.TrustedCertificate {
				if err := ks.DeleteEntry(a); err != nil {
					return err
				}
			}
		}
		empty = len(ks.Entries()) == 0
		return nil
	})
	if err != nil {
		addKeystoreError(&resp.Diagnostics, "Unable to Delete Trusted Certificate", file, alias, err)
		return
	}
	if empty {
		// Nothing else lives in the file: remove it, as mailstack_keystore
		// does.
		if err := r.data.host.Remove(ctx, file); err != nil {
			resp.Diagnostics.AddError("Unable to Delete Keystore", err.Error())
		}
	}
}

// ImportState adopts trusted entries by "<keystore_path>:<alias>" (the
// resource's id); the store password comes from MAILSTACK_KEYSTORE_PASSWORD.
func (r *certificateImportResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	id, ok := r.data.importID(req.ID, &resp.Diagnostics)
	if !ok {
		return
	}
	i := strings.LastIndex(id, ":")
	if i <= 0 || i == len(id)-1 {
		resp.Diagnostics.AddError("Invalid Import ID",
			fmt.Sprintf("Import a mailstack_certificate_import by \"<keystore_path>:<alias>\", e.g. /etc/mail/james.keystore:root; got %q.", id))
		return
	}
	file, alias := id[:i], id[i+1:]
	password := r.data.env(KeystorePasswordEnv)
	if password == "" {
		resp.Diagnostics.AddError("Keystore Password Needed for Import",
			fmt.Sprintf("terraform import cannot read the configuration, so it takes the store password of %s from the environment: set %s.", file, KeystorePasswordEnv))
		return
	}
	ks, err := keystore.Open(ctx, r.data.file(file), []byte(password))
	if err != nil {
		addKeystoreError(&resp.Diagnostics, "Unable to Import Trusted Certificate", file, alias, err)
		return
	}
	if len(ks.TrustedGroup(alias)) == 0 {
		resp.Diagnostics.AddError("Unable to Import Trusted Certificate",
			fmt.Sprintf("%s has no trusted certificate entry %q (nor %q-1, %q-2, ...).\n\nKeystore file: %s\nAlias: %s", file, alias, alias, alias, file, alias))
		return
	}
	for attr, v := range map[string]string{"id": id, "keystore_path": file, "alias": alias, "keystore_password": password} {
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root(attr), types.StringValue(v))...)
	}
	// Terraform did not import them: destroy leaves them (delete_on_destroy).
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("delete_on_destroy"), false)...)
}
