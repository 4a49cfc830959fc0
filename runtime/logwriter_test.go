package runtime_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime"
)

// countingWriter records what reaches it and in how many writes.
type countingWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.buf.Write(p)
}

func (w *countingWriter) state() (string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String(), w.writes
}

// Info lines from many goroutines arrive whole, in few writes, within the
// flush interval; a warning takes everything before it out at once; Close
// leaves nothing behind and later lines go straight through.
func TestLogWriter(t *testing.T) {
	w := &countingWriter{}
	lw := runtime.NewLogWriter(w)
	log := slog.New(lw.Handler(slog.NewJSONHandler(lw, nil))).With("session", "abc")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				log.Info("session closed", "g", g, "i", i)
			}
		})
	}
	wg.Wait()
	testutil.Eventually(t, "800 lines written", func() bool {
		out, _ := w.state()
		return strings.Count(out, "\n") == 800
	})
	out, writes := w.state()
	if writes > 20 {
		t.Errorf("800 lines took %d writes", writes)
	}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if !strings.HasPrefix(line, `{"time":`) || !strings.HasSuffix(line, "}") || !strings.Contains(line, `"session":"abc"`) {
			t.Fatalf("a line was cut or mixed: %q", line)
		}
	}

	log.Info("before the warning")
	log.Warn("a warning")
	if out, _ := w.state(); !strings.Contains(out, "before the warning") || !strings.Contains(out, "a warning") {
		t.Errorf("a warning did not flush at once:\n%s", out)
	}
	log.Info("last")
	lw.Close()
	if out, _ := w.state(); !strings.Contains(out, `"msg":"last"`) {
		t.Errorf("Close did not write what was buffered")
	}
	log.Info("after close")
	if out, _ := w.state(); !strings.Contains(out, "after close") {
		t.Errorf("a line after Close was held back")
	}
}
