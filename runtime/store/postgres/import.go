package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
)

// ImportResult says what Import did.
type ImportResult struct {
	Messages int
	Bytes    int64
	// Renumbered names the mailboxes whose UIDVALIDITY another mailbox of
	// the database already had: they got a new one, and IMAP clients
	// fetch them again.
	Renumbered []string
}

// importBatch bounds the small messages sent to the database in one
// pipeline.
const (
	importBatchMessages = 256
	importBatchBytes    = 8 << 20
)

// Import adds an account from another store (runtime store copy) in one
// transaction: the user with their password hash and quota, their
// subscriptions, each mailbox with its UIDVALIDITY (unless the database
// has given that to another mailbox), UIDNEXT, HIGHESTMODSEQ, special use
// and \Recent mark, and every message with its UID, flags, MODSEQ,
// internal date and body, read through bodies. The history of expunged
// UIDs does not move: a QRESYNC client that asks for it gets every missing
// UID instead, as RFC 7162 allows. It fails with store.ErrExists if the
// user exists.
func (s *Store) Import(ctx context.Context, u store.UserDump, bodies store.Blobs) (ImportResult, error) {
	opCtx, done, err := s.op()
	if err != nil {
		return ImportResult{}, err
	}
	defer done()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	context.AfterFunc(opCtx, stop)
	addr, err := store.CanonicalAddress(u.Address)
	if err != nil {
		return ImportResult{}, err
	}
	var res ImportResult
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		res = ImportResult{}
		var user int32
		err := tx.QueryRow(ctx, `INSERT INTO users (address, password_hash, quota_bytes) VALUES ($1, $2, $3)
			ON CONFLICT (address) DO NOTHING RETURNING id`, addr, u.PasswordHash, u.QuotaBytes).Scan(&user)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("user %s: %w in the database", addr, store.ErrExists)
		} else if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO subscriptions (user_id, name) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
			user, u.Subscriptions); err != nil {
			return err
		}
		for _, mb := range u.Mailboxes {
			id, renumbered, err := importMailbox(ctx, tx, user, mb)
			if err != nil {
				return fmt.Errorf("mailbox %q: %w", mb.Name, err)
			}
			if renumbered {
				res.Renumbered = append(res.Renumbered, mb.Name)
			}
			n, size, err := importMessages(ctx, tx, id, mb.Messages, bodies)
			if err != nil {
				return fmt.Errorf("mailbox %q: %w", mb.Name, err)
			}
			res.Messages += n
			res.Bytes += size
		}
		if _, err := tx.Exec(ctx, "UPDATE users SET used_bytes = $1 WHERE id = $2", res.Bytes, user); err != nil {
			return err
		}
		// Mailboxes made from now on must not take an id imported here.
		_, err = tx.Exec(ctx, `SELECT setval('uidvalidity', greatest((SELECT last_value FROM uidvalidity), (SELECT max(id) FROM mailboxes)))`)
		return err
	})
	if err != nil {
		return ImportResult{}, fmt.Errorf("importing %s: %w", addr, err)
	}
	return res, nil
}

// importMailbox creates a mailbox as mb describes it, with mb's
// UIDVALIDITY if no mailbox of the database has it.
func importMailbox(ctx context.Context, tx pgx.Tx, user int32, mb store.MailboxDump) (id int64, renumbered bool, err error) {
	args := []any{user, store.NormalizeMailbox(mb.Name), int64(mb.UIDNext), int64(mb.ModSeq), int64(mb.RecentFrom), mb.SpecialUse}
	err = tx.QueryRow(ctx, `INSERT INTO mailboxes (id, user_id, name, uid_next, modseq, recent_from, special_use, vanished_floor)
		VALUES ($7, $1, $2, $3, $4, $5, $6, $4) ON CONFLICT (id) DO NOTHING RETURNING id`, append(args, int64(mb.UIDValidity))...).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		renumbered = true
		err = tx.QueryRow(ctx, `INSERT INTO mailboxes (user_id, name, uid_next, modseq, recent_from, special_use, vanished_floor)
			VALUES ($1, $2, $3, $4, $5, $6, $4) RETURNING id`, args...).Scan(&id)
	}
	return id, renumbered, err
}

// importMessages copies msgs into mailbox id: small bodies in pipelined
// batches, each body and its message in one statement; large ones
// streamed a chunk at a time.
func importMessages(ctx context.Context, tx pgx.Tx, id int64, msgs []store.MessageInfo, bodies store.Blobs) (n int, size int64, err error) {
	batch := &pgx.Batch{}
	pending := 0
	flush := func() error {
		if batch.Len() == 0 {
			return nil
		}
		err := tx.SendBatch(ctx, batch).Close()
		batch, pending = &pgx.Batch{}, 0
		return err
	}
	var chunk []byte
	for _, m := range msgs {
		flags := store.NormalizeFlags(m.Flags)
		if m.Size <= chunkSize {
			body, err := bodies.ReadBlob(m.Body, m.Size, nil)
			if err != nil {
				return 0, 0, fmt.Errorf("reading message %d: %w", m.UID, err)
			}
			batch.Queue(`WITH b AS (INSERT INTO blobs (size, data) VALUES ($1, $2) RETURNING id)
				INSERT INTO messages (mailbox_id, uid, modseq, flags, size, internal_date, blob_id)
				SELECT $3, $4, $5, $6, $1, $7, b.id FROM b`, m.Size, body, id, int64(m.UID), int64(m.ModSeq), flags, m.Date)
			pending += len(body)
			if batch.Len() >= importBatchMessages || pending >= importBatchBytes {
				if err := flush(); err != nil {
					return 0, 0, err
				}
			}
		} else {
			if err := flush(); err != nil {
				return 0, 0, err
			}
			if chunk == nil {
				chunk = make([]byte, chunkSize)
			}
			blob, written, err := copyBlob(ctx, tx, bodies, m, chunk)
			if err != nil {
				return 0, 0, err
			}
			if written != m.Size {
				return 0, 0, fmt.Errorf("message %d has %d bytes, the index says %d", m.UID, written, m.Size)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO messages (mailbox_id, uid, modseq, flags, size, internal_date, blob_id)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, int64(m.UID), int64(m.ModSeq), flags, m.Size, m.Date, blob); err != nil {
				return 0, 0, err
			}
		}
		n++
		size += m.Size
	}
	return n, size, flush()
}

// copyBlob streams a large body from bodies into a new blob.
func copyBlob(ctx context.Context, tx pgx.Tx, bodies store.Blobs, m store.MessageInfo, chunk []byte) (int64, int64, error) {
	rc, err := bodies.OpenBlob(m.Body)
	if err != nil {
		return 0, 0, fmt.Errorf("reading message %d: %w", m.UID, err)
	}
	defer rc.Close()
	return writeBlobTx(ctx, tx, io.LimitReader(rc, m.Size), chunk)
}
