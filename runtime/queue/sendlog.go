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

// maxSendLog is the size at which the send log is rewritten with only the
// sends still open.
const maxSendLog = 1 << 20

// sendLog records which recipients of which message are between the end of
// the data and the recorded reply. BeginSend and EndSend are one write(2)
// each, with O_APPEND, which the kernel keeps when the process is killed;
// they are not fsynced, because after a power loss the message is sent
// again anyway and the mark is only a warning.
type sendLog struct {
	path string

	mu   sync.Mutex
	f    *os.File
	size int64
	open map[string][]string // id -> recipients in the window
}

type sendRecord struct {
	ID         string   `json:"id"`
	Recipients []string `json:"rcpts"`
	// End is set on the record EndSend writes.
	End bool `json:"end,omitempty"`
}

// openSendLog reads what the last process left in the log: every message
// id with the recipients it was sending to.
func openSendLog(path string) (*sendLog, map[string][]string, error) {
	inWindow := map[string][]string{}
	if f, err := os.Open(path); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var r sendRecord
			if json.Unmarshal(sc.Bytes(), &r) != nil || !validID(r.ID) {
				continue
			}
			if r.End {
				inWindow[r.ID] = slices.DeleteFunc(inWindow[r.ID], func(a string) bool { return slices.Contains(r.Recipients, a) })
			} else {
				inWindow[r.ID] = append(inWindow[r.ID], r.Recipients...)
			}
		}
		f.Close()
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("reading send log: %w", err)
	}
	return &sendLog{path: path, open: map[string][]string{}}, inWindow, nil
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
// sent for rcpts. Call EndSend once the reply is recorded.
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

// EndSend closes what BeginSend opened, once the reply is recorded.
func (q *Queue) EndSend(id string, rcpts []string) error {
	l := q.sending
	l.mu.Lock()
	defer l.mu.Unlock()
	left := slices.DeleteFunc(l.open[id], func(r string) bool { return slices.Contains(rcpts, r) })
	if len(left) == 0 {
		delete(l.open, id)
	} else {
		l.open[id] = left
	}
	return l.append(sendRecord{ID: id, Recipients: rcpts, End: true})
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

// rewrite replaces the log with the sends still open; called with l.mu held.
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
