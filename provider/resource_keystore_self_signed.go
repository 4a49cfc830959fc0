package provider

import (
	"context"
	"crypto"
	"crypto/x509"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

// selfSignedSource is the self_signed block: keytool -genkeypair, a key
// and a certificate it signs itself, renewed by apply once due.
type selfSignedSource struct{}

type selfSignedModel struct{ issueModel }

var (
	_ issuer    = selfSignedSource{}
	_ refresher = selfSignedSource{}
)

func (selfSignedSource) block() string { return sourceSelfSigned }

func (selfSignedSource) schema() schema.Block {
	return issueBlock("Issue a self-signed certificate for the key (`keytool -genkeypair -dname ...`). Changing "+
		"the subject, names, validity or usages issues a new certificate for the same key, and so does plan once the "+
		"certificate is within its early renewal window. With `is_ca_certificate` it is a CA that signs other "+
		"keystores' certificates (`locally_signed`).", nil)
}

func (selfSignedSource) validate(_ context.Context, m *keystoreModel, diags *diag.Diagnostics) {
	m.SelfSigned[0].validate(path.Root(sourceSelfSigned).AtListIndex(0), diags)
}

func (selfSignedSource) plan(_ context.Context, p *planRequest) planned {
	if p.state == nil {
		return planned{}
	}
	want := planned{newKey: keyChanged(p.plan, p.state), certificate: len(p.state.SelfSigned) != 1}
	if !want.certificate {
		want.certificate = p.plan.SelfSigned[0].changed(&p.state.SelfSigned[0].issueModel)
	}
	return want
}

func (selfSignedSource) keyFromBlock() bool { return true }

func (selfSignedSource) renewal(m *keystoreModel, _ *x509.Certificate) (time.Duration, bool) {
	return m.SelfSigned[0].window(0), true
}

func (selfSignedSource) issue(ctx context.Context, in *issueRequest) (issued, error) {
	key, err := keyFor(in)
	if err != nil {
		return issued{}, err
	}
	req, err := in.model.SelfSigned[0].request(ctx, in.now)
	if err != nil {
		return issued{}, err
	}
	cert, err := keystore.SelfSign(key, req)
	if err != nil {
		return issued{}, err
	}
	return issued{key: key, chain: []*x509.Certificate{cert}}, nil
}

func (selfSignedSource) refresh(ctx context.Context, m *keystoreModel, leaf *x509.Certificate) diag.Diagnostics {
	return m.SelfSigned[0].nameModel.refresh(ctx, leaf)
}

// keyFor is the entry's key, or a new one of the key block's kind for a
// new entry.
func keyFor(in *issueRequest) (crypto.Signer, error) {
	if in.key != nil {
		return in.key, nil
	}
	return keystore.GenerateKey(in.model.keySpec())
}
