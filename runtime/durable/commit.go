package durable

import (
	"errors"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// maxBatch bounds how many operations share one transaction.
const maxBatch = 512

// LaterDelay is the longest an UpdateLater operation waits for company
// before it commits on its own.
const LaterDelay = 20 * time.Millisecond

// Committer group-commits bbolt updates: one goroutine takes every update
// that is waiting, runs them all in one write transaction and pays one fsync
// for the lot. Unlike bolt.DB.Batch it never waits for company, so a lone
// client sees the latency of one commit, and 32 concurrent clients share
// commits without anyone tuning a delay. Only UpdateLater, for the
// operations whose callers do not wait on them, waits (LaterDelay at most).
type Committer struct {
	db    *bolt.DB
	reqs  chan *commitReq
	later chan *commitReq
	done  chan struct{}
}

type commitReq struct {
	fn  func(tx *bolt.Tx) error
	err chan error
}

// NewCommitter starts a committer for db. Close stops it.
func NewCommitter(db *bolt.DB) *Committer {
	c := &Committer{db: db, reqs: make(chan *commitReq, maxBatch), later: make(chan *commitReq, maxBatch), done: make(chan struct{})}
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
	return c.send(c.reqs, fn)
}

// UpdateLater is Update for an operation nobody is held up by (a result
// recorded beside work that goes on, kept safe from a crash meanwhile by
// other means): it joins the next commit an Update starts, or starts one
// once it has waited LaterDelay or maxBatch such operations wait. A steady
// trickle of them so shares one fsync instead of paying one each. It
// returns when its commit is durable or failed; the rules of Update apply.
func (c *Committer) UpdateLater(fn func(tx *bolt.Tx) error) error {
	return c.send(c.later, fn)
}

func (c *Committer) send(ch chan *commitReq, fn func(tx *bolt.Tx) error) error {
	req := &commitReq{fn: fn, err: make(chan error, 1)}
	ch <- req
	return <-req.err
}

// Close commits the updates already handed over, then stops.
func (c *Committer) Close() {
	close(c.reqs)
	<-c.done
}

func (c *Committer) run() {
	defer close(c.done)
	batch := make([]*commitReq, 0, maxBatch)
	var waiting []*commitReq // UpdateLater operations not committed yet
	timer := time.NewTimer(LaterDelay)
	timer.Stop()
	for open := true; open; {
		batch = batch[:0]
		select {
		case req, ok := <-c.reqs:
			if ok {
				batch = append(batch, req)
			}
			open = ok
		case req := <-c.later:
			if waiting = append(waiting, req); len(waiting) == 1 {
				timer.Reset(LaterDelay)
			}
			if len(waiting) < maxBatch {
				continue
			}
		case <-timer.C:
		}
		timer.Stop()
		batch = append(batch, waiting...)
		waiting = waiting[:0]
	fill:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-c.reqs:
				if !ok {
					open = false
					break fill
				}
				batch = append(batch, r)
			case r := <-c.later:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		if len(batch) > 0 {
			c.commit(batch)
		}
	}
	// Closed: nothing new comes; commit the UpdateLater operations that
	// are still queued.
	for {
		select {
		case r := <-c.later:
			c.commit([]*commitReq{r})
		default:
			return
		}
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
