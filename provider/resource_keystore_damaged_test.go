package provider

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
)

// A keystore overwritten with garbage or truncated while the runtime
// serves it: the runtime keeps serving the old certificate, plan shows
// the repair, apply writes a new keystore and the port serves it; destroy
// succeeds over a damaged file too.
func TestAccKeystore_damagedKeystoreRepaired(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	ksPath := e.Path("mx.jks")
	port := e.FreePort()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	config := stackConfig(e, ksPath, port, "", "")
	var served string
	damage := func(how string) func() {
		return func() {
			data := readTestFile(t, ksPath)
			switch how {
			case "garbage":
				data = []byte(strings.Repeat("overwritten by a careless script\n", 40))
			case "truncated":
				data = data[:len(data)/3]
			}
			writeTestFile(t, ksPath, data)
			// The runtime refuses the damaged keystore and keeps serving.
			if err := reloadRefused(e, port); err != nil {
				t.Fatal(err)
			}
			if err := checkTLSGreeting(addr, "220 ", served); err != nil {
				t.Fatalf("after the keystore was damaged: %v", err)
			}
		}
	}
	repaired := func(s *terraform.State) error {
		fp, _ := stateAttr(s, "mailstack_keystore.mx", "fingerprint_sha256")
		if out := keytoolList(t, ksPath, "changeit"); !strings.Contains(out, "SHA256: "+fp) {
			return fmt.Errorf("keytool does not list the repaired entry %s:\n%s", fp, out)
		}
		if fp == served {
			return fmt.Errorf("the repair kept certificate %s", fp)
		}
		served = fp
		// The runtime picks the repaired keystore up by itself.
		return waitFor(testutil.HangGuard, func() error { return checkTLSGreeting(addr, "220 ", fp) })
	}
	repair := func(how string) resource.TestStep {
		return resource.TestStep{
			PreConfig: damage(how),
			Config:    config,
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("mailstack_keystore.mx", plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue("mailstack_keystore.mx", tfjsonpath.New("fingerprint_sha256")),
				},
				PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
			},
			Check: repaired,
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		CheckDestroy: func(*terraform.State) error {
			if _, err := os.Stat(ksPath); !os.IsNotExist(err) {
				return fmt.Errorf("the damaged keystore %s is still there after destroy (%v)", ksPath, err)
			}
			return portsClosed(port)
		},
		Steps: []resource.TestStep{
			{
				Config: config,
				Check: func(s *terraform.State) error {
					served, _ = stateAttr(s, "mailstack_keystore.mx", "fingerprint_sha256")
					return checkTLSGreeting(addr, "220 ", served)
				},
			},
			repair("garbage"),
			repair("truncated"),
			{
				// Damaged again, then destroyed (after this step).
				PreConfig:          damage("garbage"),
				Config:             config,
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
		},
	})
}

// reloadRefused waits until the runtime has tried a damaged keystore and
// refused it: the listener on port reports why (a successful reload clears
// that, so an error left from an earlier damage is not taken for this one).
func reloadRefused(e *accEnv, port int) error {
	ctx := context.Background()
	return waitFor(testutil.HangGuard, func() error {
		doc, err := statedir.Local(e.Path("default")).LoadConfig(ctx)
		if err != nil {
			return err
		}
		for id, l := range doc.Listeners {
			if l.Port != port {
				continue
			}
			obj, err := e.client().Listener(ctx, id)
			if err != nil {
				return err
			}
			if obj.Status.LastError == "" {
				return fmt.Errorf("listener on port %d reports no refused reload yet", port)
			}
			return nil
		}
		return fmt.Errorf("no listener on port %d in the runtime's config", port)
	})
}
