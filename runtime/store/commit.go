package store

import (
	"errors"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// maxBatch bounds how many operations share one index transaction.
const maxBatch = 512

// committer group-commits index updates: one goroutine takes every update
// that is waiting, runs them all in one bbolt transaction and pays one
// fsync for the lot. Unlike bolt.DB.Batch it never waits for company, so a
// lone client sees the latency of one commit, and 32 concurrent clients share
// commits without anyone tuning a delay.
type committer struct {
	db     *bolt.DB
	notify func([]watchKey)
	reqs   chan *commitReq
	done   chan struct{}
}

// commitReq is one operation's update. fn may run more than once (if another
// operation in the same batch fails, the batch is retried without it), so it
// must only touch the transaction and its own result variables, which it
// resets itself. Mailboxes fn appends to changed are notified after commit.
type commitReq struct {
	fn      func(tx *bolt.Tx, changed *[]watchKey) error
	changed []watchKey
	err     chan error
}

func newCommitter(db *bolt.DB, notify func([]watchKey)) *committer {
	c := &committer{db: db, notify: notify, reqs: make(chan *commitReq, maxBatch), done: make(chan struct{})}
	go c.run()
	return c
}

// update runs fn in a (possibly shared) write transaction and returns when
// that transaction is durable or failed.
func (c *committer) update(fn func(tx *bolt.Tx, changed *[]watchKey) error) error {
	req := &commitReq{fn: fn, err: make(chan error, 1)}
	c.reqs <- req
	return <-req.err
}

func (c *committer) close() {
	close(c.reqs)
	<-c.done
}

func (c *committer) run() {
	defer close(c.done)
	batch := make([]*commitReq, 0, maxBatch)
	for req := range c.reqs {
		batch = append(batch[:0], req)
	fill:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-c.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		c.commit(batch)
	}
}

// errFailedInBatch aborts a shared transaction when one operation fails.
var errFailedInBatch = errors.New("operation failed in batch")

func (c *committer) commit(batch []*commitReq) {
	for len(batch) > 0 {
		failed := -1
		var failErr error
		err := c.db.Update(func(tx *bolt.Tx) error {
			for i, r := range batch {
				r.changed = r.changed[:0]
				if err := r.fn(tx, &r.changed); err != nil {
					failed, failErr = i, err
					return errFailedInBatch
				}
			}
			return nil
		})
		if failed >= 0 {
			batch[failed].err <- failErr
			batch = slices.Delete(batch, failed, failed+1)
			continue
		}
		if err == nil {
			for _, r := range batch {
				c.notify(r.changed)
			}
		}
		for _, r := range batch {
			r.err <- err
		}
		return
	}
}
