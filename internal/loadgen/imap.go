package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// FetchLoad describes an IMAP FETCH measurement: Clients sessions logged in
// as User, each fetching the whole INBOX with
// UID FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[]) again and again for
// Duration.
type FetchLoad struct {
	// Addr is an implicit-TLS IMAP port.
	Addr string
	// TLS is the client configuration.
	TLS *tls.Config
	// User and Password log in.
	User, Password string
	// Clients is the number of concurrent sessions; zero means one.
	Clients int
	// Duration is how long to measure.
	Duration time.Duration
}

// RunFetch measures messages fetched per second; Bytes counts literal
// bytes (the messages).
func RunFetch(ctx context.Context, l FetchLoad) (Result, error) {
	clients := max(l.Clients, 1)
	sessions := make([]*IMAPSession, clients)
	defer func() {
		for _, s := range sessions {
			if s != nil {
				s.nc.Close()
			}
		}
	}()
	for i := range sessions {
		s, err := LoginIMAP(ctx, l.Addr, l.TLS, l.User, l.Password)
		if err != nil {
			return Result{}, fmt.Errorf("session %d: %w", i, err)
		}
		if _, err := s.command("s SELECT INBOX"); err != nil {
			return Result{}, err
		}
		sessions[i] = s
	}
	var (
		msgs, bytes atomic.Int64
		firstErr    error
		errOnce     sync.Once
		wg          sync.WaitGroup
	)
	deadline := time.Now().Add(l.Duration)
	start := time.Now()
	for _, s := range sessions {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				st, err := s.command("f UID FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[])")
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				msgs.Add(st.untagged)
				bytes.Add(st.literalBytes)
			}
		})
	}
	wg.Wait()
	return Result{Ops: msgs.Load(), Bytes: bytes.Load(), Elapsed: time.Since(start)}, firstErr
}

// IMAPSession is a logged-in IMAP connection.
type IMAPSession struct {
	nc net.Conn
	r  *bufio.Reader
}

// LoginIMAP connects with implicit TLS and logs in.
func LoginIMAP(ctx context.Context, addr string, cfg *tls.Config, user, password string) (*IMAPSession, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(nc, cfg)
	c := &IMAPSession{nc: tc, r: bufio.NewReaderSize(tc, 64<<10)}
	tc.SetDeadline(time.Now().Add(time.Minute))
	if _, _, err := c.readLine(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if _, err := c.command("l LOGIN " + strconv.Quote(user) + " " + strconv.Quote(password)); err != nil {
		nc.Close()
		return nil, err
	}
	tc.SetDeadline(time.Time{})
	return c, nil
}

// Idle selects INBOX and enters IDLE (RFC 2177), where the session stays.
func (c *IMAPSession) Idle() error {
	if _, err := c.command("s SELECT INBOX"); err != nil {
		return err
	}
	if _, err := io.WriteString(c.nc, "i IDLE\r\n"); err != nil {
		return err
	}
	line, _, err := c.readLine()
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("+")) {
		return fmt.Errorf("IDLE: %q", line)
	}
	return nil
}

// Close hangs up.
func (c *IMAPSession) Close() error { return c.nc.Close() }

type commandStats struct {
	untagged     int64 // "* n FETCH" responses
	literalBytes int64
}

// command sends one tagged command and reads up to its tagged OK.
func (c *IMAPSession) command(cmd string) (commandStats, error) {
	var st commandStats
	tag, _, _ := bytes.Cut([]byte(cmd), []byte(" "))
	if _, err := io.WriteString(c.nc, cmd+"\r\n"); err != nil {
		return st, err
	}
	for {
		line, lit, err := c.readLine()
		if err != nil {
			return st, err
		}
		st.literalBytes += lit
		if bytes.HasPrefix(line, tag) && len(line) > len(tag) && line[len(tag)] == ' ' {
			if !bytes.HasPrefix(line[len(tag)+1:], []byte("OK")) {
				return st, fmt.Errorf("IMAP %s: %q", bytes.SplitN([]byte(cmd), []byte(" "), 3)[1], line)
			}
			return st, nil
		}
		if bytes.HasPrefix(line, []byte("* ")) && bytes.Contains(line, []byte(" FETCH ")) {
			st.untagged++
		}
	}
}

// readLine reads one response line, skipping over the literals in it; it
// returns the line's first part (up to its first literal) and how many
// literal bytes it skipped.
func (c *IMAPSession) readLine() ([]byte, int64, error) {
	var head []byte
	var lit int64
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return nil, 0, err
		}
		if head == nil {
			head = append([]byte(nil), line...)
		}
		// A literal announcement ends the line: "{123}\r\n" (or {123+}).
		trimmed := bytes.TrimRight(line, "\r\n")
		if len(trimmed) == 0 || trimmed[len(trimmed)-1] != '}' {
			return head, lit, nil
		}
		open := bytes.LastIndexByte(trimmed, '{')
		if open < 0 {
			return head, lit, nil
		}
		n, err := strconv.ParseInt(string(bytes.TrimSuffix(trimmed[open+1:len(trimmed)-1], []byte("+"))), 10, 64)
		if err != nil {
			return head, lit, nil
		}
		if _, err := c.r.Discard(int(n)); err != nil {
			return nil, 0, err
		}
		lit += n
	}
}
