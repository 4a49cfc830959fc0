package provider

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

func (r *keystoreResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var blocks []string
	for _, name := range certificateSources {
		var l types.List
		resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root(name), &l)...)
		if l.IsUnknown() {
			return // dynamic blocks: checked once known
		}
		if len(l.Elements()) > 0 {
			blocks = append(blocks, name)
		}
	}
	if resp.Diagnostics.HasError() {
		return
	}
	if len(blocks) != 1 {
		resp.Diagnostics.AddError("Exactly One Certificate Source Required",
			fmt.Sprintf("A mailstack_keystore needs exactly one of the blocks %s; this one has %d (%s).",
				strings.Join(certificateSources, ", "), len(blocks), strings.Join(blocks, ", ")))
		return
	}
	var m keystoreModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if m.source() == sourceSelfSigned {
		if s := m.SelfSigned[0]; !s.ValidityDays.IsUnknown() && !s.EarlyRenewalDays.IsUnknown() {
			validity, early := s.ValidityDays.ValueInt64(), s.EarlyRenewalDays.ValueInt64()
			if s.ValidityDays.IsNull() {
				validity = defaultValidity
			}
			if s.EarlyRenewalDays.IsNull() {
				early = defaultEarlyRenewal
			}
			if early >= validity {
				resp.Diagnostics.AddAttributeError(path.Root(sourceSelfSigned).AtListIndex(0).AtName("early_renewal_days"),
					"Early Renewal Not Before Expiry",
					fmt.Sprintf("early_renewal_days (%d) must be less than validity_days (%d), or every plan would propose a new certificate.", early, validity))
			}
		}
	}
	if m.source() == sourceACME {
		m.validateACME(ctx, &resp.Diagnostics)
	}
	if m.source() != sourceCSR && !m.CertificateChainPEM.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("certificate_chain_pem"), "CA Reply Without CSR",
			"certificate_chain_pem is the CA's reply to a certificate signing request: it needs the csr block.")
	}
	if v := m.CertificateChainPEM; !v.IsNull() && !v.IsUnknown() {
		if _, err := keystore.ParseCertificatesPEM([]byte(v.ValueString())); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("certificate_chain_pem"), "Invalid CA Reply", err.Error())
		}
	}
	if m.Type.ValueString() == string(keystore.PKCS12) && !m.KeyPassword.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("key_password"), "Key Password Not Supported for PKCS#12",
			"PKCS#12 keystores protect keys with the store password (keytool ignores -keypass for them); remove key_password or use type = \"JKS\".")
	}
}

// ModifyPlan works out what apply will do to the certificate: keep it,
// issue a new one for the same key (self_signed settings changed, due for
// renewal, csr placeholder), install the CA reply, repair a certificate
// replaced on disk, or replace the resource when the key itself changes or
// was replaced outside Terraform.
func (r *keystoreResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return // destroy
	}
	var plan keystoreModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || plan.source() == "" {
		return
	}
	ksPath, alias := plan.Path.ValueString(), plan.Alias.ValueString()
	if req.State.Raw.IsNull() {
		if plan.source() == sourceCSR && !plan.CertificateChainPEM.IsNull() {
			resp.Diagnostics.AddAttributeError(path.Root("certificate_chain_pem"), "CA Reply Before Key",
				replyBeforeKeyDetail(ksPath, alias))
		}
		return
	}
	var state keystoreModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	applied, diags := getApplied(ctx, req.Private)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if plan.source() == sourceACME || state.source() == sourceACME {
		modifyACMEPlan(ctx, &plan, &state, resp)
		return
	}
	leaf := parseCertificatePEM(state.CertificatePEM.ValueString())

	newKey := !plan.Key.known() || plan.effectiveKey() != state.effectiveKey()
	keyReplaced := applied.SPKI != "" && leaf != nil && spkiSHA256(leaf) != applied.SPKI
	if newKey || keyReplaced {
		if plan.source() == sourceCSR && !plan.CertificateChainPEM.IsNull() {
			why := "The key block changes, so apply would generate a new key."
			if keyReplaced {
				why = "The private key on disk was replaced outside Terraform, so apply would generate a new key."
			}
			resp.Diagnostics.AddAttributeError(path.Root("certificate_chain_pem"), "CA Reply For a Replaced Key",
				fmt.Sprintf("%s The CA reply in certificate_chain_pem belongs to the old key of alias %q in %s. Remove "+
					"certificate_chain_pem and apply, have the new csr_pem signed, then set the new reply.", why, alias, ksPath))
			return
		}
		plan.unknownCertificate()
		resp.RequiresReplace = append(resp.RequiresReplace, path.Root("certificate_pem"))
		if newKey {
			resp.RequiresReplace = append(resp.RequiresReplace, path.Root("key"))
		}
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}

	certChanged, csrChanged := false, false
	switch plan.source() {
	case sourceSelfSigned:
		p := plan.SelfSigned[0]
		if len(state.SelfSigned) != 1 {
			certChanged = true
		} else {
			s := state.SelfSigned[0]
			certChanged = !p.DNSNames.Equal(s.DNSNames) || !p.ValidityDays.Equal(s.ValidityDays) ||
				p.Subject.toKeystore() != s.Subject.toKeystore()
		}
		if leaf != nil && dueForRenewal(leaf.NotAfter, p.EarlyRenewalDays.ValueInt64(), time.Now()) {
			certChanged = true
		}
	case sourceCSR:
		p := plan.CSR[0]
		if len(state.CSR) != 1 {
			csrChanged = true
		} else {
			s := state.CSR[0]
			csrChanged = !p.DNSNames.Equal(s.DNSNames) || p.Subject.toKeystore() != s.Subject.toKeystore()
		}
		csrChanged = csrChanged || state.CSRPEM.IsNull()
		reply := plan.CertificateChainPEM
		switch {
		case reply.IsNull():
			// The self-signed placeholder: reissued for a new subject, or
			// put back when the CA reply is removed.
			certChanged = csrChanged || !state.CertificateChainPEM.IsNull()
		case reply.IsUnknown():
			certChanged = true
		case !reply.Equal(state.CertificateChainPEM):
			certChanged = !replyKeepsLeaf(reply.ValueString(), leaf)
		}
	}
	if applied.Fingerprint != "" && state.Fingerprint.ValueString() != applied.Fingerprint {
		// The certificate on disk is not the one Terraform installed.
		certChanged = true
	}

	plan.planCertificate(certChanged, &state)
	switch {
	case plan.source() != sourceCSR:
		plan.CSRPEM = types.StringNull()
	case csrChanged:
		plan.CSRPEM = types.StringUnknown()
	default:
		plan.CSRPEM = state.CSRPEM
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// planCertificate plans a new certificate, or keeps the one in state.
func (m *keystoreModel) planCertificate(renew bool, state *keystoreModel) {
	if renew {
		m.unknownCertificate()
	} else {
		m.CertificatePEM, m.Fingerprint = state.CertificatePEM, state.Fingerprint
		m.NotBefore, m.NotAfter = state.NotBefore, state.NotAfter
	}
	m.ReadyForRenewal = types.BoolValue(false)
}

// unknownCertificate plans a new certificate.
func (m *keystoreModel) unknownCertificate() {
	m.CertificatePEM = types.StringUnknown()
	m.Fingerprint = types.StringUnknown()
	m.NotBefore = types.StringUnknown()
	m.NotAfter = types.StringUnknown()
	m.ReadyForRenewal = types.BoolValue(false)
	if m.source() == sourceCSR {
		m.CSRPEM = types.StringUnknown()
	} else {
		m.CSRPEM = types.StringNull()
	}
}

// known reports whether the key block's values are all known (a missing
// block is: it means the defaults).
func (k *keySpecModel) known() bool {
	return k == nil || !k.Algorithm.IsUnknown() && !k.RSABits.IsUnknown() && !k.ECDSACurve.IsUnknown()
}

// effectiveKey names the key the model asks for, defaults applied and
// ignored settings left out: "RSA-2048", "ECDSA-P256".
func (m *keystoreModel) effectiveKey() string {
	s := m.keySpec()
	if strings.EqualFold(s.Algorithm, "ECDSA") {
		return "ECDSA-" + cmpOr(s.ECDSACurve, "P256")
	}
	bits := s.RSABits
	if bits == 0 {
		bits = 2048
	}
	return fmt.Sprintf("RSA-%d", bits)
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
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

// parseCertificatePEM parses the first certificate of s, nil if none.
func parseCertificatePEM(s string) *x509.Certificate {
	certs, err := keystore.ParseCertificatesPEM([]byte(s))
	if err != nil {
		return nil
	}
	return certs[0]
}

// appliedKey is the private-state key under which the resource remembers
// the certificate and key it last wrote (or adopted), to tell them apart
// from replacements made on disk outside Terraform.
const appliedKey = "applied"

type appliedEntry struct {
	Fingerprint string `json:"fingerprint_sha256"`
	SPKI        string `json:"spki_sha256"`
}

// privateState is what Create, Read, Update and ModifyPlan get as Private.
type privateState interface {
	GetKey(ctx context.Context, key string) ([]byte, diag.Diagnostics)
	SetKey(ctx context.Context, key string, value []byte) diag.Diagnostics
}

func getApplied(ctx context.Context, p privateState) (appliedEntry, diag.Diagnostics) {
	var a appliedEntry
	if p == nil {
		return a, nil
	}
	raw, diags := p.GetKey(ctx, appliedKey)
	if diags.HasError() || len(raw) == 0 {
		return a, diags
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		diags.AddError("Invalid Private State", fmt.Sprintf("Private state %q: %v. This is always a bug in the provider.", appliedKey, err))
	}
	return a, diags
}

func setApplied(ctx context.Context, p privateState, cert *x509.Certificate) diag.Diagnostics {
	raw, err := json.Marshal(appliedEntry{Fingerprint: keystore.Fingerprint(cert), SPKI: spkiSHA256(cert)})
	if err != nil {
		var diags diag.Diagnostics
		diags.AddError("Unable to Record Private State", err.Error())
		return diags
	}
	return p.SetKey(ctx, appliedKey, raw)
}
