package runtime

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// LogWriter batches the runtime's log lines into few writes: a busy
// listener logs a line per connection, and written one by one each line
// costs a write system call - about as much server CPU as the rest of a
// connection's bookkeeping, a few per cent of an ECDSA handshake
// (docs/benchmarks.md). Lines are written within FlushInterval of being
// logged, at once when the buffer holds logBufferLimit bytes, when a
// Handler of it logs a warning or an error, and at Close, in the order
// they came. Only a process killed outright loses what it buffered then,
// at most FlushInterval's worth of lines.
type LogWriter struct {
	mu      sync.Mutex
	w       io.Writer
	buf     []byte
	pending *time.Timer // armed while buf holds lines
	closed  bool
	err     error // the first write error, returned by Flush and Close
}

// FlushInterval is how long a log line waits in a LogWriter at most.
const FlushInterval = 100 * time.Millisecond

// logBufferLimit makes a LogWriter write at once.
const logBufferLimit = 64 << 10

// NewLogWriter batches writes to w.
func NewLogWriter(w io.Writer) *LogWriter {
	return &LogWriter{w: w}
}

// Write buffers p, which slog's handlers pass as one whole line.
func (l *LogWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if l.closed || len(l.buf) >= logBufferLimit {
		l.flushLocked()
	} else if l.pending == nil {
		l.pending = time.AfterFunc(FlushInterval, func() { l.Flush() })
	}
	return len(p), nil
}

// Flush writes what is buffered now.
func (l *LogWriter) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
	return l.err
}

func (l *LogWriter) flushLocked() {
	if l.pending != nil {
		l.pending.Stop()
		l.pending = nil
	}
	if len(l.buf) == 0 {
		return
	}
	if _, err := l.w.Write(l.buf); err != nil && l.err == nil {
		l.err = err
	}
	if cap(l.buf) > 4*logBufferLimit {
		l.buf = nil // do not keep a burst's buffer for good
	} else {
		l.buf = l.buf[:0]
	}
}

// Close writes what is buffered; later lines are written at once.
func (l *LogWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
	l.closed = true
	return l.err
}

// Handler returns h, which writes to l, flushing l after every record at
// Warn or above, so that problems reach the log without delay.
func (l *LogWriter) Handler(h slog.Handler) slog.Handler { return flushingHandler{h, l} }

type flushingHandler struct {
	slog.Handler
	lw *LogWriter
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.lw.Flush()
	}
	return err
}

func (h flushingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushingHandler{h.Handler.WithAttrs(attrs), h.lw}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{h.Handler.WithGroup(name), h.lw}
}
