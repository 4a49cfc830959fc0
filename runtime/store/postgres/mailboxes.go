package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
)

// Structural changes (create, delete, rename) lock the user's row first,
// so that they see a consistent mailbox list; deliveries lock it too, only
// long enough to check and raise the usage.

// lockUser locks addr's row for the transaction and returns its id.
func lockUser(ctx context.Context, tx pgx.Tx, addr string) (int32, error) {
	var id int32
	err := tx.QueryRow(ctx, "SELECT id FROM users WHERE address = $1 FOR UPDATE", addr).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, userNotFound(addr)
	}
	return id, err
}

// writeMailboxes runs fn in a write operation with the user's row locked,
// which serialises every change to a user's list of mailboxes; what names
// the operation in its error.
func (s *Store) writeMailboxes(what, addr string, fn func(ctx context.Context, tx pgx.Tx, user int32, c *changes) error) error {
	ctx, done, err := s.op()
	if err != nil {
		return err
	}
	defer done()
	err = s.write(ctx, func(tx pgx.Tx, c *changes) error {
		user, err := lockUser(ctx, tx, addr)
		if err != nil {
			return err
		}
		return fn(ctx, tx, user, c)
	})
	return wrap(what, err)
}

// Mailboxes returns the user's mailboxes ordered by name.
func (s *Store) Mailboxes(address string) ([]store.MailboxInfo, error) {
	addr, ctx, done, err := s.opAddress(address)
	if err != nil {
		return nil, err
	}
	defer done()
	rows, _ := s.pool.Query(ctx, `SELECT m.name, m.id, m.uid_next, m.special_use,
			EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_id = u.id AND s.name = m.name)
		FROM users u JOIN mailboxes m ON m.user_id = u.id
		WHERE u.address = $1 ORDER BY m.name COLLATE "C"`, addr)
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.MailboxInfo, error) {
		var mb store.MailboxInfo
		var id, next int64
		err := row.Scan(&mb.Name, &id, &next, &mb.SpecialUse, &mb.Subscribed)
		mb.UIDValidity, mb.UIDNext = uint32(id), uint32(next)
		return mb, err
	})
	if err == nil && len(out) == 0 {
		err = userNotFound(addr) // every user has INBOX
	}
	if err != nil {
		return nil, fmt.Errorf("listing mailboxes: %w", err)
	}
	return out, nil
}

// Status returns a mailbox with its counters, counted in one statement.
func (s *Store) Status(address, mailbox string) (store.MailboxStatus, error) {
	addr, ctx, done, err := s.opAddress(address)
	if err != nil {
		return store.MailboxStatus{}, err
	}
	defer done()
	name := store.NormalizeMailbox(mailbox)
	st := store.MailboxStatus{MailboxInfo: store.MailboxInfo{Name: name}}
	var id, next, msgs, unseen, deleted, recent int64
	err = s.pool.QueryRow(ctx, `SELECT m.id, m.uid_next, m.special_use, m.modseq,
			EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_id = u.id AND s.name = m.name),
			count(x.uid),
			count(x.uid) FILTER (WHERE NOT ('\Seen' = ANY (x.flags))),
			count(x.uid) FILTER (WHERE '\Deleted' = ANY (x.flags)),
			count(x.uid) FILTER (WHERE x.uid >= m.recent_from),
			coalesce(sum(x.size), 0)
		FROM users u JOIN mailboxes m ON m.user_id = u.id AND m.name = $2
		LEFT JOIN messages x ON x.mailbox_id = m.id
		WHERE u.address = $1
		GROUP BY u.id, m.id`, addr, name).Scan(&id, &next, &st.SpecialUse, &st.ModSeq, &st.Subscribed,
		&msgs, &unseen, &deleted, &recent, &st.Size)
	if errors.Is(err, pgx.ErrNoRows) {
		err = s.notFound(ctx, s.pool, addr, name)
	}
	if err != nil {
		return store.MailboxStatus{}, fmt.Errorf("status of %q: %w", mailbox, err)
	}
	st.UIDValidity, st.UIDNext = uint32(id), uint32(next)
	st.Messages, st.Unseen, st.Deleted, st.Recent = uint32(msgs), uint32(unseen), uint32(deleted), uint32(recent)
	return st, nil
}

// CreateMailbox creates mailbox name and any missing parents.
func (s *Store) CreateMailbox(address, name string, opts store.CreateOptions) error {
	addr, name, err := store.MailboxArgs(address, name)
	if err != nil {
		return err
	}
	if err := store.ValidSpecialUse(opts.SpecialUse); err != nil {
		return err
	}
	return s.writeMailboxes("creating mailbox", addr, func(ctx context.Context, tx pgx.Tx, user int32, c *changes) error {
		c.addUser(addr)
		return createLocked(ctx, tx, user, name, true, opts.SpecialUse)
	})
}

// createLocked creates name, with special use use, and its missing
// parents; with mustBeNew it fails if name itself exists. The caller
// holds the user's row lock.
func createLocked(ctx context.Context, tx pgx.Tx, user int32, name string, mustBeNew bool, use string) error {
	var chain []string
	for p := name; p != ""; p = store.ParentMailbox(p) {
		chain = append(chain, p)
	}
	rows, _ := tx.Query(ctx, "SELECT name FROM mailboxes WHERE user_id = $1 AND name = ANY ($2)", user, chain)
	existing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	if slices.Contains(existing, name) {
		if mustBeNew {
			return fmt.Errorf("mailbox %q: %w", name, store.ErrExists)
		}
		return nil
	}
	missing := slices.DeleteFunc(chain, func(n string) bool { return slices.Contains(existing, n) })
	slices.Reverse(missing) // parents first
	_, err = tx.Exec(ctx, `INSERT INTO mailboxes (user_id, name, special_use)
		SELECT $1, n, CASE WHEN n = $3 THEN $4 ELSE '' END FROM unnest($2::text[]) WITH ORDINALITY AS t(n, i) ORDER BY i`,
		user, missing, name, use)
	return err
}

// DeleteMailbox deletes a mailbox and its messages; watchers of it are
// woken up.
func (s *Store) DeleteMailbox(address, name string) error {
	addr, err := store.CanonicalAddress(address)
	if err != nil {
		return err
	}
	name = store.NormalizeMailbox(name)
	if name == store.Inbox {
		return fmt.Errorf("%w: INBOX cannot be deleted", store.ErrInvalidMailbox)
	}
	return s.writeMailboxes("deleting mailbox", addr, func(ctx context.Context, tx pgx.Tx, user int32, c *changes) error {
		var id, size int64
		var children bool
		err = tx.QueryRow(ctx, `SELECT m.id,
				EXISTS (SELECT 1 FROM mailboxes c WHERE c.user_id = m.user_id AND starts_with(c.name, m.name || '/'))
			FROM mailboxes m WHERE m.user_id = $1 AND m.name = $2 FOR UPDATE`, user, name).Scan(&id, &children)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("mailbox %q: %w", name, store.ErrNotFound)
		case err != nil:
			return err
		case children:
			return fmt.Errorf("mailbox %q: %w", name, store.ErrHasChildren)
		}
		// With the mailbox's row locked its messages cannot change: the
		// sum of the deleted ones is what leaves the user's usage.
		err = tx.QueryRow(ctx, `WITH d AS (DELETE FROM messages WHERE mailbox_id = $1 RETURNING size)
			SELECT coalesce(sum(size), 0) FROM d`, id).Scan(&size)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM mailboxes WHERE id = $1", id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE users SET used_bytes = used_bytes - $1 WHERE id = $2", size, user); err != nil {
			return err
		}
		c.add(addr, id)
		return nil
	})
}

// RenameMailbox renames a mailbox and its children, keeping their
// UIDVALIDITY (their ids), UIDs and flags; renaming INBOX moves its
// messages into a new mailbox.
func (s *Store) RenameMailbox(address, oldName, newName string) error {
	addr, newName, err := store.MailboxArgs(address, newName)
	if err != nil {
		return err
	}
	oldName = store.NormalizeMailbox(oldName)
	if newName == store.Inbox || strings.HasPrefix(newName, oldName+"/") {
		return fmt.Errorf("%w: cannot rename %q to %q", store.ErrInvalidMailbox, oldName, newName)
	}
	return s.writeMailboxes("renaming mailbox", addr, func(ctx context.Context, tx pgx.Tx, user int32, c *changes) error {
		c.addUser(addr)
		if oldName == store.Inbox {
			if err := createLocked(ctx, tx, user, newName, true, ""); err != nil {
				return err
			}
			_, err := transfer(ctx, tx, c, addr, store.Inbox, nil, newName, true)
			return err
		}
		rows, _ := tx.Query(ctx, "SELECT name FROM mailboxes WHERE user_id = $1 AND (name = $2 OR starts_with(name, $2 || '/'))", user, oldName)
		moving, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if len(moving) == 0 {
			return fmt.Errorf("mailbox %q: %w", oldName, store.ErrNotFound)
		}
		targets := make([]string, len(moving))
		for i, n := range moving {
			targets[i] = newName + n[len(oldName):]
		}
		var taken string
		err = tx.QueryRow(ctx, "SELECT name FROM mailboxes WHERE user_id = $1 AND name = ANY ($2) LIMIT 1", user, targets).Scan(&taken)
		if err == nil {
			return fmt.Errorf("mailbox %q: %w", taken, store.ErrExists)
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if p := store.ParentMailbox(newName); p != "" {
			if err := createLocked(ctx, tx, user, p, false, ""); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `UPDATE mailboxes SET name = $3 || substr(name, length($2) + 1)
			WHERE user_id = $1 AND (name = $2 OR starts_with(name, $2 || '/'))`, user, oldName, newName)
		return err
	})
}

// Subscribe adds a name to the user's subscriptions or removes it.
func (s *Store) Subscribe(address, name string, subscribed bool) error {
	addr, name, err := store.MailboxArgs(address, name)
	if err != nil {
		return err
	}
	ctx, done, err := s.op()
	if err != nil {
		return err
	}
	defer done()
	query := `INSERT INTO subscriptions (user_id, name) SELECT id, $2 FROM users WHERE address = $1 ON CONFLICT DO NOTHING`
	if !subscribed {
		query = `DELETE FROM subscriptions s USING users u WHERE u.id = s.user_id AND u.address = $1 AND s.name = $2`
	}
	err = s.write(ctx, func(tx pgx.Tx, c *changes) error {
		c.addUser(addr)
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM users WHERE address = $1)", addr).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return userNotFound(addr)
		}
		_, err := tx.Exec(ctx, query, addr, name)
		return err
	})
	return wrap(fmt.Sprintf("subscribing to %q", name), err)
}

// Subscriptions returns the subscribed names, sorted.
func (s *Store) Subscriptions(address string) ([]string, error) {
	addr, ctx, done, err := s.opAddress(address)
	if err != nil {
		return nil, err
	}
	defer done()
	var exists bool
	var out []string
	err = s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE address = $1),
			ARRAY (SELECT s.name FROM subscriptions s JOIN users u ON u.id = s.user_id WHERE u.address = $1 ORDER BY s.name COLLATE "C")`,
		addr).Scan(&exists, &out)
	if err == nil && !exists {
		err = userNotFound(addr)
	}
	if err != nil {
		return nil, fmt.Errorf("reading subscriptions: %w", err)
	}
	return out, nil
}

// Watch starts notifications of changes to a mailbox, from this process
// and, through LISTEN, from every other runtime on the database.
func (s *Store) Watch(address, mailbox string) (*store.Watch, error) {
	addr, ctx, done, err := s.opAddress(address)
	if err != nil {
		return nil, err
	}
	defer done()
	id, err := s.mailboxID(ctx, s.pool, addr, mailbox)
	if err != nil {
		return nil, fmt.Errorf("watching %s: %w", address, err)
	}
	return s.hub.Watch(addr, uint32(id)), nil
}

// WatchUser starts notifications of any change to the user's mail, mailbox
// list and subscriptions (IMAP NOTIFY), from this process and, through
// LISTEN, from every other runtime on the database.
func (s *Store) WatchUser(address string) (*store.Watch, error) {
	addr, ctx, done, err := s.opAddress(address)
	if err != nil {
		return nil, err
	}
	defer done()
	var exists bool
	if err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM users WHERE address = $1)", addr).Scan(&exists); err != nil {
		return nil, wrap("watching "+addr, err)
	}
	if !exists {
		return nil, fmt.Errorf("watching %s: %w", addr, userNotFound(addr))
	}
	return s.hub.WatchUser(addr), nil
}

// mailboxID returns the id (UIDVALIDITY) of mailbox name of addr.
func (s *Store) mailboxID(ctx context.Context, q querier, addr, name string) (int64, error) {
	name = store.NormalizeMailbox(name)
	var id int64
	err := q.QueryRow(ctx, "SELECT m.id FROM users u JOIN mailboxes m ON m.user_id = u.id AND m.name = $2 WHERE u.address = $1", addr, name).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, s.notFound(ctx, q, addr, name)
	}
	return id, err
}
