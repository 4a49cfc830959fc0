package provider

import (
	"fmt"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"

	"github.com/hashicorp/terraform-plugin-framework/diag"
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
