package provider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// TestProviderServesOneConfiguration: a provider instance takes the first
// configuration it is given and the same one again (a process may be asked
// twice), but refuses another, which would take over the first one's
// resources.
func TestProviderServesOneConfiguration(t *testing.T) {
	typ := tftypes.Object{AttributeTypes: map[string]tftypes.Type{"state_dir": tftypes.String}}
	config := func(dir string) tftypes.Value {
		return tftypes.NewValue(typ, map[string]tftypes.Value{"state_dir": tftypes.NewValue(tftypes.String, dir)})
	}
	p := &mailstackProvider{}
	for _, step := range []struct {
		dir  string
		want bool
	}{
		{"/var/lib/mailstack", true},
		{"/var/lib/mailstack", true},
		{"/srv/mailstack", false},
		{"/var/lib/mailstack", true},
	} {
		if got := p.claim(config(step.dir)); got != step.want {
			t.Errorf("claim(state_dir %q) = %v, want %v", step.dir, got, step.want)
		}
	}
}
