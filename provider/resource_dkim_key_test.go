package provider

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

// TestAccDKIMKey_repairsLostConfig: the runtime of server a loses its
// config.json and is killed, so it forgets its DKIM keys. With the keys'
// files still on the host, plan shows an in-place repair and apply signs
// with the same keys again: the records published in DNS keep verifying.
// With a key's file gone too, plan shows that key replaced (a new record
// to publish), and mail verifies with the new record. A key file replaced
// by another key fails apply, which names the record to publish anew.
// Destroy from a broken host takes the key files with it.
func TestAccDKIMKey_repairsLostConfig(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	subA, subB := e.FreePort(), e.FreePort()
	cfg := outboundConfig(e, subB, subA, subB)
	txt := tfjsonpath.New("dns_txt_value")
	signing := tfjsonpath.New("signing")
	sameRSA, sameEd := statecheck.CompareValue(compare.ValuesSame()), statecheck.CompareValue(compare.ValuesSame())
	newRSA, newEd := statecheck.CompareValue(compare.ValuesDiffer()), statecheck.CompareValue(compare.ValuesDiffer())
	// relayedSigned sends a message from a to b's domain and checks that
	// it arrives signed with the keys whose records are in state.
	relayedSigned := func(subject string) resource.TestCheckFunc {
		return func(st *terraform.State) error {
			if err := submit(st, subA, "bob@remote.test", subject); err != nil {
				return fmt.Errorf("submitting to a: %w", err)
			}
			msg, err := inMaildir(e, subject)
			if err != nil {
				return err
			}
			return dkimSigned(st, msg)
		}
	}
	repairPlan := func(rsa plancheck.ResourceActionType, extra ...plancheck.PlanCheck) resource.ConfigPlanChecks {
		return resource.ConfigPlanChecks{
			PreApply: append([]plancheck.PlanCheck{
				plancheck.ExpectResourceAction("mailstack_server.a", plancheck.ResourceActionUpdate),
				plancheck.ExpectResourceAction("mailstack_dkim_key.rsa", rsa),
				plancheck.ExpectResourceAction("mailstack_dkim_key.ed", plancheck.ResourceActionUpdate),
				plancheck.ExpectKnownValue("mailstack_dkim_key.ed", signing, knownvalue.Bool(true)),
				plancheck.ExpectResourceAction("mailstack_server.b", plancheck.ResourceActionNoop),
			}, extra...),
			PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
		}
	}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		CheckDestroy: func(*terraform.State) error {
			if keys, _ := filepath.Glob(e.Path("a/dkim/*.key")); len(keys) > 0 {
				return fmt.Errorf("DKIM key files outlived destroy: %v", keys)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					sameRSA.AddStateValue("mailstack_dkim_key.rsa", txt),
					sameEd.AddStateValue("mailstack_dkim_key.ed", txt),
					statecheck.ExpectKnownValue("mailstack_dkim_key.rsa", signing, knownvalue.Bool(true)),
				},
				Check: relayedSigned("before-1"),
			},
			{
				// Keys on disk: both come back in place, records unchanged.
				PreConfig: func() { breakConfig(t, e.Path("a")) },
				Config:    cfg,
				ConfigPlanChecks: repairPlan(plancheck.ResourceActionUpdate,
					plancheck.ExpectKnownValue("mailstack_dkim_key.rsa", txt, knownvalue.StringRegexp(regexp.MustCompile(`^v=DKIM1; k=rsa; p=`)))),
				ConfigStateChecks: []statecheck.StateCheck{
					sameRSA.AddStateValue("mailstack_dkim_key.rsa", txt),
					sameEd.AddStateValue("mailstack_dkim_key.ed", txt),
					newRSA.AddStateValue("mailstack_dkim_key.rsa", txt),
					statecheck.ExpectKnownValue("mailstack_dkim_key.rsa", signing, knownvalue.Bool(true)),
				},
				Check: relayedSigned("repaired-1"),
			},
			{
				// The RSA key's file is gone as well: a new key, which plan
				// shows as a replacement with a record to publish anew.
				PreConfig: func() {
					breakConfig(t, e.Path("a"))
					if err := os.Remove(e.Path("a/dkim/s2026._domainkey.a.test.key")); err != nil {
						t.Fatal(err)
					}
				},
				Config: cfg,
				ConfigPlanChecks: repairPlan(plancheck.ResourceActionDestroyBeforeCreate,
					plancheck.ExpectUnknownValue("mailstack_dkim_key.rsa", txt)),
				ConfigStateChecks: []statecheck.StateCheck{
					sameEd.AddStateValue("mailstack_dkim_key.ed", txt),
					newEd.AddStateValue("mailstack_dkim_key.ed", txt),
					newRSA.AddStateValue("mailstack_dkim_key.rsa", txt),
				},
				Check: relayedSigned("replaced-1"),
			},
			{
				// The Ed25519 key's file replaced by another key: plan
				// cannot see it (the provider does not read private keys),
				// apply finds it and says that the record changed.
				PreConfig: func() {
					breakConfig(t, e.Path("a"))
					_, key, err := ed25519.GenerateKey(rand.Reader)
					if err != nil {
						t.Fatal(err)
					}
					der, err := x509.MarshalPKCS8PrivateKey(key)
					if err != nil {
						t.Fatal(err)
					}
					writeTestFile(t, e.Path("a/dkim/s2026e._domainkey.a.test.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
				},
				Config:      cfg,
				ExpectError: regexp.MustCompile(`(?s)DKIM Key Changed on the Host.*another key.*Publish\s+the\s+new\s+dns_txt_value\s+at\s+s2026e\._domainkey\.a\.test`),
			},
			{
				// The state holds the record of the key the runtime signs
				// with now.
				Config:            cfg,
				ConfigPlanChecks:  resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				ConfigStateChecks: []statecheck.StateCheck{newEd.AddStateValue("mailstack_dkim_key.ed", txt)},
				Check:             relayedSigned("swapped-1"),
			},
			{
				// Broken again and left so: destroy works from there, and
				// takes the keys off the host although the runtime is dead.
				PreConfig:          func() { breakConfig(t, e.Path("a")) },
				Config:             cfg,
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
		},
	})
}
