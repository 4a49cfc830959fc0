package provider

// The certificate sources of mailstack_keystore. Each block (self_signed,
// csr, locally_signed, pem, acme) is one implementation of
// certificateSource; what they share (the file, passwords, drift, renewal,
// the computed attributes) is done once, here and in
// resource_keystore_common.go, never in a switch on the source.
//
// Two kinds of source write the entry differently: an issuer makes the key
// and chain itself and the provider writes them (createEntry, updateEntry);
// a runtimeSource (acme) has the mail runtime write the entry.

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

// certificateSource is one source block of mailstack_keystore.
type certificateSource interface {
	// block names the configuration block that selects the source.
	block() string
	// schema is the block's schema.
	schema() schema.Block
	// validate checks the block's settings in ValidateConfig; unknown
	// values are checked once known.
	validate(ctx context.Context, m *keystoreModel, diags *diag.Diagnostics)
	// plan says what apply must make anew for an entry that exists, from
	// the planned settings and the state's (see planRequest). Drift on
	// disk and renewal are the caller's.
	plan(ctx context.Context, p *planRequest) planned
	// keyFromBlock reports whether the entry's key is the key block's,
	// made by the provider: another key (in the key block, or on disk
	// outside Terraform) then means a new entry, a replacement.
	keyFromBlock() bool
	// renewal is how long before not_after the certificate of m is due
	// for renewal, zero for never, and whether apply then renews it
	// (false: plan warns, because a CA or another tool renews).
	renewal(m *keystoreModel, leaf *x509.Certificate) (before time.Duration, renews bool)
}

// issuer is a source whose key and chain the provider makes and writes.
type issuer interface {
	certificateSource
	// issue returns the key and chain the entry gets, and for csr the
	// request: on create (in.key nil), when the plan wants a new
	// certificate (in.certificate) or a new CSR (in.csr).
	issue(ctx context.Context, in *issueRequest) (issued, error)
}

// runtimeSource is a source whose entry the mail runtime writes (acme).
type runtimeSource interface {
	certificateSource
	create(ctx context.Context, r *keystoreResource, a *applyRequest)
	update(ctx context.Context, r *keystoreResource, a *applyRequest)
	// read refreshes what only the runtime knows, after the common Read.
	read(ctx context.Context, r *keystoreResource, state *keystoreModel, password string, leaf *x509.Certificate, private privateState, diags *diag.Diagnostics)
	// delete stops the runtime's work on the entry, before the common
	// Delete.
	delete(ctx context.Context, r *keystoreResource, state *keystoreModel, diags *diag.Diagnostics)
}

// refresher is a source whose settings Read takes back from the
// certificate on disk, so that a certificate changed outside Terraform
// shows in plan as a difference from the configuration.
type refresher interface {
	refresh(ctx context.Context, m *keystoreModel, leaf *x509.Certificate) diag.Diagnostics
}

// certificateSources lists every source, in documentation order.
var certificateSources = []certificateSource{selfSignedSource{}, csrSource{}, locallySignedSource{}, pemSource{}, acmeSource{}}

// sourceBlocks names the source blocks, for messages.
func sourceBlocks() []string {
	out := make([]string, len(certificateSources))
	for i, s := range certificateSources {
		out[i] = s.block()
	}
	return out
}

// source returns the certificate source the model uses, nil if none.
func (m *keystoreModel) source() certificateSource {
	switch {
	case len(m.SelfSigned) == 1:
		return selfSignedSource{}
	case len(m.CSR) == 1:
		return csrSource{}
	case len(m.LocallySigned) == 1:
		return locallySignedSource{}
	case len(m.PEM) == 1:
		return pemSource{}
	case len(m.ACME) == 1:
		return acmeSource{}
	}
	return nil
}

// planned is what a source's plan asks of apply.
type planned struct {
	// newKey: the key block changed, the entry is made anew (replace).
	newKey bool
	// certificate: a new certificate (for the same key, or the new key of
	// a pem block); csr: a new signing request.
	certificate, csr bool
}

// issueRequest is what an issuer makes the entry from.
type issueRequest struct {
	model  *keystoreModel
	config configReader
	// ks is the keystore being changed (its trusted entries complete a CA
	// reply).
	ks *keystore.Keystore
	// key and chain are the entry's now; nil on create or repair.
	key   crypto.Signer
	chain []*x509.Certificate
	// certificate and csr say what the plan wants anew.
	certificate, csr bool
	r                *keystoreResource
	now              time.Time
}

// issued is an issuer's result; csr is nil when the CSR stays.
type issued struct {
	key   crypto.Signer
	chain []*x509.Certificate
	csr   []byte
}

// applyRequest carries one Create or Update through the source and the
// common steps.
type applyRequest struct {
	plan   *keystoreModel
	state  *keystoreModel // nil on create
	config *tfsdk.Config
	// password is the store password to write with; oldPasswords (update)
	// those the file may have now, the one in state first.
	password     string
	oldPasswords []string
	// damaged (update): Read found the file no longer a keystore.
	damaged bool
	// file is the keystore file, with the planned mode, owner and lock.
	file    host.File
	private privateState
	diags   *diag.Diagnostics
}

// request builds the keystore's CertificateRequest from the names of a
// source block, valid from now for validity.
func (n *nameModel) request(ctx context.Context, now time.Time, validity time.Duration) (keystore.CertificateRequest, diag.Diagnostics) {
	req := keystore.CertificateRequest{Subject: n.Subject.toKeystore(), NotBefore: now.Add(-time.Minute)}
	if validity > 0 {
		req.NotAfter = req.NotBefore.Add(validity)
	}
	diags := n.DNSNames.ElementsAs(ctx, &req.DNSNames, false)
	ips, d := ipAddresses(ctx, n.IPAddresses)
	diags.Append(d...)
	req.IPAddresses = ips
	return req, diags
}

// createEntry writes a new private key entry from an issuer. The alias
// must be new: an existing entry is adopted with terraform import, never
// overwritten.
func (r *keystoreResource) createEntry(ctx context.Context, src issuer, a *applyRequest) {
	ksPath, alias := a.plan.Path.ValueString(), a.plan.Alias.ValueString()
	var out issued
	err := keystore.Edit(ctx, a.file, keystore.EditOptions{Passwords: [][]byte{[]byte(a.password)}, Type: a.plan.keystoreType()}, func(ks *keystore.Keystore) error {
		if _, exists := ks.Entry(alias); exists {
			return fmt.Errorf("the keystore already has an entry %q: adopt it with terraform import <address> %s, or choose another alias", alias, ksPath)
		}
		var err error
		if out, err = src.issue(ctx, &issueRequest{model: a.plan, config: a.config, ks: ks, certificate: true, csr: true, r: r, now: r.now()}); err != nil {
			return err
		}
		return ks.SetPrivateKeyEntry(alias, out.key, out.chain, []byte(a.plan.KeyPassword.ValueString()))
	})
	if err != nil {
		addKeystoreError(a.diags, "Unable to Create Keystore Entry", ksPath, alias, err)
		return
	}
	a.plan.ID = a.plan.Path
	a.plan.recordIssued(out, r.now())
	a.diags.Append(setApplied(ctx, a.private, out.chain[0])...)
}

// updateEntry changes the entry in place as the plan says: a new
// certificate or CSR from the issuer, a new store or key password, the
// file's mode and owner, or a new keystore in place of a damaged file.
func (r *keystoreResource) updateEntry(ctx context.Context, src issuer, a *applyRequest) {
	plan, state := a.plan, a.state
	ksPath, alias := plan.Path.ValueString(), plan.Alias.ValueString()
	certChanged, csrChanged := plan.CertificatePEM.IsUnknown(), plan.CSRPEM.IsUnknown()
	passwordChanged := a.password != a.oldPasswords[0]
	keyPasswordChanged := !plan.KeyPassword.Equal(state.KeyPassword)
	if !certChanged && !csrChanged && !passwordChanged && !keyPasswordChanged && !a.damaged {
		// Nothing in the keystore changes (early_renewal_days, say); the
		// file's mode and owner may.
		if plan.fileSettingsChanged(state) {
			r.rewriteFile(ctx, a)
		}
		return
	}
	var out issued
	wrote := false
	opts := keystore.EditOptions{Password: []byte(a.password), Type: plan.keystoreType(), Repair: a.damaged}
	for _, pw := range a.oldPasswords {
		opts.Passwords = append(opts.Passwords, []byte(pw))
	}
	err := keystore.Edit(ctx, a.file, opts, func(ks *keystore.Keystore) error {
		in := &issueRequest{model: plan, config: a.config, ks: ks, certificate: certChanged, csr: csrChanged, r: r, now: r.now()}
		keyPW := ""
		if _, exists := ks.Entry(alias); exists {
			var err error
			if in.key, in.chain, keyPW, err = openPrivateKey(ks, alias, a.keyPasswordCandidates()...); err != nil {
				return err
			}
		} else if !a.damaged {
			return fmt.Errorf("the entry %q is gone from the keystore; refresh and apply again to create it", alias)
		} else {
			in.certificate, in.csr = true, true // a repaired file is empty
		}
		out = issued{key: in.key, chain: in.chain}
		if in.certificate || in.csr {
			o, err := src.issue(ctx, in)
			if err != nil {
				return err
			}
			out.key, out.chain = o.key, o.chain
			out.csr = o.csr
		}
		// The key is protected again when the store password it may use
		// changes, or it opened with another password than the planned one.
		rekey := in.key == nil || !publicKeyOf(out.key).Equal(in.key.Public()) || passwordChanged || keyPW != plan.KeyPassword.ValueString()
		if !rekey && sameCertificates(out.chain, in.chain) {
			return nil
		}
		wrote = true
		return ks.SetPrivateKeyEntry(alias, out.key, out.chain, []byte(plan.KeyPassword.ValueString()))
	})
	if err != nil {
		summary := "Unable to Update Keystore"
		switch {
		case a.damaged:
			summary = "Unable to Repair Keystore"
		case certChanged:
			summary = "Unable to Reissue Certificate"
		}
		addKeystoreError(a.diags, summary, ksPath, alias, err)
		return
	}
	if !wrote && !passwordChanged && plan.fileSettingsChanged(state) {
		r.rewriteFile(ctx, a)
	}
	plan.recordIssued(out, r.now())
	a.diags.Append(setApplied(ctx, a.private, out.chain[0])...)
	a.diags.Append(setDamaged(ctx, a.private, false)...)
}

// keyPasswordCandidates are the passwords the entry's key may open with:
// the old key password, the new one (changed outside Terraform, or an
// imported keystore), and without a key password the old store passwords
// (after keytool -storepasswd, a JKS key keeps the old store password).
func (a *applyRequest) keyPasswordCandidates() []string {
	c := []string{a.state.KeyPassword.ValueString(), a.plan.KeyPassword.ValueString()}
	if a.state.KeyPassword.IsNull() {
		c = append(c, a.oldPasswords...)
	}
	return c
}

// deleteEntry removes the entry, and the file once nothing else is in it
// (with its password copy on the host), unless delete_on_destroy is false.
func (r *keystoreResource) deleteEntry(ctx context.Context, state *keystoreModel, diags *diag.Diagnostics) {
	ksPath, alias := state.Path.ValueString(), state.Alias.ValueString()
	defer r.data.forgetPassword(ctx, ksPath, stashKeystore, alias, diags)
	if !state.DeleteOnDestroy.ValueBool() || r.data.missing(ctx, ksPath) {
		return // kept, as the plan said; or already gone
	}
	pw, ok := r.readPassword(ctx, state)
	if !ok {
		diags.AddError("Unable to Delete Keystore Entry", fmt.Sprintf("The password of %s is not available (password_wo "+
			"and its copy on the host is gone). Remove the entry %q with keytool -delete, or set delete_on_destroy = false.", ksPath, alias))
		return
	}
	f := r.data.file(ksPath)
	empty, damaged := false, false
	err := keystore.Update(ctx, f, []byte(pw), "", func(ks *keystore.Keystore) error {
		if _, ok := ks.Entry(alias); !ok {
			return nil
		}
		if err := ks.DeleteEntry(alias); err != nil {
			return err
		}
		empty = len(ks.Entries()) == 0
		return nil
	})
	switch {
	case errors.Is(err, keystore.ErrNotKeystore):
		// Damaged beyond reading: nothing in it can be kept anyway.
		damaged = true
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		addKeystoreError(diags, "Unable to Delete Keystore Entry", ksPath, alias, err)
		return
	}
	if empty || damaged {
		if err := r.data.host.Remove(ctx, ksPath); err != nil {
			diags.AddError("Unable to Delete Keystore", err.Error())
		}
	}
}

// recordIssued sets the computed attributes of what apply wrote.
func (m *keystoreModel) recordIssued(out issued, now time.Time) {
	due := m.ReadyForRenewal
	m.setChain(out.chain, now)
	if !due.IsUnknown() && !due.IsNull() {
		// Known at plan time: keep it, so that a window crossed between
		// plan and apply is not an inconsistent result; Read updates it.
		m.ReadyForRenewal = due
	}
	switch {
	case out.csr != nil:
		m.CSRPEM = types.StringValue(string(out.csr))
	case m.source().block() != sourceCSR:
		m.CSRPEM = types.StringNull()
	}
}
