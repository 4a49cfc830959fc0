package postgres

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
)

// PutUser creates the user with INBOX and store.DefaultMailboxes, or
// changes the password and quota of an existing one, in one transaction.
func (s *Store) PutUser(address, password string, quotaBytes int64) error {
	addr, hash, err := s.passwords.NewUser(address, password, quotaBytes)
	if err != nil {
		return err
	}
	ctx, done, err := s.op()
	if err != nil {
		return err
	}
	defer done()
	names := []string{store.Inbox}
	uses := []string{""}
	for _, mb := range store.DefaultMailboxes {
		names = append(names, mb.Name)
		uses = append(uses, mb.SpecialUse)
	}
	err = s.write(ctx, func(tx pgx.Tx, _ *changes) error {
		var id int32
		var created bool
		err := tx.QueryRow(ctx, `INSERT INTO users (address, password_hash, quota_bytes) VALUES ($1, $2, $3)
			ON CONFLICT (address) DO UPDATE SET password_hash = EXCLUDED.password_hash, quota_bytes = EXCLUDED.quota_bytes
			RETURNING id, xmax = 0`, addr, hash, quotaBytes).Scan(&id, &created)
		if err != nil || !created {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO mailboxes (user_id, name, special_use)
			SELECT $1, n, u FROM unnest($2::text[], $3::text[]) AS t(n, u)`, id, names, uses); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "INSERT INTO subscriptions (user_id, name) VALUES ($1, $2)", id, store.Inbox)
		return err
	})
	return wrap("storing user "+addr, err)
}

// DeleteUser removes the user and all their mail. It fails with
// store.ErrMaildropLocked while a POP3 session of any runtime on the
// database holds the maildrop.
func (s *Store) DeleteUser(address string) error {
	addr, ctx, done, err := s.opAddress(address)
	if err != nil {
		return err
	}
	defer done()
	var id int32
	if err := s.pool.QueryRow(ctx, "SELECT id FROM users WHERE address = $1", addr).Scan(&id); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("deleting user: %w", userNotFound(addr))
		}
		return wrap("deleting user "+addr, err)
	}
	ok, _, err := s.locks.tryLock(ctx, id)
	if err != nil {
		return wrap("deleting user "+addr, err)
	}
	if !ok {
		return fmt.Errorf("deleting user %s: %w", addr, store.ErrMaildropLocked)
	}
	defer s.locks.unlock(ctx, id)
	err = s.write(ctx, func(tx pgx.Tx, _ *changes) error {
		tag, err := tx.Exec(ctx, "DELETE FROM users WHERE id = $1", id)
		if err == nil && tag.RowsAffected() == 0 {
			err = userNotFound(addr)
		}
		return err
	})
	if err != nil {
		return wrap("deleting user "+addr, err)
	}
	s.passwords.Forget(addr)
	return nil
}

// User returns a user with their quota and usage.
func (s *Store) User(address string) (store.UserInfo, error) {
	addr, ctx, done, err := s.opAddress(address)
	if err != nil {
		return store.UserInfo{}, err
	}
	defer done()
	info := store.UserInfo{Address: addr}
	err = s.pool.QueryRow(ctx, "SELECT quota_bytes, used_bytes FROM users WHERE address = $1", addr).Scan(&info.QuotaBytes, &info.UsedBytes)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.UserInfo{}, userNotFound(addr)
	}
	return info, wrap("reading user "+addr, err)
}

// Users returns every user, ordered by address (byte order, as Go sorts).
func (s *Store) Users() ([]store.UserInfo, error) {
	ctx, done, err := s.op()
	if err != nil {
		return nil, err
	}
	defer done()
	rows, _ := s.pool.Query(ctx, `SELECT address, quota_bytes, used_bytes FROM users ORDER BY address COLLATE "C"`)
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.UserInfo, error) {
		var u store.UserInfo
		return u, row.Scan(&u.Address, &u.QuotaBytes, &u.UsedBytes)
	})
	return out, wrap("listing users", err)
}

// Authenticate checks a password; see store.Users.
func (s *Store) Authenticate(address, password string) error {
	hash := ""
	addr, err := store.CanonicalAddress(address)
	if err == nil {
		ctx, done, err := s.op()
		if err != nil {
			return err
		}
		err = s.pool.QueryRow(ctx, "SELECT password_hash FROM users WHERE address = $1", addr).Scan(&hash)
		done()
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("reading user: %w", err)
		}
	}
	return s.passwords.Check(addr, hash, password)
}
