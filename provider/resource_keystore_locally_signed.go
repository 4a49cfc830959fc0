package provider

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

// locallySignedSource is the locally_signed block: the key's certificate
// signed in the same apply by a CA the configuration holds, a CA keystore
// (another mailstack_keystore with is_ca_certificate, or one made with
// keytool) or a PEM CA key, as hashicorp/tls's tls_locally_signed_cert.
// It replaces the two applies and the openssl step of the csr flow.
type locallySignedSource struct{}

type locallySignedModel struct {
	issueModel
	CACertificatePEM     types.String `tfsdk:"ca_certificate_pem"`
	CAPrivateKeyPEM      types.String `tfsdk:"ca_private_key_pem"`
	CAKeystorePath       types.String `tfsdk:"ca_keystore_path"`
	CAKeystorePassword   types.String `tfsdk:"ca_keystore_password"`
	CAKeystorePasswordWO types.String `tfsdk:"ca_keystore_password_wo"`
	CAAlias              types.String `tfsdk:"ca_alias"`
	CAKeyPassword        types.String `tfsdk:"ca_key_password"`
}

var (
	_ issuer    = locallySignedSource{}
	_ refresher = locallySignedSource{}
)

func (locallySignedSource) block() string { return sourceLocallySigned }

func (locallySignedSource) schema() schema.Block {
	nonEmpty := []validator.String{stringvalidator.LengthAtLeast(1)}
	secret := func(desc string, writeOnly bool) schema.StringAttribute {
		return schema.StringAttribute{MarkdownDescription: desc, Optional: true, Sensitive: true, WriteOnly: writeOnly, Validators: nonEmpty}
	}
	return issueBlock("Have a CA of your own sign the key's certificate in the same apply: the CA's key comes from "+
		"a CA keystore (`ca_keystore_path`, such as another `mailstack_keystore` with `is_ca_certificate`) or from "+
		"`ca_private_key_pem`, and its certificate is `ca_certificate_pem`. The entry's chain is the certificate "+
		"followed by `ca_certificate_pem`. Changing the names, validity, usages or the CA certificate (a renewed CA) "+
		"issues a new certificate for the same key, and so does plan once the certificate is within its early "+
		"renewal window.", map[string]schema.Attribute{
		"ca_certificate_pem": schema.StringAttribute{
			MarkdownDescription: "The CA's certificate, PEM, followed by its own issuers up to the root when it is an " +
				"intermediate; usually `mailstack_keystore.<ca>.chain_pem`, so that a renewed CA signs again in " +
				"the same apply. It must be a CA certificate (basic constraints CA:TRUE).",
			Required:   true,
			Validators: nonEmpty,
		},
		"ca_private_key_pem": secret("The CA's private key, PEM (PKCS#8, PKCS#1 or SEC 1), as hashicorp/tls's "+
			"`ca_private_key_pem`. Exactly one of it and `ca_keystore_path`.", false),
		"ca_keystore_path": schema.StringAttribute{
			MarkdownDescription: "A keystore on the target host holding the CA's private key, e.g. " +
				"`mailstack_keystore.<ca>.path`. Plan opens it to check the password and the alias.",
			Optional:   true,
			Validators: nonEmpty,
		},
		"ca_keystore_password": secret("Store password of `ca_keystore_path`; or `ca_keystore_password_wo`.", false),
		"ca_keystore_password_wo": secret("Store password of `ca_keystore_path`, write-only (Terraform 1.11 and "+
			"later): it is needed only to sign, so it needs no version.", true),
		"ca_alias": schema.StringAttribute{
			MarkdownDescription: "The CA's private key entry in `ca_keystore_path`; optional when it holds only one.",
			Optional:            true,
			Validators:          []validator.String{stringvalidator.RegexMatches(aliasPattern, aliasPatternMessage)},
		},
		"ca_key_password": secret("Password of the CA's key entry when it differs from the store password (JKS).", false),
	})
}

func (locallySignedSource) validate(_ context.Context, m *keystoreModel, diags *diag.Diagnostics) {
	at := path.Root(sourceLocallySigned).AtListIndex(0)
	s := &m.LocallySigned[0]
	s.validate(at, diags)
	known := func(v types.String) bool { return !v.IsUnknown() }
	if known(s.CAPrivateKeyPEM) && known(s.CAKeystorePath) && s.CAPrivateKeyPEM.IsNull() == s.CAKeystorePath.IsNull() {
		diags.AddAttributeError(at, "One CA Key Required",
			"locally_signed needs exactly one of ca_private_key_pem and ca_keystore_path: where the CA's key is.")
	}
	if !s.CAKeystorePath.IsNull() && known(s.CAKeystorePassword) && known(s.CAKeystorePasswordWO) &&
		s.CAKeystorePassword.IsNull() == s.CAKeystorePasswordWO.IsNull() {
		diags.AddAttributeError(at.AtName("ca_keystore_password"), "One CA Keystore Password Required",
			"ca_keystore_path needs exactly one of ca_keystore_password and ca_keystore_password_wo.")
	}
	if s.CACertificatePEM.IsUnknown() || s.CACertificatePEM.IsNull() {
		return
	}
	ca, err := caCertificates(s.CACertificatePEM.ValueString())
	if err != nil {
		diags.AddAttributeError(at.AtName("ca_certificate_pem"), "Invalid CA Certificate", err.Error())
		return
	}
	if v := s.CAPrivateKeyPEM; !v.IsNull() && !v.IsUnknown() {
		key, err := keystore.ParsePrivateKeyPEM([]byte(v.ValueString()))
		if err == nil && !publicKeyOf(key).Equal(ca[0].PublicKey) {
			err = fmt.Errorf("ca_private_key_pem is not the key of ca_certificate_pem (%q)", keytoolDN(ca[0].RawSubject))
		}
		if err != nil {
			diags.AddAttributeError(at.AtName("ca_private_key_pem"), "Invalid CA Key", err.Error())
		}
	}
}

// caCertificates parses ca_certificate_pem: a CA certificate first.
func caCertificates(text string) ([]*x509.Certificate, error) {
	certs, err := keystore.ParseCertificatesPEM([]byte(text))
	if err != nil {
		return nil, err
	}
	if c := certs[0]; !c.BasicConstraintsValid || !c.IsCA {
		return nil, fmt.Errorf("%q is not a CA certificate (no basic constraints CA:TRUE): make the CA with "+
			"is_ca_certificate = true, keytool -ext bc:c or openssl's basicConstraints=CA:TRUE", keytoolDN(c.RawSubject))
	}
	return certs, nil
}

func (locallySignedSource) plan(ctx context.Context, p *planRequest) planned {
	s := &p.plan.LocallySigned[0]
	if s.CAKeystorePath.ValueString() != "" {
		// Plan-time check of the CA keystore, when it is there already.
		key, err := p.r.caKey(ctx, s, p.config, true)
		if err == nil && key != nil && !s.CACertificatePEM.IsUnknown() {
			if certs, cerr := keystore.ParseCertificatesPEM([]byte(s.CACertificatePEM.ValueString())); cerr == nil && !publicKeyOf(key).Equal(certs[0].PublicKey) {
				err = fmt.Errorf("the key of alias %q is not the key of ca_certificate_pem (%q)", s.CAAlias.ValueString(), keytoolDN(certs[0].RawSubject))
			}
		}
		if err != nil {
			p.diags.AddAttributeError(path.Root(sourceLocallySigned).AtListIndex(0).AtName("ca_keystore_path"),
				"Unable to Use CA Keystore", fmt.Sprintf("%s\n\nKeystore file: %s\nAlias: %s", err, s.CAKeystorePath.ValueString(), s.CAAlias.ValueString()))
		}
	}
	if p.state == nil {
		return planned{}
	}
	want := planned{newKey: keyChanged(p.plan, p.state), certificate: len(p.state.LocallySigned) != 1}
	if !want.certificate {
		prior := &p.state.LocallySigned[0]
		want.certificate = s.changed(&prior.issueModel) || s.CACertificatePEM.IsUnknown() ||
			!samePEMCertificates(s.CACertificatePEM.ValueString(), prior.CACertificatePEM.ValueString())
	}
	return want
}

// samePEMCertificates reports whether two PEM texts hold the same
// certificates, however they are formatted.
func samePEMCertificates(a, b string) bool {
	x, errA := keystore.ParseCertificatesPEM([]byte(a))
	y, errB := keystore.ParseCertificatesPEM([]byte(b))
	return errA == nil && errB == nil && sameCertificates(x, y)
}

func (locallySignedSource) keyFromBlock() bool { return true }

func (locallySignedSource) renewal(m *keystoreModel, _ *x509.Certificate) (time.Duration, bool) {
	return m.LocallySigned[0].window(0), true
}

func (locallySignedSource) issue(ctx context.Context, in *issueRequest) (issued, error) {
	s := &in.model.LocallySigned[0]
	key, err := keyFor(in)
	if err != nil {
		return issued{}, err
	}
	caCerts, err := caCertificates(s.CACertificatePEM.ValueString())
	if err != nil {
		return issued{}, err
	}
	caKey, err := in.r.caKey(ctx, s, in.config, false)
	if err != nil {
		return issued{}, err
	}
	caChain, err := keystore.ChainFor(caKey.Public(), caCerts)
	if err != nil {
		return issued{}, fmt.Errorf("ca_certificate_pem: %w", err)
	}
	req, err := s.request(ctx, in.now)
	if err != nil {
		return issued{}, err
	}
	leaf, err := keystore.Issue(key.Public(), req, caKey, caChain[0])
	if err != nil {
		return issued{}, err
	}
	return issued{key: key, chain: append([]*x509.Certificate{leaf}, caChain...)}, nil
}

func (locallySignedSource) refresh(ctx context.Context, m *keystoreModel, leaf *x509.Certificate) diag.Diagnostics {
	return m.LocallySigned[0].nameModel.refresh(ctx, leaf)
}

// caKey returns the CA's private key: ca_private_key_pem, or the entry of
// the CA keystore opened with its password from the plan or the
// configuration (write-only). atPlan tolerates a CA keystore that does not
// exist yet (made in the same apply): nil, nil.
func (r *keystoreResource) caKey(ctx context.Context, s *locallySignedModel, cfg configReader, atPlan bool) (crypto.Signer, error) {
	if !s.CAPrivateKeyPEM.IsNull() {
		return keystore.ParsePrivateKeyPEM([]byte(s.CAPrivateKeyPEM.ValueString()))
	}
	file, alias := s.CAKeystorePath.ValueString(), s.CAAlias.ValueString()
	pw, err := passwordOr(ctx, s.CAKeystorePassword, cfg, path.Root(sourceLocallySigned).AtListIndex(0).AtName("ca_keystore_password_wo"))
	if err != nil {
		return nil, err
	}
	if atPlan && (r.data == nil || pw == "" || s.CAKeystorePath.IsUnknown() || s.CAAlias.IsUnknown()) {
		return nil, nil // checked once known
	}
	ks, err := keystore.Open(ctx, r.data.file(file), []byte(pw))
	if atPlan && errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if alias, err = ks.PrivateKeyAlias(alias); err != nil {
		return nil, err
	}
	key, _, _, err := openPrivateKey(ks, alias, s.CAKeyPassword.ValueString())
	return key, err
}

// publicKeyOf is a private key's public key, comparable.
func publicKeyOf(key crypto.Signer) interface{ Equal(crypto.PublicKey) bool } {
	return key.Public().(interface{ Equal(crypto.PublicKey) bool })
}
