package durable

import (
	"errors"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// maxBatch bounds how many operations share one transaction.
const maxBatch = 512

// Committer group-commits bbolt updates: one goroutine takes every update
// that is waiting, runs them all in one write transaction and pays one fsync
// for the lot. Unlike bolt.DB.Batch it never waits for company, so a lone
// client sees the latency of one commit, and 32 concurrent clients share
// commits without anyone tuning a delay.
type Committer struct {
	db   *bolt.DB
	reqs chan *commitReq
	done chan struct{}
}

type commitReq struct {
	fn  func(tx *bolt.Tx) error
	err chan error
}

// NewCommitter starts a committer for db. Close stops it.
func NewCommitter(db *bolt.DB) *Committer {
	c := &Committer{db: db, reqs: make(chan *commitReq, maxBatch), done: make(chan struct{})}
	go c.run()
	return c
}

// Update runs fn in a (possibly shared) write transaction and returns when
// that transaction is durable or failed. fn may run more than once (if
// another operation in the same batch fails, the batch is retried without
// it), so it must only touch the transaction and its own result variables,
// which it resets itself. An error fn returns fails only its own operation.
// Update must not be called after Close.
func (c *Committer) Update(fn func(tx *bolt.Tx) error) error {
	req := &commitReq{fn: fn, err: make(chan error, 1)}
	c.reqs <- req
	return <-req.err
}

// Close waits for the updates already handed over, then stops.
func (c *Committer) Close() {
	close(c.reqs)
	<-c.done
}

func (c *Committer) run() {
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

func (c *Committer) commit(batch []*commitReq) {
	for len(batch) > 0 {
		failed := -1
		var failErr error
		var fnsDone time.Time // the transaction's own work ends; the commit starts
		err := c.db.Update(func(tx *bolt.Tx) error {
			for i, r := range batch {
				if err := r.fn(tx); err != nil {
					failed, failErr = i, err
					return errFailedInBatch
				}
			}
			fnsDone = time.Now()
			return nil
		})
		if err == nil {
			observe("index", fnsDone)
		}
		if failed >= 0 {
			batch[failed].err <- failErr
			batch = slices.Delete(batch, failed, failed+1)
			continue
		}
		for _, r := range batch {
			r.err <- err
		}
		return
	}
}
