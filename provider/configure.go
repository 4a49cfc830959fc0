package provider

import (
	"fmt"
	"path/filepath"

	"github.com/hashicorp/terraform-plugin-framework/diag"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
)

// configuredData extracts the provider's data in a resource's or data
// source's Configure; nil (with no error) before the provider is configured.
func configuredData(raw any, diags *diag.Diagnostics) *providerData {
	if raw == nil {
		return nil
	}
	data, ok := raw.(*providerData)
	if !ok {
		diags.AddError("Unexpected Provider Data",
			fmt.Sprintf("Expected *providerData, got %T. This is always a bug in the provider.", raw))
		return nil
	}
	return data
}

// hostLocal is the host resources act on until SSH hosts exist.
var hostLocal host.Local

// client returns the control API client of the runtime of server serverID
// (a mailstack_server id: its folder under the provider's state_dir).
func (d *providerData) client(serverID string) *control.Client {
	return control.NewClient(filepath.Join(d.stateDir, serverID))
}
