package queue

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
)

const sendLogFile = "sending.log"

// maxSendLog is the size at which the send log is rewritten with only what
// is still open.
const maxSendLog = 1 << 20

// sendLog records which recipients of which message are between the end of
// the data and the recorded reply, and which replies were 2xx before they
// are committed to the index. Each record is one write(2) with O_APPEND,
// which the kernel keeps when the process is killed; none is fsynced,
// because a power loss costs at most a second copy, which the durable
// index cannot rule out either.
type sendLog struct {
	path string

	mu   sync.Mutex
	f    *os.File
	size int64
	open map[string][]string // id -> recipients in the window
	// replied holds the recipients a peer accepted whose state is not
	// committed yet: a rewrite must keep saying so.
	replied map[string][]string
}

type sendRecord struct {
	ID         string   `json:"id"`
	Recipients []string `json:"rcpts"`
	// End is set on the record Replied writes; Delivered are the
	// recipients whose reply was 2xx.
	End       bool     `json:"end,omitempty"`
	Delivered []string `json:"delivered,omitempty"`
}

// sendState is what a send log says about the messages of the process
// that wrote it.
type sendState struct {
	inWindow  map[string][]string // begun, no reply recorded
	delivered map[string][]string // accepted by the peer
}

// openSendLog reads what the last process left in the log.
func openSendLog(path string) (*sendLog, sendState, error) {
	st := sendState{inWindow: map[string][]string{}, delivered: map[string][]string{}}
	if f, err := os.Open(path); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var r sendRecord
			if json.Unmarshal(sc.Bytes(), &r) != nil || !validID(r.ID) {
				continue
			}
			if r.End {
				st.inWindow[r.ID] = slices.DeleteFunc(st.inWindow[r.ID], func(a string) bool { return slices.Contains(r.Recipients, a) })
				st.delivered[r.ID] = append(st.delivered[r.ID], r.Delivered...)
			} else {
				st.inWindow[r.ID] = append(st.inWindow[r.ID], r.Recipients...)
			}
		}
		f.Close()
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, st, fmt.Errorf("reading send log: %w", err)
	}
	return &sendLog{path: path, open: map[string][]string{}, replied: map[string][]string{}}, st, nil
}

// reset starts an empty log, once recovery has recorded what the old one
// said.
func (l *sendLog) reset() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening send log: %w", err)
	}
	l.f = f
	return nil
}

func (l *sendLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// BeginSend records that the end of the data of message id is about to be
// sent for rcpts. Call Replied as soon as the reply is read.
func (q *Queue) BeginSend(id string, rcpts []string) error {
	l := q.sending
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.append(sendRecord{ID: id, Recipients: rcpts}); err != nil {
		return err
	}
	l.open[id] = append(l.open[id], rcpts...)
	return nil
}

// Replied records the reply to what BeginSend opened, before anything
// else happens: delivered are the recipients the peer accepted. Should the
// process die before their state is committed, Open marks them delivered
// from this record rather than sending them again. Call Recorded once the
// state is committed.
func (q *Queue) Replied(id string, rcpts, delivered []string) error {
	l := q.sending
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open[id] = slices.DeleteFunc(l.open[id], func(r string) bool { return slices.Contains(rcpts, r) })
	if len(l.open[id]) == 0 {
		delete(l.open, id)
	}
	if len(delivered) > 0 {
		l.replied[id] = append(l.replied[id], delivered...)
	}
	return l.append(sendRecord{ID: id, Recipients: rcpts, End: true, Delivered: delivered})
}

// Recorded forgets what Replied kept once the results are committed.
func (q *Queue) Recorded(id string, delivered []string) {
	l := q.sending
	l.mu.Lock()
	defer l.mu.Unlock()
	l.replied[id] = slices.DeleteFunc(l.replied[id], func(r string) bool { return slices.Contains(delivered, r) })
	if len(l.replied[id]) == 0 {
		delete(l.replied, id)
	}
}

// append writes one record; called with l.mu held.
func (l *sendLog) append(r sendRecord) error {
	if l.f == nil {
		return ErrClosed
	}
	if l.size > maxSendLog {
		if err := l.rewrite(); err != nil {
			return err
		}
	}
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	n, err := l.f.Write(append(line, '\n'))
	l.size += int64(n)
	if err != nil {
		return fmt.Errorf("writing send log: %w", err)
	}
	return nil
}

// rewrite replaces the log with the sends still open and the replies not
// yet committed; called with l.mu held.
func (l *sendLog) rewrite() error {
	tmp := l.path + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("rewriting send log: %w", err)
	}
	w := bufio.NewWriter(f)
	for id, rcpts := range l.open {
		line, _ := json.Marshal(sendRecord{ID: id, Recipients: rcpts})
		w.Write(append(line, '\n'))
	}
	for id, rcpts := range l.replied {
		line, _ := json.Marshal(sendRecord{ID: id, Recipients: rcpts, End: true, Delivered: rcpts})
		w.Write(append(line, '\n'))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("rewriting send log: %w", err)
	}
	if err := os.Rename(tmp, l.path); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("rewriting send log: %w", err)
	}
	l.f.Close()
	l.f = f
	st, _ := f.Stat()
	l.size = st.Size()
	return nil
}
