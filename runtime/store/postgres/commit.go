package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Group commit of deliveries. A delivery's transaction holds its
// recipients' rows and INBOX rows until its commit has been flushed, so
// deliveries to one user would otherwise wait for each other's flushes one
// by one. The committers take every delivery waiting when they start a
// transaction (up to maxBatch) and run them all in it, pipelined: one
// round trip for the calls, one WAL flush for the commit. A lone delivery
// is one autocommit call, one round trip.

const (
	// committers is how many delivery transactions run at once: while one
	// waits for its flush, the next gathers what arrives meanwhile.
	committers = 2
	// maxBatch bounds the deliveries of one transaction.
	maxBatch = 128
	// deliverSQL calls the schema's deliver function.
	deliverSQL = "SELECT status, address, changed FROM deliver($1, $2, $3, $4, $5)"
)

// delivery is one Deliver waiting for a committer.
type delivery struct {
	addrs []string
	body  []byte // nil when blob is set
	blob  *int64
	size  int64
	at    time.Time

	// Set by the committer before done is closed.
	status  int
	address *string
	changed []string
	err     error
	done    chan struct{}
}

// commitDeliveries runs batches of waiting deliveries until the queue is
// closed (by Close, once no Deliver is left).
func (s *Store) commitDeliveries() {
	for first := range s.deliveries {
		batch := []*delivery{first}
	fill:
		for len(batch) < maxBatch {
			select {
			case d, ok := <-s.deliveries:
				if !ok {
					break fill
				}
				batch = append(batch, d)
			default:
				break fill
			}
		}
		s.deliverBatch(batch)
		for _, d := range batch {
			close(d.done)
		}
	}
}

// deliverBatch commits a batch: in one transaction, its recipients' rows
// locked first in id order (so that two batches never wait for each other
// in a circle), then the calls. A batch that fails for another reason than
// a conflict is run again one delivery at a time, so that a delivery that
// cannot be stored fails alone.
func (s *Store) deliverBatch(batch []*delivery) {
	ctx, cancel := context.WithTimeout(s.base, opTimeout)
	defer cancel()
	if len(batch) > 1 {
		var all []string
		for _, d := range batch {
			all = append(all, d.addrs...)
		}
		var err error
		for attempt := 1; attempt <= maxAttempts; attempt++ {
			err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, "SELECT 1 FROM users WHERE address = ANY ($1) ORDER BY id FOR UPDATE", all); err != nil {
					return err
				}
				b := &pgx.Batch{}
				for _, d := range batch {
					b.Queue(deliverSQL, d.addrs, d.body, d.blob, d.size, d.at)
				}
				br := tx.SendBatch(ctx, b)
				for _, d := range batch {
					if err := br.QueryRow().Scan(&d.status, &d.address, &d.changed); err != nil {
						br.Close()
						return err
					}
				}
				return br.Close()
			})
			if !retryable(err) {
				break
			}
		}
		if err == nil {
			s.announceDelivered(batch)
			return
		}
	}
	for _, d := range batch {
		for attempt := 1; attempt <= maxAttempts; attempt++ {
			d.status, d.address, d.changed = 0, nil, nil
			d.err = s.pool.QueryRow(ctx, deliverSQL, d.addrs, d.body, d.blob, d.size, d.at).Scan(&d.status, &d.address, &d.changed)
			if !retryable(d.err) {
				break
			}
		}
	}
	s.announceDelivered(batch)
}

// announceDelivered announces the mailboxes the stored deliveries changed.
func (s *Store) announceDelivered(batch []*delivery) {
	var c []string
	for _, d := range batch {
		if d.err == nil && d.status == statusOK {
			c = append(c, d.changed...)
		}
	}
	s.changed(c)
}
