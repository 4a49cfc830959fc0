package provider

// What mailstack_listener's plan adds to the configuration: the served
// fingerprint, unknown whenever apply changes the listener; a check of
// the keystore the tls block names, when it is there already, with errors
// on the attribute to fix and warnings where Apache James could not use
// it; and james_tls_xml, the <tls> block James would need for the port.

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

// jamesSecretPlaceholder stands in james_tls_xml for the keystore
// password, which stays out of the state.
const jamesSecretPlaceholder = "@KEYSTORE_PASSWORD@"

func (r *listenerResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	r.checkPortClash(ctx, req, resp) // resource_listener_clash.go
	if req.Plan.Raw.IsNull() || resp.Diagnostics.HasError() {
		return // destroy
	}
	// Anything that differs from the state now is applied; bound planned
	// true after the runtime stopped counts too.
	changing := req.State.Raw.IsNull() || !req.Plan.Raw.Equal(req.State.Raw)
	var plan listenerModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if changing {
		// Apply records what the port serves then, which a renewed or
		// replaced keystore may have changed since the last refresh.
		plan.ServedFingerprint = types.StringUnknown()
		switch t := plan.TLS; {
		case t == nil || t.Mode.ValueString() == config.TLSNone:
			plan.ServedFingerprint = types.StringValue("")
		case !t.Expected.IsNull() && !t.Expected.IsUnknown():
			plan.ServedFingerprint = t.Expected
		}
	}
	if r.data != nil {
		if pw, err := plan.keystorePasswords(ctx, req.Config); err == nil {
			var prior *listenerModel
			if !req.State.Raw.IsNull() {
				prior = &listenerModel{}
				resp.Diagnostics.Append(req.State.Get(ctx, prior)...)
			}
			r.checkKeystores(ctx, &plan, prior, pw, resp)
		}
		plan.JamesTLSXML = r.jamesTLSXML(ctx, &plan)
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// keystoreRef is one keystore a tls block names: the default one or a
// certificate block's, with where its attributes are.
type keystoreRef struct {
	at                         path.Path
	file, password, alias, key types.String
	wo                         string // the password, from the plan or write-only
	priorPassword, priorKey    types.String
	james                      bool // the keystore James would serve (the default)
}

// keystoreRefs lists the keystores of the plan's tls block.
func keystoreRefs(plan, prior *listenerModel, pw tlsPasswords) []keystoreRef {
	t := plan.TLS
	if t == nil || t.Mode.IsUnknown() || t.Mode.ValueString() == config.TLSNone {
		return nil
	}
	var priorTLS *tlsModel
	if prior != nil {
		priorTLS = prior.TLS
	}
	refs := []keystoreRef{{at: path.Root("tls"), file: t.KeystorePath, password: t.KeystorePassword, alias: t.Alias,
		key: t.KeyPassword, wo: pw.keystore, james: true}}
	if priorTLS != nil {
		refs[0].priorPassword, refs[0].priorKey = priorTLS.KeystorePassword, priorTLS.KeyPassword
	}
	for i, c := range t.Certificates {
		ref := keystoreRef{at: path.Root("tls").AtName("certificate").AtListIndex(i), file: c.KeystorePath,
			password: c.KeystorePassword, alias: c.Alias, key: c.KeyPassword, wo: pw.certificates[i]}
		if priorTLS != nil && i < len(priorTLS.Certificates) {
			ref.priorPassword, ref.priorKey = priorTLS.Certificates[i].KeystorePassword, priorTLS.Certificates[i].KeyPassword
		}
		refs = append(refs, ref)
	}
	return refs
}

// checkKeystores opens each keystore the tls block names, when it exists
// and the values are known, and checks that the runtime can serve it:
// errors on its keystore_password, alias or key_password; warnings where
// a change in the same apply may still fix it, and where Apache James,
// with its one <secret>, could not use the default keystore.
func (r *listenerResource) checkKeystores(ctx context.Context, plan, prior *listenerModel, pw tlsPasswords, resp *resource.ModifyPlanResponse) {
	for _, ref := range keystoreRefs(plan, prior, pw) {
		if ref.file.IsNull() || ref.file.IsUnknown() || ref.alias.IsUnknown() || ref.key.IsUnknown() || ref.password.IsUnknown() || ref.wo == "" {
			continue
		}
		r.checkKeystore(ctx, ref, plan, resp)
	}
}

func (r *listenerResource) checkKeystore(ctx context.Context, ref keystoreRef, plan *listenerModel, resp *resource.ModifyPlanResponse) {
	at, file := ref.at, ref.file.ValueString()
	ks, err := keystore.Open(ctx, r.data.file(file), []byte(ref.wo))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return // made in the same apply, or apply says so
	case errors.Is(err, keystore.ErrWrongStorePassword):
		attr := "keystore_password"
		if ref.password.IsNull() {
			attr = "keystore_password_wo"
		}
		if r.opensWithPrior(ctx, file, ref, plan) {
			// Most likely the keystore's password changes in the same apply.
			resp.Diagnostics.AddAttributeWarning(at.AtName(attr), "Keystore Password Not in Effect Yet",
				keystoreErrorDetail(file, "(any)", err)+"\n\nThe keystore still opens with this listener's current "+
					"password: apply fails unless the keystore's password changes in the same apply.")
			return
		}
		resp.Diagnostics.AddAttributeError(at.AtName(attr), "Wrong Keystore Password", keystoreErrorDetail(file, "(any)", err))
		return
	case errors.Is(err, keystore.ErrNotKeystore):
		return // damaged: mailstack_keystore plans the repair
	case err != nil:
		resp.Diagnostics.AddAttributeError(at.AtName("keystore_path"), "Unable to Use Keystore", keystoreErrorDetail(file, "(any)", err))
		return
	}
	alias, err := ks.PrivateKeyAlias(ref.alias.ValueString())
	switch {
	case errors.Is(err, keystore.ErrAliasNotFound) && ref.alias.ValueString() != "":
		// A mailstack_keystore may add the entry in the same apply.
		resp.Diagnostics.AddAttributeWarning(at.AtName("alias"), "No Such Private Key Entry Yet",
			keystoreErrorDetail(file, ref.alias.ValueString(), err)+"\n\nApply fails unless the entry is made in the same apply.")
		return
	case err != nil:
		resp.Diagnostics.AddAttributeError(at.AtName("alias"), "No Such Private Key Entry",
			fmt.Sprintf("%s\n\nKeystore file: %s\n\nSet %s to the private key entry this port serves.", err, file, at.AtName("alias")))
		return
	}
	if _, _, err := ks.PrivateKeyEntry(alias, []byte(ref.key.ValueString())); err != nil {
		if ref.priorKey.Equal(ref.key) || ref.priorKey.IsNull() && ref.priorPassword.IsNull() {
			resp.Diagnostics.AddAttributeError(at.AtName("key_password"), "Unable to Open Private Key", keystoreErrorDetail(file, alias, err))
		}
		return // or its password changes in the same apply
	}
	if !ref.james {
		return
	}
	var keys []string
	for _, e := range ks.Entries() {
		if e.Kind == keystore.PrivateKey {
			keys = append(keys, e.Alias)
		}
	}
	if len(keys) > 1 {
		resp.Diagnostics.AddAttributeWarning(at.AtName("keystore_path"), "Several Private Keys for Apache James",
			fmt.Sprintf("%s holds %d private key entries (%s). This listener serves %q, but Apache James serves "+
				"whichever its key manager picks for the client: a keystore James reads should hold one private key.",
				file, len(keys), strings.Join(keys, ", "), alias))
	}
	if kp := ref.key.ValueString(); kp != "" && kp != ref.wo {
		resp.Diagnostics.AddAttributeWarning(at.AtName("key_password"), "Key Password Differs From Store Password",
			fmt.Sprintf("The key %q in %s has its own password. Apache James opens the keystore and the key with its "+
				"one <secret>, so it could not use this keystore: change the key's password to the store password "+
				"(mailstack_keystore without key_password, or keytool -keypasswd).", alias, file))
	}
}

// opensWithPrior reports whether the keystore still opens with the
// password the listener had (from the state, or the runtime's config for
// a write-only one), so that a new password at plan time is most likely
// a change made in the same apply rather than a mistake.
func (r *listenerResource) opensWithPrior(ctx context.Context, file string, ref keystoreRef, plan *listenerModel) bool {
	old := ref.priorPassword.ValueString()
	if old == "" && ref.james {
		if serverID, id, ok := splitListenerID(plan.ID.ValueString()); ok {
			if s := r.storedSecrets(ctx, serverID, id); s != nil {
				old = s.KeystorePassword.ValueString()
			}
		}
	}
	if old == "" || old == ref.wo {
		return false
	}
	_, err := keystore.Open(ctx, r.data.file(file), []byte(old))
	return err == nil
}

// jamesTLSXML renders the <tls> block Apache James would need for the
// listener, for its default certificate (tls.keystore_path, else the
// first certificate block; James serves one per port); unknown while the
// keystore's type is not known (the file is made in the same apply).
func (r *listenerResource) jamesTLSXML(ctx context.Context, m *listenerModel) types.String {
	t := m.TLS
	if t == nil || t.Mode.ValueString() == config.TLSNone {
		return types.StringValue("<tls socketTLS=\"false\" startTLS=\"false\"/>\n")
	}
	if t.Mode.IsUnknown() || t.KeystorePath.IsUnknown() || t.MinVersion.IsUnknown() || t.CipherSuites.IsUnknown() || t.ClientAuth.IsUnknown() {
		return types.StringUnknown()
	}
	ksPath, certFile, keyFile := t.KeystorePath, types.StringNull(), types.StringNull()
	if ksPath.IsNull() && len(t.Certificates) > 0 {
		c := t.Certificates[0]
		ksPath, certFile, keyFile = c.KeystorePath, c.CertificateFile, c.PrivateKeyFile
	}
	for _, v := range []types.String{ksPath, certFile, keyFile} {
		if v.IsUnknown() {
			return types.StringUnknown()
		}
	}
	var b strings.Builder
	esc := func(s string) string {
		var e strings.Builder
		_ = xml.EscapeText(&e, []byte(s))
		return e.String()
	}
	implicit := t.Mode.ValueString() == config.TLSImplicit
	fmt.Fprintf(&b, "<tls socketTLS=\"%t\" startTLS=\"%t\">\n", implicit, !implicit)
	file, typ := "", keystore.Type("")
	if ksPath.IsNull() {
		// James reads PEM files too.
		fmt.Fprintf(&b, "  <privateKey>file://%s</privateKey>\n", esc(r.data.absPath(keyFile.ValueString())))
		fmt.Fprintf(&b, "  <certificates>file://%s</certificates>\n", esc(r.data.absPath(certFile.ValueString())))
	} else {
		file = r.data.absPath(ksPath.ValueString())
		data, err := r.data.host.ReadFile(ctx, file)
		if typ = keystore.Detect(data); err != nil || typ == "" {
			return types.StringUnknown()
		}
		fmt.Fprintf(&b, "  <keystore>file://%s</keystore>\n", esc(file))
		fmt.Fprintf(&b, "  <keystoreType>%s</keystoreType>\n", typ)
		fmt.Fprintf(&b, "  <secret>%s</secret>\n", jamesSecretPlaceholder)
		b.WriteString("  <algorithm>SunX509</algorithm>\n")
	}
	protocols := []string{"TLSv1.2", "TLSv1.3"}
	if t.MinVersion.ValueString() == "1.3" {
		protocols = protocols[1:]
	}
	b.WriteString("  <supportedProtocols>\n")
	for _, p := range protocols {
		fmt.Fprintf(&b, "    <protocol>%s</protocol>\n", p)
	}
	b.WriteString("  </supportedProtocols>\n")
	var suites []string
	if t.CipherSuites.IsNull() {
		suites = config.DefaultCipherSuites
	} else {
		t.CipherSuites.ElementsAs(ctx, &suites, false)
	}
	b.WriteString("  <supportedCipherSuites>\n")
	// Java lists the TLS 1.3 suites with the others.
	for _, s := range append([]string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}, suites...) {
		fmt.Fprintf(&b, "    <cipherSuite>%s</cipherSuite>\n", esc(s))
	}
	b.WriteString("  </supportedCipherSuites>\n")
	switch t.ClientAuth.ValueString() {
	case config.ClientAuthRequire:
		if file == "" {
			b.WriteString("  <!-- client_auth = \"require\": James needs a <clientAuth> truststore -->\n")
			break
		}
		// mailstack checks client certificates against the keystore's
		// trusted entries: James takes them from the same file.
		b.WriteString("  <clientAuth>\n")
		fmt.Fprintf(&b, "    <truststore>file://%s</truststore>\n", esc(file))
		fmt.Fprintf(&b, "    <truststoreType>%s</truststoreType>\n", typ)
		fmt.Fprintf(&b, "    <truststoreSecret>%s</truststoreSecret>\n", jamesSecretPlaceholder)
		b.WriteString("  </clientAuth>\n")
	case config.ClientAuthRequest:
		b.WriteString("  <!-- client_auth = \"request\": James asks for client certificates only when it requires them -->\n")
	}
	b.WriteString("</tls>\n")
	return types.StringValue(b.String())
}
