package provider

import (
	"context"
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"

	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
)

// userConfig is a server and one user whose password settings are body.
func userConfig(e *accEnv, address, body string) string {
	return e.ProviderBlock() + fmt.Sprintf(`
resource "mailstack_server" "mx" {
  hostname = "mail.example.test"
  domains  = ["example.test"]
}

resource "mailstack_user" "u" {
  server_id = mailstack_server.mx.id
  address   = %q
%s
}
`, address, body)
}

// checkPassword checks at the runtime which password a user has.
func checkPassword(c *control.Client, address, password string, want bool) resource.TestCheckFunc {
	return func(*terraform.State) error {
		ok, err := c.CheckPassword(context.Background(), address, password)
		if err != nil {
			return err
		}
		if ok != want {
			return fmt.Errorf("password %q of %s accepted = %v, want %v", password, address, ok, want)
		}
		return nil
	}
}

func checkQuota(c *control.Client, address string, want int64) resource.TestCheckFunc {
	return func(*terraform.State) error {
		u, err := c.User(context.Background(), address)
		if err != nil {
			return err
		}
		if u.QuotaBytes != want {
			return fmt.Errorf("quota of %s = %d, want %d", address, u.QuotaBytes, want)
		}
		return nil
	}
}

func TestAccUser_passwordQuotaAndDrift(t *testing.T) {
	e := newAccEnv(t)
	c := statedir.Local(e.Path("default")).Client()
	const alice = "alice@Example.TEST" // the runtime lower-cases the domain
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{
			{
				Config:      userConfig(e, "no-at-sign", `  password = "x"`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`Invalid Mail Address`),
			},
			{
				Config:      userConfig(e, alice, ``),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?i)exactly one of`),
			},
			{
				Config: userConfig(e, alice, `  password = "first-secret"
  quota_bytes = 1000`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("mailstack_user.u", tfjsonpath.New("id"), knownvalue.StringExact("default/"+alice)),
					statecheck.ExpectKnownValue("mailstack_user.u", tfjsonpath.New("address"), knownvalue.StringExact(alice)),
				},
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check: resource.ComposeTestCheckFunc(
					checkPassword(c, "alice@example.test", "first-secret", true),
					checkQuota(c, alice, 1000),
				),
			},
			{
				Config: userConfig(e, alice, `  password = "first-secret"
  quota_bytes = 2000`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("mailstack_user.u", plancheck.ResourceActionUpdate)},
				},
				Check: resource.ComposeTestCheckFunc(
					checkPassword(c, alice, "first-secret", true),
					checkQuota(c, alice, 2000),
				),
			},
			{
				// The password changed at the runtime: plan sets it back.
				PreConfig: func() {
					if _, err := c.PutUser(context.Background(), alice, control.UserRequest{Password: "changed-behind-our-back", QuotaBytes: 2000}); err != nil {
						t.Fatal(err)
					}
				},
				Config: userConfig(e, alice, `  password = "first-secret"
  quota_bytes = 2000`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction("mailstack_user.u", plancheck.ResourceActionUpdate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeTestCheckFunc(
					checkPassword(c, alice, "first-secret", true),
					checkPassword(c, alice, "changed-behind-our-back", false),
				),
			},
			{
				// A user the runtime already has is not silently taken over.
				PreConfig: func() {
					if _, err := c.PutUser(context.Background(), "bob@example.test", control.UserRequest{Password: "bobs"}); err != nil {
						t.Fatal(err)
					}
				},
				Config: userConfig(e, alice, `  password = "first-secret"
  quota_bytes = 2000`) + `
resource "mailstack_user" "bob" {
  server_id = mailstack_server.mx.id
  address   = "bob@example.test"
  password  = "other"
}`,
				ExpectError: regexp.MustCompile(`User Already Exists(.|\n)*bob@example.test(.|\n)*terraform import`),
			},
			{
				// Destroy uses the last step's configuration: end on a valid one.
				Config: userConfig(e, alice, `  password = "first-secret"
  quota_bytes = 2000`),
				PlanOnly: true,
			},
		},
	})
}

// TestAccUser_writeOnlyPassword: password_wo never reaches the state;
// bumping password_wo_version sets the new one.
func TestAccUser_writeOnlyPassword(t *testing.T) {
	e := newAccEnv(t)
	c := statedir.Local(e.Path("default")).Client()
	const carol = "carol@example.test"
	noSecretInState := []statecheck.StateCheck{
		statecheck.ExpectKnownValue("mailstack_user.u", tfjsonpath.New("password_wo"), knownvalue.Null()),
		statecheck.ExpectKnownValue("mailstack_user.u", tfjsonpath.New("password"), knownvalue.Null()),
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		// Write-only attributes need Terraform 1.11 (and an OpenTofu that
		// has them: older ones report a version below it, or fail here).
		TerraformVersionChecks: []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)},
		Steps: []resource.TestStep{
			{
				Config: userConfig(e, carol, `  password            = "both"
  password_wo         = "wo-second"`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?i)exactly one of|cannot be specified when`),
			},
			{
				Config: userConfig(e, carol, `  password_wo         = "wo-first"
  password_wo_version = 1`),
				ConfigStateChecks: noSecretInState,
				ConfigPlanChecks:  resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check:             checkPassword(c, carol, "wo-first", true),
			},
			{
				// A new value without a new version is not seen.
				Config: userConfig(e, carol, `  password_wo         = "wo-unseen"
  password_wo_version = 1`),
				PlanOnly: true,
			},
			{
				Config: userConfig(e, carol, `  password_wo         = "wo-second"
  password_wo_version = 2`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("mailstack_user.u", plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: noSecretInState,
				Check: resource.ComposeTestCheckFunc(
					checkPassword(c, carol, "wo-second", true),
					checkPassword(c, carol, "wo-first", false),
				),
			},
		},
	})
}

func TestSplitUserID(t *testing.T) {
	cases := []struct {
		id, server, address string
		ok                  bool
	}{
		{"default/alice@example.com", "default", "alice@example.com", true},
		{"mx-2/a.b@c.d", "mx-2", "a.b@c.d", true},
		{"default/alice", "", "", false},
		{"alice@example.com", "", "", false},
		{"../x/alice@example.com", "", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			server, address, ok := splitUserID(tc.id)
			if ok != tc.ok || (ok && (server != tc.server || address != tc.address)) {
				t.Errorf("splitUserID(%q) = %q, %q, %v", tc.id, server, address, ok)
			}
		})
	}
}

func TestSameAddress(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{"alice@example.com", "alice@EXAMPLE.com", true},
		{"Alice@example.com", "alice@example.com", false}, // local parts keep their case
		{"alice@example.com", "bob@example.com", false},
		{"not-an-address", "not-an-address", false},
	}
	for _, tc := range cases {
		if got := sameAddress(tc.a, tc.b); got != tc.want {
			t.Errorf("sameAddress(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
