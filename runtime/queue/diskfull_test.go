package queue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

// TestDiskFull fills a small tmpfs that holds the queue: Enqueue fails
// with the file system's ENOSPC (which the SMTP front end answers 451
// 4.3.0) for inline and spooled bodies alike, every message it accepted
// reads back whole after a reopen, and once space is freed it queues
// again. It needs root (mount); it is skipped otherwise.
func TestDiskFull(t *testing.T) {
	mnt := testutil.Tmpfs(t, "2m")
	ballast := filepath.Join(mnt, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 256<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(mnt, "queue")
	q := openQ(t, dir)
	acked := map[string]string{}
	refused := map[bool]int{} // spooled -> refusals
	for j := 0; (refused[false] < 3 || refused[true] < 3) && j < 2000; j++ {
		size := 1 << 10
		if j%3 == 0 {
			size = InlineMax + 1 + j
		}
		body := fmt.Sprintf("Message-ID: <full-%d@ours.test>\r\n\r\n", j)
		body += strings.Repeat(fmt.Sprintf("%07d", j), size/7)
		en, err := q.Enqueue(env("a@x.test"), []byte(body))
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("message %d (%d bytes): %v; want ENOSPC", j, len(body), err)
			}
			refused[len(body) > InlineMax]++
			continue
		}
		acked[en.ID] = body
	}
	if refused[false] == 0 || refused[true] == 0 {
		t.Fatalf("%d messages accepted; refused: %d inline, %d spooled; want both refused", len(acked), refused[false], refused[true])
	}
	t.Logf("%d messages accepted, %d inline and %d spooled refused", len(acked), refused[false], refused[true])
	q.Close()

	q = openQ(t, dir)
	defer q.Close()
	entries, err := q.Entries()
	if err != nil || len(entries) != len(acked) {
		t.Fatalf("%d entries after reopen, %d accepted; %v", len(entries), len(acked), err)
	}
	for id, body := range acked {
		if got := readBody(t, q, id); got != body {
			t.Errorf("message %s: %d bytes read back, %d accepted", id, len(got), len(body))
		}
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{1 << 10, InlineMax + 1} {
		if _, err := q.Enqueue(env("a@x.test"), make([]byte, size)); err != nil {
			t.Errorf("a %d-byte message once space was freed: %v", size, err)
		}
	}
}
