package imap

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
)

// batchStore is the embedded store with the store.BlobBatchReader of a
// store whose reads are round trips (PostgreSQL), counting how bodies are
// read, so that a FETCH through the prefetcher can be held to what it
// promises: every buffered body from a batch, large ones streamed.
type batchStore struct {
	*store.Store
	mu                      sync.Mutex
	batches, singles, opens int
	batched                 int
}

func (b *batchStore) count(f func()) {
	b.mu.Lock()
	f()
	b.mu.Unlock()
}

func (b *batchStore) counts() (batches, batched, singles, opens int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.batches, b.batched, b.singles, b.opens
}

func (b *batchStore) ReadBlobs(refs []store.BlobRef, fn func(store.BlobRef, []byte) error) error {
	b.count(func() { b.batches++; b.batched += len(refs) })
	for _, ref := range refs {
		f, err := b.Store.OpenBlob(ref)
		if err != nil {
			continue // gone: left out, as the interface says
		}
		body, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			return err
		}
		if err := fn(ref, body); err != nil {
			return err
		}
	}
	return nil
}

func (b *batchStore) ReadBlob(ref store.BlobRef, size int64, buf []byte) ([]byte, error) {
	b.count(func() { b.singles++ })
	return b.Store.ReadBlob(ref, size, buf)
}

func (b *batchStore) OpenBlob(ref store.BlobRef) (io.ReadCloser, error) {
	b.count(func() { b.opens++ })
	return b.Store.OpenBlob(ref)
}

// TestFetchPrefetch: a FETCH of 300 messages, small ones and a few over a
// prefetch window's bytes or the buffered limit, from a store that reads
// in batches, returns every body as delivered, reads the buffered ones a
// window at a time (a handful of round trips, none one by one) and streams
// the one over maxBufferedBody.
func TestFetchPrefetch(t *testing.T) {
	env := newEnv(t, "")
	bs := &batchStore{Store: env.store}
	srv := New(Options{Store: bs, Logger: slog.New(slog.DiscardHandler)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(tls.NewListener(ln, env.tls.ServerConfig()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})

	const n = 300
	var bodies []string
	for i := range n {
		size := 1 << 10
		switch i {
		case 40, 41:
			size = 700 << 10 // with 42, they outgrow a window's bytes
		case 42:
			size = 900 << 10
		case 150:
			size = maxBufferedBody + 1<<20 // streamed
		}
		head := fmt.Sprintf("From: bob@example.org\r\nTo: %s\r\nSubject: %d\r\n\r\n", testUser, i)
		body := head + strings.Repeat(fmt.Sprintf("%06d..............................................\r\n", i), (size-len(head))/56+1)
		bodies = append(bodies, body)
		if err := env.store.Deliver(context.Background(), []string{testUser}, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}

	c, err := imapclient.DialTLS(ln.Addr().String(), &imapclient.Options{TLSConfig: env.tls.ClientConfig(testServerName)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(testUser, testPass).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	all := imap.UIDSetNum()
	all.AddRange(1, 0)
	msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != n {
		t.Fatalf("FETCH 1:* returned %d messages, want %d", len(msgs), n)
	}
	for _, m := range msgs {
		got := string(m.FindBodySection(&imap.FetchItemBodySection{}))
		if want := bodies[m.UID-1]; got != want {
			t.Fatalf("UID %d: %d bytes, want the %d delivered", m.UID, len(got), len(want))
		}
	}
	batches, batched, singles, opens := bs.counts()
	t.Logf("%d batches of %d bodies in all, %d single reads, %d streamed", batches, batched, singles, opens)
	if singles != 0 || opens != 1 || batched != n-1 {
		t.Fatalf("bodies read: %d in batches, %d one by one, %d streamed; want %d, 0, 1", batched, singles, opens, n-1)
	}
	// 128 bodies or 2 MiB a window: 1-42, 43-171 without the streamed
	// 151, 172-299, 300.
	if batches > 6 {
		t.Fatalf("%d batches for %d bodies", batches, n-1)
	}

	// A FETCH that reads no content goes to the store as before.
	if _, err := c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true}).Collect(); err != nil {
		t.Fatal(err)
	}
	if b, _, s, o := bs.counts(); b != batches || s != singles || o != opens {
		t.Fatalf("FETCH of FLAGS read bodies")
	}
}
