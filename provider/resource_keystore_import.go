package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

// ImportState adopts a keystore made elsewhere (keytool, an Apache James
// install): the id is "<path>", or "<path>:<alias>" when the file holds
// several private key entries. The configuration is not available while
// importing, so the store password comes from MAILSTACK_KEYSTORE_PASSWORD
// and a distinct JKS key password from MAILSTACK_KEYSTORE_KEY_PASSWORD.
// Read then describes the entry (adopt); nothing is written.
func (r *keystoreResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	id, ok := r.data.importID(req.ID, &resp.Diagnostics)
	if !ok {
		return
	}
	file, alias := splitImportID(id, func(p string) bool { return r.data.exists(ctx, p) })
	shownAlias := alias
	if shownAlias == "" {
		shownAlias = "(the only private key entry)"
	}
	password := r.data.env(KeystorePasswordEnv)
	if password == "" {
		resp.Diagnostics.AddError("Keystore Password Needed for Import",
			fmt.Sprintf("terraform import cannot read the configuration, so it takes the store password of %s from "+
				"the environment: set %s (and %s when a JKS key has its own password).", file, KeystorePasswordEnv, KeystoreKeyPasswordEnv))
		return
	}
	ks, err := keystore.Open(ctx, r.data.file(file), []byte(password))
	if err != nil {
		addKeystoreError(&resp.Diagnostics, "Unable to Import Keystore", file, shownAlias, err)
		return
	}
	if alias, err = ks.PrivateKeyAlias(alias); err != nil {
		addKeystoreError(&resp.Diagnostics, "Unable to Import Keystore", file, shownAlias, err)
		return
	}
	keyPassword := types.StringNull()
	if kp := r.data.env(KeystoreKeyPasswordEnv); kp != "" {
		// Recorded only when the key needs it, so that a configuration
		// without key_password matches a key under the store password.
		if _, _, used, err := openPrivateKey(ks, alias, "", kp); err != nil {
			addKeystoreError(&resp.Diagnostics, "Unable to Import Keystore", file, alias, err)
			return
		} else if used != "" {
			keyPassword = types.StringValue(used)
		}
	}
	for attr, v := range map[string]types.String{
		"id": types.StringValue(file), "path": types.StringValue(file), "alias": types.StringValue(alias),
		"password": types.StringValue(password), "key_password": keyPassword,
	} {
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root(attr), v)...)
	}
	// Terraform did not make it: destroy leaves it (see delete_on_destroy).
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("delete_on_destroy"), false)...)
}

// adopt describes an imported private key entry the way a configuration
// that matches it would: the key block, and self_signed when the
// certificate is issued by itself (keytool -genkeypair) or csr with the
// installed chain as certificate_chain_pem when a CA signed it.
func (m *keystoreModel) adopt(ctx context.Context, ks *keystore.Keystore, e keystore.Entry) diag.Diagnostics {
	var diags diag.Diagnostics
	leaf := e.Chain[0]
	m.ID = m.Path
	m.Key = describeKey(leaf.PublicKey, nil)
	names := nameModel{Subject: subjectFrom(leaf, nil)}
	var d diag.Diagnostics
	names.DNSNames, d = listFrom(ctx, leaf.DNSNames, types.ListNull(types.StringType), func(s string) string { return s })
	diags.Append(d...)
	names.IPAddresses, d = listFrom(ctx, leaf.IPAddresses, types.ListNull(types.StringType), net.IP.String)
	diags.Append(d...)
	m.CSRPEM = types.StringNull()
	m.CertificateChainPEM = types.StringNull()
	if keystore.IsSelfSigned(leaf) {
		s := issueModel{
			nameModel:     names,
			ValidityDays:  types.Int64Value(keystore.ValidityDays(leaf)),
			ValidityHours: types.Int64Null(),
			IsCA:          types.BoolNull(),
			KeyUsage:      types.ListNull(types.StringType),
			ExtKeyUsage:   types.ListNull(types.StringType),
			renewalModel:  renewalModel{EarlyRenewalDays: types.Int64Null(), EarlyRenewalHours: types.Int64Null()},
		}
		if leaf.IsCA {
			s.IsCA = types.BoolValue(true)
		}
		s.defaults(&s)
		m.SelfSigned = []selfSignedModel{{s}}
		return diags
	}
	m.CSR = []csrModel{{nameModel: names, renewalModel: renewalModel{EarlyRenewalDays: types.Int64Null(), EarlyRenewalHours: types.Int64Null()}}}
	m.CertificateChainPEM = types.StringValue(string(keystore.EncodeCertificatesPEM(e.Chain)))
	// A CSR needs the private key; without its password csr_pem stays
	// null and the first apply computes it.
	key, _, _, err := openPrivateKey(ks, e.Alias, m.KeyPassword.ValueString())
	if err != nil && !errors.Is(err, keystore.ErrWrongKeyPassword) {
		diags.AddError("Unable to Read Imported Key", err.Error())
		return diags
	}
	if key != nil {
		req, d := names.request(ctx, time.Now(), 0)
		diags.Append(d...)
		csr, err := keystore.CreateCSR(key, req)
		if err != nil {
			diags.AddError("Unable to Create CSR", err.Error())
			return diags
		}
		m.CSRPEM = types.StringValue(string(csr))
	}
	return diags
}
