package provider

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

// pemSource is the pem block: an entry made from a PEM private key and its
// certificate chain, what `openssl pkcs12 -export` then `keytool
// -importkeystore` do in many James set-ups, and how certificates from
// hashicorp/tls, cert-manager or certbot arrive. Whoever made the PEM
// renews it: plan warns once the certificate is due.
type pemSource struct{}

type pemModel struct {
	PrivateKeyPEM       types.String `tfsdk:"private_key_pem"`
	PrivateKeyPEMWO     types.String `tfsdk:"private_key_pem_wo"`
	CertificateChainPEM types.String `tfsdk:"certificate_chain_pem"`
	renewalModel
}

var _ issuer = pemSource{}

func (pemSource) block() string { return sourcePEM }

func (pemSource) schema() schema.Block {
	key := func(desc string, writeOnly bool) schema.StringAttribute {
		return schema.StringAttribute{MarkdownDescription: desc, Optional: true, Sensitive: true, WriteOnly: writeOnly,
			Validators: []validator.String{stringvalidator.LengthAtLeast(1)}}
	}
	attrs := map[string]schema.Attribute{
		"private_key_pem": key("The private key, PEM: PKCS#8 (`PRIVATE KEY`, as openssl and hashicorp/tls write it), "+
			"PKCS#1 (`RSA PRIVATE KEY`) or SEC 1 (`EC PRIVATE KEY`), not encrypted. Kept in the state (sensitive); "+
			"exactly one of it and `private_key_pem_wo`.", false),
		"private_key_pem_wo": key("The private key, write-only (Terraform 1.11 and later): never in the plan or the "+
			"state. A new key always comes with a new certificate, and a new `certificate_chain_pem` is what apply "+
			"acts on, so it needs no version.", true),
		"certificate_chain_pem": schema.StringAttribute{
			MarkdownDescription: "The key's certificate and its CA chain, PEM, in any order (`fullchain.pem`, " +
				"`tls_locally_signed_cert.x.cert_pem` with the CA's). It is installed as the entry's chain, leaf " +
				"first, each certificate signed by the next; a root is not required. Changing it installs the new " +
				"chain (and key) in place.",
			Required:   true,
			Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
		},
	}
	for k, v := range renewalAttributes(true) {
		attrs[k] = v
	}
	return schema.ListNestedBlock{
		MarkdownDescription: "Make the entry from a PEM private key and certificate chain made elsewhere (the " +
			"`openssl pkcs12 -export` and `keytool -importkeystore` step of many Apache James set-ups, or " +
			"certificates from hashicorp/tls, cert-manager, certbot). Plan checks that the key matches the " +
			"certificate and that the chain is signed in order, and warns about a certificate that is not valid now " +
			"or is within its early renewal window.",
		Validators:   []validator.List{listvalidator.SizeAtMost(1)},
		NestedObject: schema.NestedBlockObject{Attributes: attrs},
	}
}

func (pemSource) validate(ctx context.Context, m *keystoreModel, diags *diag.Diagnostics) {
	at := path.Root(sourcePEM).AtListIndex(0)
	s := &m.PEM[0]
	if s.PrivateKeyPEM.IsUnknown() || s.PrivateKeyPEMWO.IsUnknown() || s.CertificateChainPEM.IsUnknown() {
		return
	}
	if s.PrivateKeyPEM.IsNull() == s.PrivateKeyPEMWO.IsNull() {
		diags.AddAttributeError(at.AtName("private_key_pem"), "One Private Key Required",
			"A pem block needs exactly one of private_key_pem and private_key_pem_wo.")
		return
	}
	if _, _, err := s.parse(); err != nil {
		diags.AddAttributeError(at.AtName("certificate_chain_pem"), "Invalid PEM Key or Chain", err.Error())
	}
}

// parse reads the key and orders the chain (ValidateConfig sees the
// write-only key; apply reads it through writeOnly).
func (s *pemModel) parse() (crypto.Signer, []*x509.Certificate, error) {
	text := s.PrivateKeyPEM.ValueString()
	if s.PrivateKeyPEM.IsNull() {
		text = s.PrivateKeyPEMWO.ValueString()
	}
	key, err := keystore.ParsePrivateKeyPEM([]byte(text))
	if err != nil {
		return nil, nil, fmt.Errorf("private key: %w", err)
	}
	certs, err := keystore.ParseCertificatesPEM([]byte(s.CertificateChainPEM.ValueString()))
	if err != nil {
		return nil, nil, err
	}
	chain, err := keystore.ChainFor(key.Public(), certs)
	return key, chain, err
}

func (pemSource) plan(_ context.Context, p *planRequest) planned {
	s := &p.plan.PEM[0]
	if !s.CertificateChainPEM.IsUnknown() {
		if certs, err := keystore.ParseCertificatesPEM([]byte(s.CertificateChainPEM.ValueString())); err == nil {
			for _, c := range certs {
				if p.now.Before(c.NotBefore) || p.now.After(c.NotAfter) {
					p.diags.AddAttributeWarning(path.Root(sourcePEM).AtListIndex(0).AtName("certificate_chain_pem"),
						"Certificate Not Valid Now", fmt.Sprintf("%q is valid from %s to %s; it is installed as given.",
							keytoolDN(c.RawSubject), rfc3339(c.NotBefore), rfc3339(c.NotAfter)))
				}
			}
		}
	}
	if p.state == nil {
		return planned{}
	}
	want := planned{certificate: len(p.state.PEM) != 1 || s.CertificateChainPEM.IsUnknown()}
	if !want.certificate {
		want.certificate = !samePEMCertificates(s.CertificateChainPEM.ValueString(), p.state.PEM[0].CertificateChainPEM.ValueString())
	}
	return want
}

func (pemSource) keyFromBlock() bool { return false }

func (pemSource) renewal(m *keystoreModel, leaf *x509.Certificate) (time.Duration, bool) {
	if leaf == nil {
		return 0, false
	}
	return m.PEM[0].window(lifetime(leaf)), false
}

func (pemSource) issue(ctx context.Context, in *issueRequest) (issued, error) {
	s := in.model.PEM[0]
	key, err := passwordOr(ctx, s.PrivateKeyPEM, in.config, path.Root(sourcePEM).AtListIndex(0).AtName("private_key_pem_wo"))
	if err != nil {
		return issued{}, err
	}
	s.PrivateKeyPEM = types.StringValue(key)
	signer, chain, err := s.parse()
	if err != nil {
		return issued{}, err
	}
	if in.key != nil && publicKeyOf(in.key).Equal(signer.Public()) {
		signer = in.key // the same key: keep its protection as it is
	}
	return issued{key: signer, chain: chain}, nil
}
