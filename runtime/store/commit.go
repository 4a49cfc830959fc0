package store

import (
	bolt "go.etcd.io/bbolt"

	"github.com/mailstack/terraform-provider-mailstack/runtime/durable"
)

// committer group-commits index updates through the index's
// durable.Committer and notifies the watchers of the mailboxes an update
// changed once it is durable.
type committer struct {
	ix     *durable.Index
	notify func([]watchKey)
}

// update runs fn in a (possibly shared) write transaction and returns when
// that transaction is durable or failed. fn may run more than once (see
// durable.Committer.Update); the mailboxes it appends to changed in the run
// that commits are notified.
func (c *committer) update(fn func(tx *bolt.Tx, changed *[]watchKey) error) error {
	var changed []watchKey
	err := c.ix.Update(func(tx *bolt.Tx) error {
		changed = changed[:0]
		return fn(tx, &changed)
	})
	if err == nil && len(changed) > 0 {
		c.notify(changed)
	}
	return err
}
