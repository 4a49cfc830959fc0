package provider

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

// csrSource is the csr block: keytool -genkeypair with a self-signed
// placeholder, keytool -certreq (csr_pem), and the CA's reply installed
// from certificate_chain_pem (keytool -importcert). A CA outside
// Terraform renews: plan warns once the certificate is due.
type csrSource struct{}

type csrModel struct {
	nameModel
	renewalModel
}

var _ issuer = csrSource{}

func (csrSource) block() string { return sourceCSR }

func (csrSource) schema() schema.Block {
	attrs := nameAttributes()
	for k, v := range renewalAttributes(true) {
		attrs[k] = v
	}
	return schema.ListNestedBlock{
		MarkdownDescription: "Have a CA sign the key: the resource generates the key with a self-signed " +
			"placeholder certificate valid 90 days (as `keytool -genkeypair` does) and computes `csr_pem` " +
			"(`keytool -certreq`); the CA's reply goes into `certificate_chain_pem`. Changing the subject or " +
			"names computes a new CSR for the same key. Once the CA's certificate is within its early renewal " +
			"window, `ready_for_renewal` turns true and plan warns: have `csr_pem` signed again. To sign with a CA " +
			"of your own in one apply, use `locally_signed`.",
		Validators: []validator.List{listvalidator.SizeAtMost(1)},
		NestedObject: schema.NestedBlockObject{
			Attributes: attrs,
			Blocks:     map[string]schema.Block{"subject": subjectBlock()},
		},
	}
}

func (csrSource) validate(context.Context, *keystoreModel, *diag.Diagnostics) {}

func (csrSource) plan(ctx context.Context, p *planRequest) planned {
	plan, state := p.plan, p.state
	reply := plan.CertificateChainPEM
	if state == nil {
		if !reply.IsNull() {
			p.diags.AddAttributeError(path.Root("certificate_chain_pem"), "CA Reply Before Key",
				replyBeforeKeyDetail(plan.Path.ValueString(), alias(plan)))
		}
		return planned{}
	}
	want := planned{newKey: keyChanged(plan, state), csr: len(state.CSR) != 1 || state.CSRPEM.IsNull()}
	if !want.csr {
		want.csr = plan.CSR[0].changed(&state.CSR[0].nameModel)
	}
	switch {
	case reply.IsNull():
		// The self-signed placeholder: reissued for a new subject, or put
		// back when the CA reply is removed.
		want.certificate = want.csr || !state.CertificateChainPEM.IsNull()
	case reply.IsUnknown():
		want.certificate = true
	case !reply.Equal(state.CertificateChainPEM):
		want.certificate = !replyKeepsLeaf(reply.ValueString(), p.leaf)
		if want.certificate && !want.newKey {
			p.r.checkReply(ctx, p)
		}
	}
	return want
}

// checkReply checks a new CA reply at plan time, as apply will: an error
// for one that does not carry the entry's key or holds a certificate that
// is not valid now, a warning for a chain that does not reach a root with
// the keystore's trusted entries as they are now (a
// mailstack_certificate_import applied first may still add it).
func (r *keystoreResource) checkReply(ctx context.Context, p *planRequest) {
	if p.leaf == nil {
		return
	}
	certs, err := keystore.ParseCertificatesPEM([]byte(p.plan.CertificateChainPEM.ValueString()))
	if err != nil {
		return // ValidateConfig said so
	}
	ks := r.openAtPlan(ctx, p)
	if ks == nil {
		ks = keystore.New("")
	}
	chain, _ := keystore.ParseCertificatesPEM([]byte(p.state.ChainPEM.ValueString()))
	_, err = ks.CompleteChain(p.leaf.PublicKey, certs, installedRoots(chain)...)
	file := p.plan.Path.ValueString()
	switch {
	case err == nil:
	case errors.Is(err, keystore.ErrUntrustedChain):
		p.diags.AddAttributeWarning(path.Root("certificate_chain_pem"), "CA Reply Does Not Reach a Root Yet",
			fmt.Sprintf("%s\n\nKeystore file: %s\nAlias: %s\n\nApply fails unless the root (and any missing "+
				"intermediate) is in the reply or a trusted entry of the keystore by then, e.g. from a "+
				"mailstack_certificate_import this keystore depends on.", err, file, alias(p.plan)))
	default:
		detail := fmt.Sprintf("%s\n\nKeystore file: %s\nAlias: %s", err, file, alias(p.plan))
		if hint := keystoreHint(err); hint != "" {
			detail += "\n\n" + hint
		}
		p.diags.AddAttributeError(path.Root("certificate_chain_pem"), "Invalid CA Reply", detail)
	}
}

func replyBeforeKeyDetail(file, alias string) string {
	return fmt.Sprintf("certificate_chain_pem is set while the key of alias %q in %s is being created, so no CA can "+
		"have signed it yet. Apply without certificate_chain_pem, have csr_pem signed, then set the CA's reply "+
		"(or sign with a CA of your own in one apply: locally_signed).", alias, file)
}

func (csrSource) keyFromBlock() bool { return true }

// renewal: the CA's certificate is due a third of its lifetime (at most
// 30 days) before it ends, unless set; the placeholder never is.
func (csrSource) renewal(m *keystoreModel, leaf *x509.Certificate) (time.Duration, bool) {
	if m.CertificateChainPEM.IsNull() || leaf == nil {
		return 0, false
	}
	return m.CSR[0].window(lifetime(leaf)), false
}

func (csrSource) issue(ctx context.Context, in *issueRequest) (issued, error) {
	key, err := keyFor(in)
	if err != nil {
		return issued{}, err
	}
	req, diags := in.model.CSR[0].nameModel.request(ctx, in.now, 0)
	if diags.HasError() {
		return issued{}, fmt.Errorf("reading the names of the request: %v", diags)
	}
	out := issued{key: key, chain: in.chain}
	reply := in.model.CertificateChainPEM
	switch {
	case in.key != nil && in.certificate && !reply.IsNull():
		certs, err := keystore.ParseCertificatesPEM([]byte(reply.ValueString()))
		if err != nil {
			return issued{}, err
		}
		if out.chain, err = in.ks.CompleteChain(key.Public(), certs, installedRoots(in.chain)...); err != nil {
			return issued{}, err
		}
	case in.key == nil || in.certificate:
		// The placeholder, valid 90 days as keytool's.
		cert, err := keystore.SelfSign(key, req)
		if err != nil {
			return issued{}, err
		}
		out.chain = []*x509.Certificate{cert}
	}
	if in.key == nil || in.csr {
		if out.csr, err = keystore.CreateCSR(key, req); err != nil {
			return issued{}, err
		}
	}
	return out, nil
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

// replyKeepsLeaf reports whether installing replyPEM would install leaf
// again: the reply's certificate for leaf's key is leaf itself.
func replyKeepsLeaf(replyPEM string, leaf *x509.Certificate) bool {
	if leaf == nil {
		return false
	}
	certs, err := keystore.ParseCertificatesPEM([]byte(replyPEM))
	if err != nil {
		return false
	}
	for _, c := range certs {
		if c.PublicKeyAlgorithm == leaf.PublicKeyAlgorithm && spkiSHA256(c) == spkiSHA256(leaf) {
			return c.Equal(leaf)
		}
	}
	return false
}
