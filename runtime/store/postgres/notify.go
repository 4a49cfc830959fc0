package postgres

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Change notification across runtimes. A transaction that changes a
// mailbox does not NOTIFY itself: PostgreSQL serializes the commits of
// every transaction that sends a NOTIFY, through their WAL flush, which
// would undo the group commit of concurrent deliveries. Instead, once it
// has committed, the store wakes its own watches and hands the mailboxes
// to its announcer, which sends them (notify_changes) from a connection of
// its own that does not wait for the disk, many commits' worth at once.
// Every store LISTENs and wakes the watches of other runtimes' changes.
//
// A notification can be lost: the runtime dies between its commit and the
// announcement, or the database restarts. So every store also polls the
// MODSEQ of the mailboxes it has watches on every pollInterval, and wakes
// those whose MODSEQ moved or which are gone; and after its LISTEN
// connection comes back it wakes every watch. A user's watch (WatchUser,
// IMAP NOTIFY) has no MODSEQ to poll: it hears of a lost change to a
// mailbox's messages only if a watch on that mailbox exists here, and of a
// lost change to the mailbox list with the next notification.

// channel is the LISTEN/NOTIFY channel of mailbox changes. A payload is
// the origin store's id, then one line "<uidvalidity> <address>" per
// changed mailbox.
const channel = "mailstack"

// pollInterval is how often the MODSEQs of watched mailboxes are checked.
const pollInterval = 500 * time.Millisecond

// changed wakes this process's watches on the mailboxes of c (each
// "<uidvalidity> <address>", from changes) and has them announced to the
// other runtimes.
func (s *Store) changed(c []string) {
	if len(c) == 0 {
		return
	}
	for _, item := range c {
		s.signal(item)
	}
	s.announcer.add(c)
}

// signal parses one "<uidvalidity> <address>" item and notifies its
// watches.
func (s *Store) signal(item string) {
	id, addr, ok := strings.Cut(item, " ")
	if !ok {
		return
	}
	uv, err := strconv.ParseUint(id, 10, 32)
	if err != nil {
		return
	}
	s.hub.Notify(addr, uint32(uv))
}

// announcer collects the mailboxes changed by this store's commits until
// the announce loop sends them.
type announcer struct {
	mu      sync.Mutex
	pending map[string]bool
	wake    chan struct{}
}

func newAnnouncer() *announcer {
	return &announcer{pending: map[string]bool{}, wake: make(chan struct{}, 1)}
}

func (a *announcer) add(c []string) {
	a.mu.Lock()
	for _, item := range c {
		a.pending[item] = true
	}
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *announcer) take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.pending))
	for item := range a.pending {
		out = append(out, item)
	}
	clear(a.pending)
	return out
}

// announce sends what the announcer collects until the store closes. A
// failure drops that batch (the pollers of other runtimes catch up) and
// reconnects on the next one.
func (s *Store) announce() {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for {
		select {
		case <-s.announcer.wake:
		case <-s.base.Done():
			return
		}
		items := s.announcer.take()
		if len(items) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(s.base, opTimeout)
		var err error
		if conn == nil {
			conn, err = s.connect(ctx, "SET synchronous_commit = off")
		}
		if err == nil {
			_, err = conn.Exec(ctx, "SELECT notify_changes($1, $2)", s.origin, items)
		}
		cancel()
		if err != nil && s.base.Err() == nil {
			s.log.Debug("announcing mailbox changes failed; other runtimes' polls will see them", "err", err)
			if conn != nil {
				conn.Close(context.Background())
				conn = nil
			}
		}
	}
}

// connect opens a connection outside the pool and runs setup on it.
func (s *Store) connect(ctx context.Context, setup string) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.connCfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, setup); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// listen keeps a connection LISTENing on the change channel and feeds
// other processes' changes to the hub, until the store closes. The first
// outcome (listening, or why not) goes to ready. When the connection
// drops (the database restarted), it reconnects with backoff and then
// wakes every watch, since changes may have been missed meanwhile.
func (s *Store) listen(ready chan<- error) {
	first := true
	backoff := 100 * time.Millisecond
	for s.base.Err() == nil {
		ctx, cancel := context.WithTimeout(s.base, opTimeout)
		conn, err := s.connect(ctx, "LISTEN "+channel)
		cancel()
		if err != nil {
			if first {
				ready <- err
				return
			}
			s.log.Warn("change notifications interrupted; reconnecting", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-s.base.Done():
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		if first {
			ready <- nil
			first = false
		} else {
			s.log.Info("change notifications resumed")
			s.hub.NotifyAll()
		}
		backoff = 100 * time.Millisecond
		for {
			n, err := conn.WaitForNotification(s.base)
			if err != nil {
				break
			}
			s.dispatch(n.Payload)
		}
		conn.Close(context.Background())
	}
}

// dispatch notifies the watches named in a payload from another store.
func (s *Store) dispatch(payload string) {
	origin, rest, _ := strings.Cut(payload, "\n")
	if origin == s.origin {
		return // notified at commit
	}
	for item := range strings.SplitSeq(rest, "\n") {
		s.signal(item)
	}
}

// poll wakes, every pollInterval, the watches of mailboxes whose MODSEQ
// moved or which are gone, until the store closes: the backstop for
// notifications that were lost.
func (s *Store) poll() {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	seen := map[int64]int64{} // mailbox id -> MODSEQ at the last poll
	for {
		select {
		case <-tick.C:
		case <-s.base.Done():
			return
		}
		owners := map[int64]string{}
		s.hub.Watched(func(addr string, id uint32) {
			if id != 0 { // a user's watch (WatchUser) has no MODSEQ of its own
				owners[int64(id)] = addr
			}
		})
		if len(owners) == 0 {
			clear(seen)
			continue
		}
		ids := make([]int64, 0, len(owners))
		for id := range owners {
			ids = append(ids, id)
		}
		ctx, cancel := context.WithTimeout(s.base, opTimeout)
		rows, _ := s.pool.Query(ctx, "SELECT id, modseq FROM mailboxes WHERE id = ANY ($1)", ids)
		now := map[int64]int64{}
		var id, modseq int64
		_, err := pgx.ForEachRow(rows, []any{&id, &modseq}, func() error {
			now[id] = modseq
			return nil
		})
		cancel()
		if err != nil {
			continue // the database is away; the LISTEN loop wakes everyone when it is back
		}
		for id, addr := range owners {
			last, known := seen[id]
			cur, exists := now[id]
			if known && (!exists || cur != last) {
				s.hub.Notify(addr, uint32(id))
			}
		}
		seen = now
		s.polls.Add(1)
	}
}
