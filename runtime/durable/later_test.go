package durable

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

// blockedCommitter returns a committer whose goroutine is inside the
// transaction of an Update until release is called, so that the test can
// line operations up behind it; commits counts the commits that
// succeeded from then on.
func blockedCommitter(t *testing.T) (c *Committer, release func(), commits *atomic.Int32) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "t.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	commits = &atomic.Int32{}
	ObserveSyncs(func(kind string, _ time.Duration) {
		if kind == "index" {
			commits.Add(1)
		}
	})
	t.Cleanup(func() { ObserveSyncs(nil) })
	c = NewCommitter(db)
	inside, gate := make(chan struct{}), make(chan struct{})
	go c.Update(func(tx *bolt.Tx) error {
		close(inside)
		<-gate
		_, err := tx.CreateBucketIfNotExists([]byte("b"))
		return err
	})
	<-inside
	return c, func() { close(gate) }, commits
}

func put(i int) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error { return tx.Bucket([]byte("b")).Put([]byte(fmt.Sprint(i)), []byte("v")) }
}

// TestUpdateLaterSharesOneCommit: operations handed to UpdateLater while
// a commit runs all go into the next one, together.
func TestUpdateLaterSharesOneCommit(t *testing.T) {
	c, release, commits := blockedCommitter(t)
	defer c.Close()
	const n = 100
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = c.UpdateLater(put(i)) })
	}
	testutil.Eventually(t, "every operation to be handed over", func() bool { return len(c.later) == n })
	release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("operation %d: %v", i, err)
		}
	}
	if got := commits.Load(); got != 2 {
		t.Errorf("%d commits, want 2: the blocking one and one for all %d operations", got, n)
	}
}

// TestUpdateTakesLaterAlong: an Update commits the UpdateLater
// operations waiting with it, in its commit.
func TestUpdateTakesLaterAlong(t *testing.T) {
	c, release, commits := blockedCommitter(t)
	defer c.Close()
	later := make(chan error, 1)
	go func() { later <- c.UpdateLater(put(1)) }()
	testutil.Eventually(t, "the later operation to be handed over", func() bool { return len(c.later) == 1 })
	now := make(chan error, 1)
	go func() { now <- c.Update(put(2)) }()
	testutil.Eventually(t, "the update to be handed over", func() bool { return len(c.reqs) == 1 })
	release()
	if err := <-now; err != nil {
		t.Fatal(err)
	}
	if err := <-later; err != nil {
		t.Fatal(err)
	}
	if got := commits.Load(); got != 2 {
		t.Errorf("%d commits, want 2: the blocking one and one for both operations", got)
	}
}

// TestCloseCommitsLater: Close commits the UpdateLater operations that
// wait, rather than dropping them.
func TestCloseCommitsLater(t *testing.T) {
	c, release, _ := blockedCommitter(t)
	later := make(chan error, 1)
	go func() { later <- c.UpdateLater(put(1)) }()
	testutil.Eventually(t, "the later operation to be handed over", func() bool { return len(c.later) == 1 })
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	release()
	<-closed
	if err := <-later; err != nil {
		t.Fatal(err)
	}
	c.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("b")).Get([]byte("1")) == nil {
			t.Error("the later operation was not committed")
		}
		return nil
	})
}
