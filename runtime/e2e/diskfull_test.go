//go:build reliability

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"os"
	"path/filepath"
	"testing"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
)

// TestDiskFullAnswers451 fills a small tmpfs that holds the state
// directory: deliveries that do not fit get a temporary failure (4xx, so
// the sender retries), every message that got its 250 is in the Maildir
// whole, the runtime keeps serving, and once space is freed deliveries
// succeed again. It needs root (mount); it is skipped otherwise.
func TestDiskFullAnswers451(t *testing.T) {
	mnt := testutil.Tmpfs(t, "6m")
	_, tlsSettings, clientTLS := setup(t)
	dir := filepath.Join(mnt, "state")
	if err := statedir.Local(dir).Create(context.Background(), &config.Document{Server: config.Server{Hostname: "mail.example.com", Domains: []string{"example.com"}}}); err != nil {
		t.Fatal(err)
	}
	// Ballast, deleted later to free space.
	ballast := filepath.Join(mnt, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	smtps := config.Listener{Protocol: config.ProtocolSMTP, Address: "127.0.0.1", Port: testutil.FreePort(t), TLS: tlsSettings}
	p := serve(t, dir)
	ctx := context.Background()
	if _, err := p.client.PutUser(ctx, user, control.UserRequest{Password: userPassword}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.client.PutListener(ctx, "smtps", smtps); err != nil {
		t.Fatal(err)
	}

	sums := map[string]string{}
	var acked []string
	refused := 0
	var lastRefusal error
	for j := 0; refused < 5 && j < 500; j++ {
		id := fmt.Sprintf("m%d", j)
		msg, sum := message(id, 96<<10)
		sums[id] = sum
		switch err := sendOne(smtps.Addr(), clientTLS, msg); {
		case err == nil:
			acked = append(acked, id)
		case isTemporary(err):
			refused++
			lastRefusal = err
		default:
			t.Fatalf("message %s: %v; want 250 or a temporary failure", id, err)
		}
	}
	if refused == 0 {
		t.Fatalf("%d messages of 96 KiB fitted in a 6 MiB tmpfs", len(acked))
	}
	t.Logf("%d messages acknowledged, then %d refused; the last refusal: %v", len(acked), refused, lastRefusal)
	if _, err := p.client.Status(ctx); err != nil {
		t.Fatalf("the runtime does not answer with the disk full: %v", err)
	}

	// Space again: the next delivery is accepted.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	msg, sum := message("after", 1<<10)
	sums["after"] = sum
	if err := sendOne(smtps.Addr(), clientTLS, msg); err != nil {
		t.Fatalf("delivery after space was freed: %v", err)
	}
	acked = append(acked, "after")

	// Every acknowledged message is in the Maildir, whole, also after a
	// restart (the index agrees).
	p.kill()
	p = serve(t, dir)
	found := maildirMessages(t, dir, sums)
	for _, id := range acked {
		if _, ok := found[id]; !ok {
			t.Errorf("message %s got a 250 and is not in the Maildir", id)
		}
	}
	if st, err := p.client.Status(ctx); err != nil {
		t.Errorf("status after the restart: %v", err)
	} else {
		t.Logf("after the restart: %d of %d acknowledged messages found; queue %+v", len(found), len(acked), st.Queue)
	}
}

// isTemporary reports an SMTP 4xx reply.
func isTemporary(err error) bool {
	var te *textproto.Error
	return errors.As(err, &te) && te.Code >= 400 && te.Code < 500
}
