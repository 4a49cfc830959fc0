package provider

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
)

// UpgradeState brings mailstack_keystore states written by earlier
// versions of the provider to keystoreSchemaVersion. Attributes added
// since arrive null and Read fills them; an upgrader handles only what
// changes meaning.
func (r *keystoreResource) UpgradeState(context.Context) map[int64]resource.StateUpgrader {
	return map[int64]resource.StateUpgrader{0: {StateUpgrader: upgradeKeystoreV0}}
}

// upgradeKeystoreV0 upgrades a version 0 state:
//
//   - the key block's rsa_bits and ecdsa_curve were both always set, one of
//     them ignored ("RSA" with ecdsa_curve "P256"); now only the one the
//     algorithm uses is, so the other becomes null;
//   - delete_on_destroy is new; a version 0 state cannot say whether
//     Terraform made the entry or adopted it with terraform import, so it
//     becomes false: destroy keeps the keystore (the plan says so) until
//     the configuration sets delete_on_destroy = true.
func upgradeKeystoreV0(_ context.Context, req resource.UpgradeStateRequest, resp *resource.UpgradeStateResponse) {
	var state map[string]json.RawMessage
	if err := json.Unmarshal(req.RawState.JSON, &state); err != nil {
		resp.Diagnostics.AddError("Unable to Upgrade mailstack_keystore State",
			"The version 0 state is not a JSON object: "+err.Error()+". This is always a bug in the provider.")
		return
	}
	var key map[string]any
	if raw, ok := state["key"]; ok && json.Unmarshal(raw, &key) == nil && key != nil {
		alg, _ := key["algorithm"].(string)
		switch strings.ToUpper(alg) {
		case "ECDSA":
			key["rsa_bits"] = nil
		default: // RSA, the only other algorithm version 0 had
			key["ecdsa_curve"] = nil
		}
		state["key"], _ = json.Marshal(key)
	}
	state["delete_on_destroy"] = json.RawMessage("false")
	out, err := json.Marshal(state)
	if err != nil {
		resp.Diagnostics.AddError("Unable to Upgrade mailstack_keystore State", err.Error())
		return
	}
	resp.DynamicValue = &tfprotov6.DynamicValue{JSON: out}
}
