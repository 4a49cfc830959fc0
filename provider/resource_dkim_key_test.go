package provider

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
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
	relayedSigned := func(subject string) resource.TestCheckFunc { return relayedSigned(e, subA, subject) }
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
					writeEd25519Key(t, e.Path("a/dkim/s2026e._domainkey.a.test.key"))
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

// relayedSigned sends a message from a to b's domain (outboundConfig)
// and checks that it arrives signed with the keys whose records are in
// state.
func relayedSigned(e *accEnv, subA int, subject string) resource.TestCheckFunc {
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

// writeEd25519Key writes a new Ed25519 private key to file, as the runtime
// keeps its DKIM keys (PKCS#8 PEM).
func writeEd25519Key(t *testing.T, file string) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// TestAccDKIMKey_keyFileLostWhileSigning: the key files of server a's
// DKIM keys deleted, truncated, overwritten with garbage or with another
// key while its runtime signs with the keys. The runtime keeps signing
// with them, verified with the published records; plan shows an in-place
// repair, apply writes the keys back to their files, records unchanged,
// and a restart of the runtime signs with them still. Deleted or damaged
// and the runtime restarted before a plan, a key is lost: the runtime
// starts with a new one, and plan shows the key replaced, with a new
// record to publish.
func TestAccDKIMKey_keyFileLostWhileSigning(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	subA, subB := e.FreePort(), e.FreePort()
	cfg := outboundConfig(e, subB, subA, subB)
	dir := e.Path("a")
	rsaFile, edFile := e.Path("a/dkim/s2026._domainkey.a.test.key"), e.Path("a/dkim/s2026e._domainkey.a.test.key")
	txt := tfjsonpath.New("dns_txt_value")
	sameRSA, sameEd := statecheck.CompareValue(compare.ValuesSame()), statecheck.CompareValue(compare.ValuesSame())
	newRSA, newEd := statecheck.CompareValue(compare.ValuesDiffer()), statecheck.CompareValue(compare.ValuesDiffer())
	// published is the state whose records are in DNS; pid the runtime
	// that must neither crash nor restart while its key files are damaged.
	var published *terraform.State
	var pid int
	runtimePID := func() int {
		t.Helper()
		st, err := statedir.Local(dir).Client().Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return st.PID
	}
	// damage breaks the key files, then checks that mail sent meanwhile
	// is still signed with the published keys, by the same runtime.
	damage := func(rsa, ed func(file string)) func() {
		return func() {
			rsa(rsaFile)
			ed(edFile)
			subject := fmt.Sprintf("meanwhile-%d", time.Now().UnixNano())
			if err := relayedSigned(e, subA, subject)(published); err != nil {
				t.Fatalf("mail sent while the key files are damaged: %v", err)
			}
			if now := runtimePID(); now != pid {
				t.Fatalf("the runtime restarted (pid %d, was %d) while its key files were damaged", now, pid)
			}
		}
	}
	remove := func(file string) {
		if err := os.Remove(file); err != nil {
			t.Fatal(err)
		}
	}
	truncate := func(file string) { writeTestFile(t, file, readTestFile(t, file)[:100]) }
	garbage := func(file string) {
		writeTestFile(t, file, []byte(strings.Repeat("overwritten by a careless script\n", 40)))
	}
	another := func(file string) { writeEd25519Key(t, file) }
	// restart kills a's runtime; its supervisor starts another, which
	// loads the keys from their files.
	restart := func() {
		old := runtimePID()
		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := waitFor(time.Minute, func() error {
			st, err := statedir.Local(dir).Client().Status(context.Background())
			switch {
			case err != nil:
				return err
			case st.PID == old:
				return fmt.Errorf("runtime %d still answers", old)
			case portsClosed(subA) == nil:
				return fmt.Errorf("port %d does not accept connections", subA)
			}
			pid = st.PID
			return nil
		})
		if err != nil {
			t.Fatalf("the supervisor did not bring the runtime back: %v", err)
		}
	}
	repaired := func(subject string) resource.TestStep {
		return resource.TestStep{
			Config: cfg,
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("mailstack_dkim_key.rsa", plancheck.ResourceActionUpdate),
					plancheck.ExpectResourceAction("mailstack_dkim_key.ed", plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue("mailstack_dkim_key.rsa", txt, knownvalue.StringRegexp(regexp.MustCompile(`^v=DKIM1; k=rsa; p=`))),
					plancheck.ExpectKnownValue("mailstack_dkim_key.ed", txt, knownvalue.StringRegexp(regexp.MustCompile(`^v=DKIM1; k=ed25519; p=`))),
					plancheck.ExpectResourceAction("mailstack_server.a", plancheck.ResourceActionNoop),
				},
				PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
			},
			ConfigStateChecks: []statecheck.StateCheck{
				sameRSA.AddStateValue("mailstack_dkim_key.rsa", txt),
				sameEd.AddStateValue("mailstack_dkim_key.ed", txt),
			},
			Check: resource.ComposeTestCheckFunc(relayedSigned(e, subA, subject), func(*terraform.State) error {
				if now := runtimePID(); now != pid {
					return fmt.Errorf("the repair restarted the runtime (pid %d, was %d)", now, pid)
				}
				return nil
			}),
		}
	}
	withDamage := func(step resource.TestStep, pre func()) resource.TestStep {
		step.PreConfig = pre
		return step
	}
	// restartedSigns: a runtime restarted after a repair signs with the
	// keys it finds in the files, whose records are the published ones.
	restartedSigns := func(subject string) resource.TestStep {
		return resource.TestStep{
			PreConfig:         restart,
			Config:            cfg,
			ConfigPlanChecks:  resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			ConfigStateChecks: []statecheck.StateCheck{sameRSA.AddStateValue("mailstack_dkim_key.rsa", txt), sameEd.AddStateValue("mailstack_dkim_key.ed", txt)},
			Check:             relayedSigned(e, subA, subject),
		}
	}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					sameRSA.AddStateValue("mailstack_dkim_key.rsa", txt),
					sameEd.AddStateValue("mailstack_dkim_key.ed", txt),
					newRSA.AddStateValue("mailstack_dkim_key.rsa", txt),
					newEd.AddStateValue("mailstack_dkim_key.ed", txt),
				},
				Check: resource.ComposeTestCheckFunc(relayedSigned(e, subA, "before-1"), func(st *terraform.State) error {
					published, pid = st, runtimePID()
					return nil
				}),
			},
			withDamage(repaired("repaired-deleted"), damage(remove, truncate)),
			restartedSigns("restarted-1"),
			withDamage(repaired("repaired-garbage"), damage(garbage, another)),
			restartedSigns("restarted-2"),
			{
				// Deleted or damaged, and the runtime restarted before anyone
				// planned: it started with new keys, whose records are not
				// published. Plan shows the keys replaced, with records to
				// publish anew.
				PreConfig: func() {
					remove(rsaFile)
					garbage(edFile)
					restart()
				},
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("mailstack_dkim_key.rsa", plancheck.ResourceActionDestroyBeforeCreate),
						plancheck.ExpectUnknownValue("mailstack_dkim_key.rsa", txt),
						plancheck.ExpectResourceAction("mailstack_dkim_key.ed", plancheck.ResourceActionDestroyBeforeCreate),
						plancheck.ExpectUnknownValue("mailstack_dkim_key.ed", txt),
						plancheck.ExpectResourceAction("mailstack_server.a", plancheck.ResourceActionNoop),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					newRSA.AddStateValue("mailstack_dkim_key.rsa", txt),
					newEd.AddStateValue("mailstack_dkim_key.ed", txt),
				},
				Check: relayedSigned(e, subA, "replaced-1"),
			},
		},
	})
}
