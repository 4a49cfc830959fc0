package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
)

// chunkSize is the most of a body one row holds: a body up to this size is
// one row of blobs, a larger one continues in blob_chunks, so that writing
// and reading it never needs more than a chunk in memory.
const chunkSize = 256 << 10

// blobRef is the BlobRef of blob id: its id in decimal.
func blobRef(id int64) store.BlobRef { return store.BlobRef(strconv.FormatInt(id, 10)) }

func blobID(ref store.BlobRef) (int64, error) {
	id, err := strconv.ParseInt(string(ref), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("message body %q: not a body of this store: %w", ref, store.ErrNotFound)
	}
	return id, nil
}

// appender collects bytea values into a buffer without the copy pgx makes
// when it scans into a []byte: pgx hands ScanBytes its own memory.
type appender struct{ b []byte }

func (a *appender) ScanBytes(v []byte) error {
	a.b = append(a.b, v...)
	return nil
}

// ReadBlob reads a whole body into buf's storage, grown if needed: one
// query for a body of one chunk, two for a larger one.
func (s *Store) ReadBlob(ref store.BlobRef, size int64, buf []byte) ([]byte, error) {
	id, err := blobID(ref)
	if err != nil {
		return nil, err
	}
	ctx, done, err := s.op()
	if err != nil {
		return nil, err
	}
	defer done()
	a := appender{b: slices.Grow(buf[:0], int(size))}
	rows, _ := s.pool.Query(ctx, "SELECT data FROM blobs WHERE id = $1", id)
	found := false
	for rows.Next() {
		found = true
		if err := rows.Scan(&a); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading message body %d: %w", id, err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading message body %d: %w", id, err)
	}
	if !found {
		return nil, fmt.Errorf("message body %d: %w", id, store.ErrNotFound)
	}
	if int64(len(a.b)) < size {
		rows, _ := s.pool.Query(ctx, "SELECT data FROM blob_chunks WHERE blob_id = $1 ORDER BY seq", id)
		for rows.Next() {
			if err := rows.Scan(&a); err != nil {
				rows.Close()
				return nil, fmt.Errorf("reading message body %d: %w", id, err)
			}
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("reading message body %d: %w", id, err)
		}
	}
	if int64(len(a.b)) != size {
		return nil, fmt.Errorf("message body %d has %d bytes, the index says %d", id, len(a.b), size)
	}
	return a.b, nil
}

// OpenBlob streams a body a chunk at a time, each chunk one query, so
// that no connection is held between reads and a large message is never
// in memory whole.
func (s *Store) OpenBlob(ref store.BlobRef) (io.ReadCloser, error) {
	id, err := blobID(ref)
	if err != nil {
		return nil, err
	}
	r := &blobReader{s: s, id: id, seq: -1}
	if err := r.next(); err != nil {
		return nil, err
	}
	return r, nil
}

type blobReader struct {
	s   *Store
	id  int64
	seq int // of the chunk in buf; 0 is blobs.data
	buf []byte
	off int
	eof bool
}

func (r *blobReader) Read(p []byte) (int, error) {
	for r.off == len(r.buf) {
		if r.eof {
			return 0, io.EOF
		}
		if err := r.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.buf[r.off:])
	r.off += n
	return n, nil
}

// next reads the chunk after the current one.
func (r *blobReader) next() error {
	ctx, done, err := r.s.op()
	if err != nil {
		return err
	}
	defer done()
	a := appender{b: r.buf[:0]}
	if r.seq < 0 {
		err = r.s.pool.QueryRow(ctx, "SELECT data FROM blobs WHERE id = $1", r.id).Scan(&a)
	} else {
		err = r.s.pool.QueryRow(ctx, "SELECT data FROM blob_chunks WHERE blob_id = $1 AND seq = $2", r.id, r.seq+1).Scan(&a)
	}
	switch {
	case isNoRows(err) && r.seq < 0:
		return fmt.Errorf("message body %d: %w", r.id, store.ErrNotFound)
	case isNoRows(err):
		r.eof = true
	case err != nil:
		return fmt.Errorf("reading message body %d: %w", r.id, err)
	}
	r.seq++
	r.buf, r.off = a.b, 0
	if len(r.buf) < chunkSize {
		r.eof = true // a short chunk is the last
	}
	return nil
}

func (r *blobReader) Close() error { return nil }

// sweepBlobs removes, at start and then every hour, blobs that no message
// has referred to for an hour: bodies whose writer died between writing
// them and storing the message. Several runtimes may sweep at once; each
// row goes once.
func (s *Store) sweepBlobs() {
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		if n, err := s.sweepOnce(); err != nil && s.base.Err() == nil {
			s.log.Warn("sweeping unused message bodies", "err", err)
		} else if n > 0 {
			s.log.Info("removed message bodies no message used", "blobs", n)
		}
		select {
		case <-tick.C:
		case <-s.base.Done():
			return
		}
	}
}

// sweepOnce removes the bodies unreferenced for an hour.
func (s *Store) sweepOnce() (int64, error) {
	ctx, cancel := context.WithTimeout(s.base, opTimeout)
	defer cancel()
	tag, err := s.pool.Exec(ctx, "DELETE FROM blobs WHERE refs = 0 AND created < now() - interval '1 hour'")
	return tag.RowsAffected(), err
}

func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

var _ store.BlobBatchReader = (*Store)(nil)

// ReadBlobs reads many bodies with one query (and one more for those
// longer than a chunk): IMAP FETCH of a range of messages costs a round
// trip per batch rather than per message.
func (s *Store) ReadBlobs(refs []store.BlobRef, fn func(ref store.BlobRef, body []byte) error) error {
	ids := make([]int64, 0, len(refs))
	for _, ref := range refs {
		if id, err := blobID(ref); err == nil {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	ctx, done, err := s.op()
	if err != nil {
		return err
	}
	defer done()
	var (
		id, size int64
		a        appender
		long     map[int64][]byte // bodies continued in blob_chunks
	)
	rows, _ := s.pool.Query(ctx, "SELECT id, size, data FROM blobs WHERE id = ANY ($1)", ids)
	_, err = pgx.ForEachRow(rows, []any{&id, &size, &a}, func() error {
		defer func() { a.b = a.b[:0] }()
		if int64(len(a.b)) < size {
			if long == nil {
				long = map[int64][]byte{}
			}
			long[id] = append(make([]byte, 0, size), a.b...)
			return nil
		}
		return fn(blobRef(id), a.b)
	})
	if err != nil || len(long) == 0 {
		return wrap("reading message bodies", err)
	}
	chunked := make([]int64, 0, len(long))
	for id := range long {
		chunked = append(chunked, id)
	}
	rows, _ = s.pool.Query(ctx, "SELECT blob_id, data FROM blob_chunks WHERE blob_id = ANY ($1) ORDER BY blob_id, seq", chunked)
	_, err = pgx.ForEachRow(rows, []any{&id, &a}, func() error {
		long[id] = append(long[id], a.b...)
		a.b = a.b[:0]
		return nil
	})
	if err != nil {
		return wrap("reading message bodies", err)
	}
	for id, body := range long {
		if err := fn(blobRef(id), body); err != nil {
			return err
		}
	}
	return nil
}
