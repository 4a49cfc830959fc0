package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

// enum is a closed set of names that a configuration may spell in any
// case and with keytool's own words ("EC" for ECDSA, "pkcs12"). The state
// keeps the spelling the configuration used; comparisons go through
// canonical, so "EC" and "ECDSA" never show as a difference.
type enum struct {
	// values are the canonical names, in documentation order.
	values []string
	// canonical maps any accepted spelling to its canonical name.
	canonical func(string) (string, error)
	// synonyms describes the other spellings, for documentation.
	synonyms string
}

var (
	keystoreTypeEnum = enum{
		values: []string{string(keystore.JKS), string(keystore.PKCS12)},
		canonical: func(s string) (string, error) {
			if s == "" {
				return "", fmt.Errorf("empty keystore type")
			}
			t, err := keystore.ParseType(s)
			return string(t), err
		},
		synonyms: "any case; `P12` and `PFX` mean `PKCS12`",
	}
	keyAlgorithmEnum = enum{values: keystore.KeyAlgorithms, canonical: keystore.CanonicalAlgorithm,
		synonyms: "any case; keytool's `EC` means `ECDSA` and `EdDSA` means `Ed25519`"}
	ecdsaCurveEnum = enum{values: keystore.Curves, canonical: keystore.CanonicalCurve,
		synonyms: "any case; also `P-256` and keytool's `secp256r1` (`prime256v1`), `secp384r1`, `secp521r1`"}
)

// describe renders the enumeration for descriptions.
func (e enum) describe() string { return quoted(e.values) + " (" + e.synonyms + ")" }

// same reports whether a and b name the same value.
func (e enum) same(a, b string) bool {
	ca, errA := e.canonical(a)
	cb, errB := e.canonical(b)
	return errA == nil && errB == nil && ca == cb
}

// normal returns the canonical name of s, or s when it has none.
func (e enum) normal(s string) string {
	if c, err := e.canonical(s); err == nil {
		return c
	}
	return s
}

// keep returns prior when it names actual (so that the configuration's
// spelling stays in state), else actual.
func (e enum) keep(prior types.String, actual string) types.String {
	if !prior.IsNull() && !prior.IsUnknown() && e.same(prior.ValueString(), actual) {
		return prior
	}
	return types.StringValue(actual)
}

// validator accepts the enumeration's spellings.
func (e enum) validator() validator.String { return enumValidator{e} }

// requiresReplace replaces the resource when the value changes, but not
// when only its spelling does.
func (e enum) requiresReplace() planmodifier.String {
	return stringplanmodifier.RequiresReplaceIf(func(_ context.Context, req planmodifier.StringRequest, resp *stringplanmodifier.RequiresReplaceIfFuncResponse) {
		resp.RequiresReplace = !e.same(req.StateValue.ValueString(), req.PlanValue.ValueString())
	}, "Changing the value replaces the resource; another spelling of the same value does not.",
		"Changing the value replaces the resource; another spelling of the same value does not.")
}

type enumValidator struct{ e enum }

var _ validator.String = enumValidator{}

func (v enumValidator) Description(context.Context) string {
	return "value must be one of " + fmt.Sprint(v.e.values) + " (" + v.e.synonyms + ")"
}

func (v enumValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v enumValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := v.e.canonical(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid Attribute Value",
			fmt.Sprintf("%q: value must be one of %s (%s).", req.ConfigValue.ValueString(), quoted(v.e.values), v.e.synonyms))
	}
}
