package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
)

// Every change to a mailbox's messages locks the mailbox's row first
// (lockMailbox, or the UPDATE of uid_next and modseq in the deliver and
// append functions), so changes to one mailbox are serialized across all
// runtimes and UIDs and MODSEQs follow commit order. A change that also
// changes the user's usage locks the user's row before any mailbox's, as
// the deliver and append functions do, and several mailboxes in id order,
// so that no two transactions wait for each other.

// maxVanished bounds the vanished rows a mailbox keeps; beyond it the
// oldest half is pruned and vanished_floor rises (store.Messages.Vanished
// may then answer with more UIDs than were expunged since).
const maxVanished = 20000

// messageColumns are read by scanMessage.
const messageColumns = "x.uid, x.flags, x.size, x.internal_date, x.modseq, x.blob_id"

// scanMessage scans messageColumns (all NULL for an outer join that found
// no message: ok is false then).
func scanMessage(row pgx.Row, extra ...any) (m store.MessageInfo, ok bool, err error) {
	var (
		uid, size, modseq, blob *int64
		date                    *time.Time
		flags                   []string
	)
	if err := row.Scan(append(extra, &uid, &flags, &size, &date, &modseq, &blob)...); err != nil {
		return m, false, err
	}
	if uid == nil {
		return m, false, nil
	}
	if flags == nil {
		flags = []string{}
	}
	return store.MessageInfo{UID: uint32(*uid), Flags: flags, Size: *size, Date: *date, ModSeq: uint64(*modseq), Body: blobRef(*blob)}, true, nil
}

// Messages returns every message of the mailbox with the mailbox's
// counters, all read by one statement, so from one snapshot.
func (s *Store) Messages(address, mailbox string) (*store.Snapshot, error) {
	addr, ctx, done, err := s.opAddress(address)
	if err != nil {
		return nil, err
	}
	defer done()
	name := store.NormalizeMailbox(mailbox)
	rows, _ := s.pool.Query(ctx, `SELECT m.id, m.uid_next, m.modseq, m.recent_from, m.special_use,
			EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_id = u.id AND s.name = m.name), `+messageColumns+`
		FROM users u JOIN mailboxes m ON m.user_id = u.id AND m.name = $2
		LEFT JOIN messages x ON x.mailbox_id = m.id
		WHERE u.address = $1 ORDER BY x.uid`, addr, name)
	defer rows.Close()
	var snap *store.Snapshot
	for rows.Next() {
		var id, next, modseq, recent int64
		var use string
		var subscribed bool
		m, ok, err := scanMessage(rows, &id, &next, &modseq, &recent, &use, &subscribed)
		if err != nil {
			return nil, fmt.Errorf("reading %q: %w", mailbox, err)
		}
		if snap == nil {
			snap = &store.Snapshot{
				MailboxInfo: store.MailboxInfo{Name: name, UIDValidity: uint32(id), UIDNext: uint32(next), Subscribed: subscribed, SpecialUse: use},
				ModSeq:      uint64(modseq), RecentFrom: uint32(recent),
				Messages: []store.MessageInfo{},
			}
		}
		if ok {
			snap.Messages = append(snap.Messages, m)
		}
	}
	err = rows.Err()
	if err == nil && snap == nil {
		err = s.notFound(ctx, s.pool, addr, name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %q: %w", mailbox, err)
	}
	return snap, nil
}

// ModSeq returns the mailbox's MODSEQ: one indexed row read.
func (s *Store) ModSeq(address, mailbox string) (uint64, error) {
	addr, ctx, done, err := s.opAddress(address)
	if err != nil {
		return 0, err
	}
	defer done()
	name := store.NormalizeMailbox(mailbox)
	var seq int64
	err = s.pool.QueryRow(ctx, "SELECT m.modseq FROM users u JOIN mailboxes m ON m.user_id = u.id AND m.name = $2 WHERE u.address = $1",
		addr, name).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		err = s.notFound(ctx, s.pool, addr, name)
	}
	if err != nil {
		return 0, fmt.Errorf("reading %q: %w", mailbox, err)
	}
	return uint64(seq), nil
}

// Lookup returns the messages with the given UIDs in the order given.
func (s *Store) Lookup(address, mailbox string, uids []uint32) ([]store.MessageInfo, error) {
	addr, ctx, done, err := s.opAddress(address)
	if err != nil {
		return nil, err
	}
	defer done()
	name := store.NormalizeMailbox(mailbox)
	rows, _ := s.pool.Query(ctx, `SELECT `+messageColumns+`
		FROM users u JOIN mailboxes m ON m.user_id = u.id AND m.name = $2
		LEFT JOIN messages x ON x.mailbox_id = m.id AND x.uid = ANY ($3)
		WHERE u.address = $1`, addr, name, int64s(uids))
	defer rows.Close()
	found := false
	byUID := make(map[uint32]store.MessageInfo, len(uids))
	for rows.Next() {
		found = true
		m, ok, err := scanMessage(rows)
		if err != nil {
			return nil, fmt.Errorf("reading %q: %w", mailbox, err)
		}
		if ok {
			byUID[m.UID] = m
		}
	}
	err = rows.Err()
	if err == nil && !found {
		err = s.notFound(ctx, s.pool, addr, name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %q: %w", mailbox, err)
	}
	out := make([]store.MessageInfo, 0, len(byUID))
	for _, uid := range uids {
		if m, ok := byUID[uid]; ok {
			out = append(out, m)
		}
	}
	return out, nil
}

// box is a mailbox locked by lockMailbox.
type box struct {
	id, user, modseq int64
}

// lockMailbox locks mailbox name of addr for the transaction.
func (s *Store) lockMailbox(ctx context.Context, tx pgx.Tx, addr, name string) (box, error) {
	name = store.NormalizeMailbox(name)
	var b box
	err := tx.QueryRow(ctx, `SELECT m.id, m.user_id, m.modseq FROM users u JOIN mailboxes m ON m.user_id = u.id AND m.name = $2
		WHERE u.address = $1 FOR UPDATE OF m`, addr, name).Scan(&b.id, &b.user, &b.modseq)
	if errors.Is(err, pgx.ErrNoRows) {
		return b, s.notFound(ctx, tx, addr, name)
	}
	return b, err
}

// SetFlags applies a flag change: the flags are computed here (as the
// embedded store does) with the mailbox's row locked, and the messages
// whose flags change take the mailbox's next MODSEQ.
func (s *Store) SetFlags(address, mailbox string, uids []uint32, ch store.FlagChange) (store.FlagResult, error) {
	addr, ctx, done, err := s.opAddress(address)
	if err != nil {
		return store.FlagResult{}, err
	}
	defer done()
	var res store.FlagResult
	err = s.write(ctx, func(tx pgx.Tx, c *changes) error {
		res = store.FlagResult{}
		b, err := s.lockMailbox(ctx, tx, addr, mailbox)
		if err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, "SELECT "+messageColumns+" FROM messages x WHERE x.mailbox_id = $1 AND x.uid = ANY ($2)", b.id, int64s(uids))
		msgs := map[uint32]*store.MessageInfo{}
		for rows.Next() {
			m, _, err := scanMessage(rows)
			if err != nil {
				rows.Close()
				return err
			}
			msgs[m.UID] = &m
		}
		if err := rows.Err(); err != nil {
			return err
		}
		next := uint64(b.modseq) + 1
		type group struct {
			flags []string
			uids  []int64
		}
		var groups []*group
		byFlags := map[string]*group{}
		for _, uid := range uids {
			m := msgs[uid]
			if m == nil {
				continue
			}
			if ch.UnchangedSince != 0 && m.ModSeq > ch.UnchangedSince {
				res.Modified = append(res.Modified, uid)
				continue
			}
			if nf, changed := store.ApplyFlags(m.Flags, ch.Op, ch.Flags); changed {
				m.Flags, m.ModSeq = nf, next
				key := strings.Join(nf, "\x00")
				g := byFlags[key]
				if g == nil {
					g = &group{flags: nf}
					byFlags[key] = g
					groups = append(groups, g)
				}
				g.uids = append(g.uids, int64(uid))
			}
			res.Messages = append(res.Messages, *m)
		}
		if len(groups) == 0 {
			return nil
		}
		for _, g := range groups {
			if _, err := tx.Exec(ctx, "UPDATE messages SET flags = $1, modseq = $2 WHERE mailbox_id = $3 AND uid = ANY ($4)",
				g.flags, int64(next), b.id, g.uids); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, "UPDATE mailboxes SET modseq = $1 WHERE id = $2", int64(next), b.id); err != nil {
			return err
		}
		c.add(addr, b.id)
		return nil
	})
	if err != nil {
		return store.FlagResult{}, fmt.Errorf("setting flags in %q: %w", mailbox, err)
	}
	return res, nil
}

// Expunge removes the messages flagged \Deleted (only among uids if uids
// is not nil).
func (s *Store) Expunge(address, mailbox string, uids []uint32) ([]uint32, error) {
	addr, ctx, done, err := s.opAddress(address)
	if err != nil {
		return nil, err
	}
	defer done()
	removed, err := s.remove(ctx, addr, mailbox, uids, true)
	if err != nil {
		return nil, fmt.Errorf("expunging %q: %w", mailbox, err)
	}
	return removed, nil
}

// remove deletes messages (all if uids is nil; with onlyDeleted only those
// flagged \Deleted) and returns their UIDs in ascending order.
func (s *Store) remove(ctx context.Context, addr, mailbox string, uids []uint32, onlyDeleted bool) ([]uint32, error) {
	var removed []uint32
	err := s.write(ctx, func(tx pgx.Tx, c *changes) error {
		removed = nil
		if _, err := lockUser(ctx, tx, addr); err != nil {
			return err
		}
		b, err := s.lockMailbox(ctx, tx, addr, mailbox)
		if err != nil {
			return err
		}
		var ids []int64
		var freed int64
		err = tx.QueryRow(ctx, `WITH d AS (DELETE FROM messages WHERE mailbox_id = $1 AND ($2::bigint[] IS NULL OR uid = ANY ($2))
				AND (NOT $3 OR '\Deleted' = ANY (flags)) RETURNING uid, size)
			SELECT coalesce(array_agg(uid ORDER BY uid), '{}'), coalesce(sum(size), 0) FROM d`,
			b.id, int64sOrNil(uids), onlyDeleted).Scan(&ids, &freed)
		if err != nil || len(ids) == 0 {
			return err
		}
		if err := noteRemoval(ctx, tx, b.id, ids); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE users SET used_bytes = used_bytes - $1 WHERE id = $2", freed, b.user); err != nil {
			return err
		}
		c.add(addr, b.id)
		removed = uint32s(ids)
		return nil
	})
	return removed, err
}

// noteRemoval records that uids left mailbox id: its MODSEQ grows, and
// the UIDs are kept with that MODSEQ for QRESYNC, the oldest pruned
// beyond maxVanished.
func noteRemoval(ctx context.Context, tx pgx.Tx, id int64, uids []int64) error {
	var modseq int64
	var count int
	err := tx.QueryRow(ctx, "UPDATE mailboxes SET modseq = modseq + 1, vanished_count = vanished_count + $2 WHERE id = $1 RETURNING modseq, vanished_count",
		id, len(uids)).Scan(&modseq, &count)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "INSERT INTO vanished (mailbox_id, uid, modseq) SELECT $1, unnest($2::bigint[]), $3 ON CONFLICT DO NOTHING",
		id, uids, modseq); err != nil {
		return err
	}
	if count <= maxVanished {
		return nil
	}
	// UIDs ascend with time, so the lowest are the oldest removals.
	_, err = tx.Exec(ctx, `WITH d AS (
			DELETE FROM vanished v USING (SELECT uid FROM vanished WHERE mailbox_id = $1 ORDER BY uid LIMIT $2) o
			WHERE v.mailbox_id = $1 AND v.uid = o.uid RETURNING v.modseq)
		UPDATE mailboxes SET vanished_count = vanished_count - (SELECT count(*) FROM d),
			vanished_floor = greatest(vanished_floor, (SELECT coalesce(max(modseq), 0) FROM d))
		WHERE id = $1`, id, count-maxVanished/2)
	return err
}

// Copy copies messages to dst with their flags and internal dates; the
// copies share the bodies.
func (s *Store) Copy(address, src string, uids []uint32, dst string) (store.CopyResult, error) {
	return s.transferOp(address, src, uids, dst, false)
}

// Move moves messages to dst in one transaction: the rows change mailbox
// and UID, so an observer of src sees them go as they appear in dst.
func (s *Store) Move(address, src string, uids []uint32, dst string) (store.CopyResult, error) {
	return s.transferOp(address, src, uids, dst, true)
}

func (s *Store) transferOp(address, src string, uids []uint32, dst string, move bool) (store.CopyResult, error) {
	addr, ctx, done, err := s.opAddress(address)
	if err != nil {
		return store.CopyResult{}, err
	}
	defer done()
	if uids == nil {
		uids = []uint32{}
	}
	var res store.CopyResult
	err = s.write(ctx, func(tx pgx.Tx, c *changes) error {
		var err error
		res, err = transfer(ctx, tx, c, addr, src, uids, dst, move)
		return err
	})
	if err != nil {
		return store.CopyResult{}, fmt.Errorf("copying from %q to %q: %w", src, dst, err)
	}
	return res, nil
}

// transfer copies or moves messages (all of src if uids is nil) to dst
// within tx.
func transfer(ctx context.Context, tx pgx.Tx, c *changes, addr, src string, uids []uint32, dst string, move bool) (store.CopyResult, error) {
	src, dst = store.NormalizeMailbox(src), store.NormalizeMailbox(dst)
	if _, err := lockUser(ctx, tx, addr); err != nil {
		return store.CopyResult{}, err
	}
	// Lock both rows in id order, as every transaction that locks two
	// mailboxes does, so that two transfers cannot deadlock.
	rows, _ := tx.Query(ctx, `SELECT m.id, m.name, m.user_id FROM users u JOIN mailboxes m ON m.user_id = u.id
		WHERE u.address = $1 AND m.name = ANY ($2) ORDER BY m.id FOR UPDATE OF m`, addr, []string{src, dst})
	var srcID, dstID, user int64
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name, &user); err != nil {
			rows.Close()
			return store.CopyResult{}, err
		}
		if name == src {
			srcID = id
		}
		if name == dst {
			dstID = id
		}
	}
	if err := rows.Err(); err != nil {
		return store.CopyResult{}, err
	}
	for name, id := range map[string]int64{src: srcID, dst: dstID} {
		if id == 0 {
			return store.CopyResult{}, fmt.Errorf("mailbox %q: %w", name, store.ErrNotFound)
		}
	}

	var srcUIDs []int64
	if uids == nil {
		err := tx.QueryRow(ctx, "SELECT coalesce(array_agg(uid ORDER BY uid), '{}') FROM messages WHERE mailbox_id = $1", srcID).Scan(&srcUIDs)
		if err != nil {
			return store.CopyResult{}, err
		}
	} else {
		var present []int64
		err := tx.QueryRow(ctx, "SELECT coalesce(array_agg(uid), '{}') FROM messages WHERE mailbox_id = $1 AND uid = ANY ($2)", srcID, int64s(uids)).Scan(&present)
		if err != nil {
			return store.CopyResult{}, err
		}
		for _, uid := range uids { // in the order given, each once
			if u := int64(uid); slices.Contains(present, u) && !slices.Contains(srcUIDs, u) {
				srcUIDs = append(srcUIDs, u)
			}
		}
	}
	if len(srcUIDs) == 0 {
		return store.CopyResult{}, nil
	}
	n := int64(len(srcUIDs))
	var first, modseq int64
	err := tx.QueryRow(ctx, "UPDATE mailboxes SET uid_next = uid_next + $2, modseq = modseq + 1 WHERE id = $1 RETURNING uid_next - $2, modseq",
		dstID, n).Scan(&first, &modseq)
	if err != nil {
		return store.CopyResult{}, err
	}
	if move {
		_, err = tx.Exec(ctx, `UPDATE messages x SET mailbox_id = $1, uid = $2 + s.ord - 1, modseq = $3
			FROM unnest($4::bigint[]) WITH ORDINALITY AS s(uid, ord) WHERE x.mailbox_id = $5 AND x.uid = s.uid`,
			dstID, first, modseq, srcUIDs, srcID)
		if err == nil {
			err = noteRemoval(ctx, tx, srcID, slices.Sorted(slices.Values(srcUIDs)))
		}
		c.add(addr, srcID)
	} else {
		var added int64
		err = tx.QueryRow(ctx, `WITH i AS (
				INSERT INTO messages (mailbox_id, uid, modseq, flags, size, internal_date, blob_id)
				SELECT $1, $2 + s.ord - 1, $3, x.flags, x.size, x.internal_date, x.blob_id
				FROM unnest($4::bigint[]) WITH ORDINALITY AS s(uid, ord) JOIN messages x ON x.mailbox_id = $5 AND x.uid = s.uid
				RETURNING size)
			SELECT coalesce(sum(size), 0) FROM i`, dstID, first, modseq, srcUIDs, srcID).Scan(&added)
		if err == nil {
			_, err = tx.Exec(ctx, "UPDATE users SET used_bytes = used_bytes + $1 WHERE id = $2", added, user)
		}
	}
	if err != nil {
		return store.CopyResult{}, err
	}
	c.add(addr, dstID)
	res := store.CopyResult{UIDValidity: uint32(dstID), SourceUIDs: uint32s(srcUIDs)}
	for i := range srcUIDs {
		res.DestUIDs = append(res.DestUIDs, uint32(first)+uint32(i))
	}
	return res, nil
}

// ClaimRecent hands the caller the messages no session has claimed as
// \Recent: one locked read-and-advance of recent_from, after a plain read
// that spares most calls (nothing new) a write.
func (s *Store) ClaimRecent(address, mailbox string) (first, next uint32, err error) {
	addr, ctx, done, err := s.opAddress(address)
	if err != nil {
		return 0, 0, err
	}
	defer done()
	name := store.NormalizeMailbox(mailbox)
	var from, upto int64
	err = s.pool.QueryRow(ctx, "SELECT m.recent_from, m.uid_next FROM users u JOIN mailboxes m ON m.user_id = u.id AND m.name = $2 WHERE u.address = $1",
		addr, name).Scan(&from, &upto)
	if errors.Is(err, pgx.ErrNoRows) {
		err = s.notFound(ctx, s.pool, addr, name)
	}
	if err != nil || from == upto {
		return uint32(upto), uint32(upto), wrap(fmt.Sprintf("claiming recent messages in %q", mailbox), err)
	}
	err = s.pool.QueryRow(ctx, `WITH old AS (
			SELECT m.id, m.recent_from, m.uid_next FROM users u JOIN mailboxes m ON m.user_id = u.id AND m.name = $2
			WHERE u.address = $1 FOR UPDATE OF m)
		UPDATE mailboxes SET recent_from = old.uid_next FROM old WHERE mailboxes.id = old.id
		RETURNING old.recent_from, old.uid_next`, addr, name).Scan(&from, &upto)
	if errors.Is(err, pgx.ErrNoRows) {
		err = s.notFound(ctx, s.pool, addr, name)
	}
	return uint32(from), uint32(upto), wrap(fmt.Sprintf("claiming recent messages in %q", mailbox), err)
}

// Vanished returns the UIDs removed after MODSEQ since, from the vanished
// rows; when since is older than what they still hold, every UID below
// UIDNEXT that does not exist.
func (s *Store) Vanished(address, mailbox string, since uint64) ([]store.UIDRange, error) {
	addr, ctx, done, err := s.opAddress(address)
	if err != nil {
		return nil, err
	}
	defer done()
	name := store.NormalizeMailbox(mailbox)
	var next, floor int64
	var existing, gone []int64
	err = s.pool.QueryRow(ctx, `SELECT m.uid_next, m.vanished_floor,
			CASE WHEN $3 = 0 OR $3 < m.vanished_floor THEN ARRAY (SELECT uid FROM messages WHERE mailbox_id = m.id ORDER BY uid) END,
			ARRAY (SELECT uid FROM vanished WHERE mailbox_id = m.id AND modseq > $3 ORDER BY uid)
		FROM users u JOIN mailboxes m ON m.user_id = u.id AND m.name = $2 WHERE u.address = $1`,
		addr, name, int64(since)).Scan(&next, &floor, &existing, &gone)
	if errors.Is(err, pgx.ErrNoRows) {
		err = s.notFound(ctx, s.pool, addr, name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading vanished messages of %q: %w", mailbox, err)
	}
	var out []store.UIDRange
	if since == 0 || int64(since) < floor {
		want := int64(1)
		for _, uid := range existing {
			if uid > want {
				out = append(out, store.UIDRange{Start: uint32(want), Stop: uint32(uid - 1)})
			}
			want = uid + 1
		}
		if want < next {
			out = append(out, store.UIDRange{Start: uint32(want), Stop: uint32(next - 1)})
		}
		return out, nil
	}
	for _, uid := range gone {
		out = store.AppendUID(out, uint32(uid))
	}
	return out, nil
}

func int64s(uids []uint32) []int64 {
	out := make([]int64, len(uids))
	for i, u := range uids {
		out[i] = int64(u)
	}
	return out
}

// int64sOrNil is int64s, keeping nil (SQL NULL: "all").
func int64sOrNil(uids []uint32) []int64 {
	if uids == nil {
		return nil
	}
	return int64s(uids)
}

func uint32s(ids []int64) []uint32 {
	out := make([]uint32, len(ids))
	for i, id := range ids {
		out[i] = uint32(id)
	}
	return out
}
