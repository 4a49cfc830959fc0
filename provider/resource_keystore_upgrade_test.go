package provider

import (
	"context"
	"fmt"
	"math/big"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// keystoreV0State is a mailstack_keystore state as version 0 of the
// schema wrote it: both key sizes set, no delete_on_destroy.
const keystoreV0State = `{
  "id": "/etc/mail/james.keystore", "path": "/etc/mail/james.keystore", "type": "JKS",
  "password": "changeit", "key_password": null, "alias": "james",
  "key": {"algorithm": %q, "rsa_bits": 2048, "ecdsa_curve": "P384"},
  "self_signed": [{"subject": {"common_name": "mail.example.test", "organizational_unit": null,
    "organization": null, "locality": null, "province": null, "country": null},
    "dns_names": ["mail.example.test"], "validity_days": 365, "early_renewal_days": 30}],
  "csr": [], "acme": [], "certificate_chain_pem": null,
  "certificate_pem": "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", "csr_pem": null,
  "fingerprint_sha256": "AB", "not_before": "2026-01-01T00:00:00Z", "not_after": "2027-01-01T00:00:00Z",
  "ready_for_renewal": false
}`

// A version 0 state goes through the provider's protocol server as
// terraform sends it, and comes out in the current schema.
func TestKeystoreStateUpgradeFromV0(t *testing.T) {
	ctx := context.Background()
	server := providerserver.NewProtocol6(New("test")())()
	schemas, err := server.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	schema := schemas.ResourceSchemas["mailstack_keystore"]
	if schema.Version != keystoreSchemaVersion || keystoreSchemaVersion != 1 {
		t.Fatalf("schema version %d, constant %d", schema.Version, keystoreSchemaVersion)
	}
	for _, tc := range []struct {
		algorithm, bits, curve string
	}{
		{"RSA", "2048", ""},
		{"ECDSA", "", "P384"},
	} {
		t.Run(tc.algorithm, func(t *testing.T) {
			resp, err := server.UpgradeResourceState(ctx, &tfprotov6.UpgradeResourceStateRequest{
				TypeName: "mailstack_keystore", Version: 0,
				RawState: &tfprotov6.RawState{JSON: []byte(fmt.Sprintf(keystoreV0State, tc.algorithm))},
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range resp.Diagnostics {
				t.Errorf("diagnostic: %s: %s", d.Summary, d.Detail)
			}
			val, err := resp.UpgradedState.Unmarshal(schema.ValueType())
			if err != nil {
				t.Fatal(err)
			}
			var attrs, key map[string]tftypes.Value
			if err := val.As(&attrs); err != nil {
				t.Fatal(err)
			}
			if err := attrs["key"].As(&key); err != nil {
				t.Fatal(err)
			}
			if got := valueString(t, key["rsa_bits"]); got != tc.bits {
				t.Errorf("rsa_bits = %q, want %q", got, tc.bits)
			}
			if got := valueString(t, key["ecdsa_curve"]); got != tc.curve {
				t.Errorf("ecdsa_curve = %q, want %q", got, tc.curve)
			}
			var keep bool
			if err := attrs["delete_on_destroy"].As(&keep); err != nil || keep {
				t.Errorf("delete_on_destroy = %v (%v), want false: who made a version 0 entry is unknown", keep, err)
			}
			if got := valueString(t, attrs["alias"]); got != "james" {
				t.Errorf("alias = %q: the rest of the state must come through", got)
			}
			if !attrs["chain_pem"].IsNull() || !attrs["file_mode"].IsNull() {
				t.Error("attributes new in version 1 are not null")
			}
		})
	}
}

// valueString renders a primitive value, "" for null.
func valueString(t *testing.T, v tftypes.Value) string {
	t.Helper()
	if v.IsNull() {
		return ""
	}
	switch {
	case v.Type().Is(tftypes.String):
		var s string
		if err := v.As(&s); err != nil {
			t.Fatal(err)
		}
		return s
	case v.Type().Is(tftypes.Number):
		var n big.Float
		if err := v.As(&n); err != nil {
			t.Fatal(err)
		}
		return n.String()
	}
	t.Fatalf("value of type %s", v.Type())
	return ""
}
