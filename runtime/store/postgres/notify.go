package postgres

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// channel is the LISTEN/NOTIFY channel of mailbox changes. A payload is
// the origin store's id, then one line "<uidvalidity> <address>" per
// changed mailbox (notify_changes, in the schema).
const channel = "mailstack"

// notifyLocal signals this process's watches on the mailboxes of c.
func (s *Store) notifyLocal(c []string) {
	for _, item := range c {
		s.signal(item)
	}
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

// listen keeps a connection LISTENing on the change channel and feeds
// other processes' changes to the hub, until the store closes. The first
// outcome (listening, or why not) goes to ready. When the connection
// drops (the database restarted), it reconnects with backoff and then
// wakes every watch, since changes may have been missed meanwhile.
func (s *Store) listen(ready chan<- error) {
	first := true
	backoff := 100 * time.Millisecond
	for s.base.Err() == nil {
		conn, err := s.listenConn()
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

func (s *Store) listenConn() (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(s.base, opTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, s.connCfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
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
