package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
)

// Status codes of the deliver and append functions (see the schema).
const (
	statusOK        = 0
	statusNoUser    = 1
	statusOverQuota = 2
	statusNoMailbox = 3
)

// Deliver stores body in the INBOX of every recipient: one call of the
// schema's deliver function, which checks every recipient and quota and
// gives the message its UIDs. Concurrent deliveries are committed together
// (commit.go), as the embedded store does: one transaction and one WAL
// flush for many. It returns once the transaction holding the delivery has
// committed, with synchronous_commit on: the message is on the database's
// disk.
func (s *Store) Deliver(ctx context.Context, recipients []string, body []byte) error {
	if len(recipients) == 0 {
		return fmt.Errorf("delivering: no recipients")
	}
	addrs, err := store.CanonicalRecipients(recipients)
	if err != nil {
		return fmt.Errorf("delivering: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delivering: %w", err)
	}
	opCtx, done, err := s.op()
	if err != nil {
		return err
	}
	defer done()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	context.AfterFunc(opCtx, stop)

	d := &delivery{addrs: addrs, size: int64(len(body)), at: time.Now(), done: make(chan struct{})}
	if d.body, d.blob, err = s.bodyOrBlob(ctx, body); err != nil {
		return fmt.Errorf("delivering: %w", err)
	}
	s.deliveries <- d
	<-d.done
	err = d.err
	if err == nil && d.status != statusOK {
		err = statusError(d.status, deref(d.address), "")
	}
	if err != nil {
		s.dropBlob(d.blob)
		return fmt.Errorf("delivering: %w", err)
	}
	return nil
}

// Append stores size bytes from r as a new message (IMAP APPEND). A body
// larger than one chunk is streamed into the database first, a chunk at a
// time, and the message refers to it.
func (s *Store) Append(address, mailbox string, r io.Reader, size int64, opts store.AppendOptions) (uidValidity, uid uint32, err error) {
	addr, ctx, done, err := s.opAddress(address)
	if err != nil {
		return 0, 0, err
	}
	defer done()
	name := store.NormalizeMailbox(mailbox)
	r = io.LimitReader(r, size)
	var (
		inline []byte
		blob   *int64
		n      int64
	)
	if size <= chunkSize {
		var buf bytes.Buffer
		buf.Grow(int(size))
		if n, err = buf.ReadFrom(r); err != nil {
			return 0, 0, fmt.Errorf("appending to %q: %w", mailbox, err)
		}
		inline = buf.Bytes()
		if inline == nil {
			inline = []byte{} // NULL would mean "no body"
		}
	} else {
		id, written, err := s.writeBlob(ctx, r)
		if err != nil {
			return 0, 0, fmt.Errorf("appending to %q: %w", mailbox, err)
		}
		blob, n = &id, written
	}
	date := opts.Date
	if date.IsZero() {
		date = time.Now()
	}
	var status int
	var uv, u *int64
	err = s.pool.QueryRow(ctx, "SELECT status, uidvalidity, uid FROM append($1, $2, $3, $4, $5, $6, $7)",
		addr, name, inline, blob, n, store.NormalizeFlags(opts.Flags), date).Scan(&status, &uv, &u)
	if err == nil && status != statusOK {
		err = statusError(status, addr, name)
	}
	if err != nil {
		s.dropBlob(blob)
		return 0, 0, fmt.Errorf("appending to %q: %w", mailbox, err)
	}
	var c changes
	c.add(addr, *uv)
	s.changed(c)
	return uint32(*uv), uint32(*u), nil
}

// statusError turns a status of the deliver or append function into the
// store's error.
func statusError(status int, addr, mailbox string) error {
	switch status {
	case statusNoUser:
		return userNotFound(addr)
	case statusOverQuota:
		return fmt.Errorf("%s: %w", addr, store.ErrQuotaExceeded)
	case statusNoMailbox:
		return fmt.Errorf("mailbox %q: %w", mailbox, store.ErrNotFound)
	}
	return fmt.Errorf("unexpected status %d from the database", status)
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// bodyOrBlob returns body itself when it fits in one chunk (the deliver
// function stores it with the message, in one round trip), or the id of a
// blob it was written to first.
func (s *Store) bodyOrBlob(ctx context.Context, body []byte) ([]byte, *int64, error) {
	if int64(len(body)) <= chunkSize {
		if body == nil {
			body = []byte{} // NULL would mean "no body"
		}
		return body, nil, nil
	}
	id, _, err := s.writeBlob(ctx, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	return nil, &id, nil
}

// writeBlob streams r into a new blob, a chunk at a time, in a transaction
// of its own, and returns its id and size. The blob has no references yet:
// the message that will use it takes one when it commits, and the sweep
// removes a blob left without any (its writer died before).
func (s *Store) writeBlob(ctx context.Context, r io.Reader) (id, size int64, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		id, size, err = writeBlobTx(ctx, tx, r, make([]byte, chunkSize))
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("writing message body: %w", err)
	}
	return id, size, nil
}

// writeBlobTx writes r into a new blob within tx, a chunk of buf's size
// at a time.
func writeBlobTx(ctx context.Context, tx pgx.Tx, r io.Reader, buf []byte) (id, size int64, err error) {
	for seq := 0; ; seq++ {
		n, rerr := io.ReadFull(r, buf)
		if rerr != nil && !errors.Is(rerr, io.ErrUnexpectedEOF) && !errors.Is(rerr, io.EOF) {
			return 0, 0, rerr
		}
		if n == 0 && seq > 0 {
			break
		}
		size += int64(n)
		if seq == 0 {
			err = tx.QueryRow(ctx, "INSERT INTO blobs (size, data) VALUES (0, $1) RETURNING id", buf[:n]).Scan(&id)
		} else {
			_, err = tx.Exec(ctx, "INSERT INTO blob_chunks (blob_id, seq, data) VALUES ($1, $2, $3)", id, seq, buf[:n])
		}
		if err != nil {
			return 0, 0, err
		}
		if n < len(buf) {
			break
		}
	}
	_, err = tx.Exec(ctx, "UPDATE blobs SET size = $1 WHERE id = $2", size, id)
	return id, size, err
}

// dropBlob removes a blob written for a message that was then refused,
// unless something refers to it. A failure is left to the sweep.
func (s *Store) dropBlob(blob *int64) {
	if blob == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if _, err := s.pool.Exec(ctx, "DELETE FROM blobs WHERE id = $1 AND refs = 0", *blob); err != nil {
		s.log.Warn("removing an unused message body; the sweep will", "blob", *blob, "err", err)
	}
}
