package postfixtest

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCounter: only what the log gains after NewCounter counts, and a
// line counts once it is complete, however the writes split it.
func TestCounter(t *testing.T) {
	log := filepath.Join(t.TempDir(), "postfix.log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	write := func(s string) {
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	write("a: status=sent (old)\n")
	c := (&Instance{log: log}).NewCounter("status=sent")
	for _, step := range []struct {
		write string
		want  int
	}{
		{"", 0},
		{"b: status=sent (new)\nc: status=def", 1},
		{"erred\nd: status=se", 1},
		{"nt (split)\n", 2},
		{"e: status=sent\nf: status=sent\n", 4},
	} {
		write(step.write)
		if got := c.Count(); got != step.want {
			t.Fatalf("after writing %q: %d, want %d", step.write, got, step.want)
		}
	}
}
