package provider

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

var (
	_ resource.Resource                   = (*certificateImportResource)(nil)
	_ resource.ResourceWithConfigure      = (*certificateImportResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*certificateImportResource)(nil)
	_ resource.ResourceWithValidateConfig = (*certificateImportResource)(nil)
	_ resource.ResourceWithImportState    = (*certificateImportResource)(nil)
)

// NewCertificateImportResource returns the mailstack_certificate_import
// resource.
func NewCertificateImportResource() resource.Resource { return &certificateImportResource{} }

type certificateImportResource struct{ data *providerData }

type certificateImportModel struct {
	ID               types.String `tfsdk:"id"`
	KeystorePath     types.String `tfsdk:"keystore_path"`
	KeystorePassword types.String `tfsdk:"keystore_password"`
	KeystoreType     types.String `tfsdk:"keystore_type"`
	Alias            types.String `tfsdk:"alias"`
	CertificatePEM   types.String `tfsdk:"certificate_pem"`
	Aliases          types.List   `tfsdk:"aliases"`
	Fingerprint      types.String `tfsdk:"fingerprint_sha256"`
	Fingerprints     types.List   `tfsdk:"fingerprints_sha256"`
	Subject          types.String `tfsdk:"subject"`
	NotAfter         types.String `tfsdk:"not_after"`
}

func (r *certificateImportResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_certificate_import"
}

func (r *certificateImportResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	resp.Schema = schema.Schema{
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
			"keystore_password": schema.StringAttribute{
				MarkdownDescription: "The keystore's store password (keytool's `-storepass`). This resource never " +
					"changes the file's password: change it with `mailstack_keystore`'s `password` (or keytool " +
					"-storepasswd) and set the new one here too.",
				Required:   true,
				Sensitive:  true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
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
			// Optional
			"keystore_type": schema.StringAttribute{
				MarkdownDescription: "Format of the keystore: " + quoted(keystoreTypes) + ". Used when the file does " +
					"not exist yet (default `JKS`); an existing file must have this format. Read from the file when " +
					"not set. Changing it replaces the resource.",
				Optional:      true,
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown(), stringplanmodifier.RequiresReplace()},
				Validators:    []validator.String{stringvalidator.OneOf(keystoreTypes...)},
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

// ModifyPlan shows the entries a new certificate_pem will make, and warns
// about certificates that are not valid now.
func (r *certificateImportResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan certificateImportModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if plan.CertificatePEM.IsUnknown() || plan.Alias.IsUnknown() || plan.KeystorePath.IsUnknown() {
		return // computed attributes stay unknown
	}
	certs, err := keystore.ParseCertificatesPEM([]byte(plan.CertificatePEM.ValueString()))
	if err != nil {
		return // ValidateConfig said so
	}
	now := time.Now()
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

func (r *certificateImportResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan certificateImportModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	file, alias := plan.KeystorePath.ValueString(), plan.Alias.ValueString()
	tflog.Debug(ctx, "importing trusted certificates into the keystore on the host", map[string]any{"keystore_path": file, "alias": alias})
	if err := r.data.mkdirFor(ctx, file); err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("keystore_path"), "Unable to Create Keystore Folder", err.Error())
		return
	}
	var typ keystore.Type
	var certs []*x509.Certificate
	err := keystore.Update(ctx, r.data.file(file), []byte(plan.KeystorePassword.ValueString()), keystore.Type(plan.KeystoreType.ValueString()), func(ks *keystore.Keystore) error {
		typ = ks.Type()
		var err error
		if certs, err = keystore.ParseCertificatesPEM([]byte(plan.CertificatePEM.ValueString())); err != nil {
			return err
		}
		if group := orderedGroup(ks.TrustedGroup(alias), alias); len(group) > 0 {
			if holdsImport(group, alias, certs) {
				return errNoChange // already imported, by keytool say: adopt
			}
			return fmt.Errorf("the keystore already has trusted entries %s: adopt them with terraform import <address> %s:%s, or choose another alias",
				strings.Join(groupAliases(group), ", "), file, alias)
		}
		_, err = ks.ImportTrustedPEM(alias, []byte(plan.CertificatePEM.ValueString()))
		return err
	})
	if err != nil && !errors.Is(err, errNoChange) {
		addKeystoreError(&resp.Diagnostics, "Unable to Import Trusted Certificate", file, alias, err)
		return
	}
	plan.KeystoreType = types.StringValue(string(typ))
	plan.describe(trustedAliases(alias, len(certs)), certs)
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
	ks, err := keystore.Open(ctx, r.data.file(file), []byte(state.KeystorePassword.ValueString()))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		resp.State.RemoveResource(ctx)
		return
	case errors.Is(err, keystore.ErrWrongStorePassword) && !state.CertificatePEM.IsNull():
		resp.Diagnostics.AddWarning("Keystore Password Changed",
			fmt.Sprintf("The keystore %s (alias %q) no longer opens with the password in the Terraform state. If "+
				"its password was changed, set keystore_password to the new one and apply.", file, alias))
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
	state.KeystoreType = types.StringValue(string(ks.Type()))
	state.describe(groupAliases(group), onDisk)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// updateTrusted runs fn in keystore.Update with the planned password, or
// with the prior one when the file still has it: this resource never
// changes the file's password, and the keystore that does may apply later.
func updateTrusted(ctx context.Context, file keystore.File, passwords []string, fn func(*keystore.Keystore) error) error {
	var err error
	for i, pw := range passwords {
		if i > 0 && pw == passwords[i-1] {
			continue
		}
		if err = keystore.Update(ctx, file, []byte(pw), "", fn); !errors.Is(err, keystore.ErrWrongStorePassword) {
			break
		}
	}
	if errors.Is(err, errNoChange) {
		return nil
	}
	return err
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
	var certs []*x509.Certificate
	var typ keystore.Type
	err := updateTrusted(ctx, r.data.file(file), []string{plan.KeystorePassword.ValueString(), state.KeystorePassword.ValueString()}, func(ks *keystore.Keystore) error {
		typ = ks.Type()
		var err error
		if certs, err = keystore.ParseCertificatesPEM([]byte(plan.CertificatePEM.ValueString())); err != nil {
			return err
		}
		group := orderedGroup(ks.TrustedGroup(alias), alias)
		if holdsImport(group, alias, certs) {
			return errNoChange // a new password or the same certificates in other PEM text
		}
		_, err = ks.ImportTrustedPEM(alias, []byte(plan.CertificatePEM.ValueString()))
		return err
	})
	if err != nil {
		addKeystoreError(&resp.Diagnostics, "Unable to Import Trusted Certificate", file, alias, err)
		return
	}
	plan.KeystoreType = types.StringValue(string(typ))
	plan.describe(trustedAliases(alias, len(certs)), certs)
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
	if !r.data.exists(ctx, file) {
		return
	}
	var owned []string
	resp.Diagnostics.Append(state.Aliases.ElementsAs(ctx, &owned, false)...)
	if resp.Diagnostics.HasError() {
		return
	}
	empty := false
	err := updateTrusted(ctx, r.data.file(file), []string{state.KeystorePassword.ValueString()}, func(ks *keystore.Keystore) error {
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
		// Nothing else lives in the file: remove it and its lock file, as
		// mailstack_keystore does.
		for _, p := range []string{file, file + ".lock"} {
			if err := r.data.host.Remove(ctx, p); err != nil {
				resp.Diagnostics.AddError("Unable to Delete Keystore", err.Error())
			}
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
	password := os.Getenv(KeystorePasswordEnv)
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
}
