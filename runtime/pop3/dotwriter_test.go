package pop3

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// dotStuff is the straightforward reference for dotWriter: byte by byte,
// bare LF to CRLF, "." doubled at line starts, last line terminated, then
// the termination line.
func dotStuff(p []byte) string {
	var b strings.Builder
	bol, prev := true, byte(0)
	for _, c := range p {
		if bol && c == '.' {
			b.WriteByte('.')
		}
		if c == '\n' && prev != '\r' {
			b.WriteByte('\r')
		}
		b.WriteByte(c)
		bol, prev = c == '\n', c
	}
	switch {
	case prev == '\r':
		b.WriteString("\n")
	case !bol:
		b.WriteString("\r\n")
	}
	return b.String() + ".\r\n"
}

// stuffInChunks runs dotWriter over p written in pieces of size n.
func stuffInChunks(t testing.TB, p []byte, n int) string {
	var out bytes.Buffer
	bw := bufio.NewWriterSize(&out, 16)
	dw := newDotWriter(bw)
	for len(p) > 0 {
		k := min(n, len(p))
		if w, err := dw.Write(p[:k]); w != k || err != nil {
			t.Fatalf("Write = %d, %v", w, err)
		}
		p = p[k:]
	}
	if err := dw.Close(); err != nil {
		t.Fatal(err)
	}
	bw.Flush()
	return out.String()
}

// RFC 1939 section 3: multi-line responses are byte-stuffed and end with
// ".", and every line ends with CRLF.
func TestDotWriter(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"empty", "", ".\r\n"},
		{"one line", "a\r\n", "a\r\n.\r\n"},
		{"unterminated", "a", "a\r\n.\r\n"},
		{"trailing CR", "a\r", "a\r\n.\r\n"},
		{"leading dot", ".a\r\n", "..a\r\n.\r\n"},
		{"dot line", "a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"},
		{"dot at end", "a\r\n.", "a\r\n..\r\n.\r\n"},
		{"dots inside lines", "a.b\r\n x.\r\n", "a.b\r\n x.\r\n.\r\n"},
		{"bare LF", "a\nb\n", "a\r\nb\r\n.\r\n"},
		{"bare LF before dot", "a\n.\n", "a\r\n..\r\n.\r\n"},
		{"bare CR stays", "a\rb\r\n", "a\rb\r\n.\r\n"},
		{"blank lines", "\r\n\r\n", "\r\n\r\n.\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if ref := dotStuff([]byte(tc.in)); ref != tc.want {
				t.Fatalf("reference gives %q, want %q", ref, tc.want)
			}
			for _, n := range []int{1, 2, 3, 1 << 20} {
				if got := stuffInChunks(t, []byte(tc.in), n); got != tc.want {
					t.Errorf("in chunks of %d: %q, want %q", n, got, tc.want)
				}
			}
		})
	}
}

// RFC 1939 section 7 TOP: header, blank line, then n body lines.
func TestCopyTop(t *testing.T) {
	msg := "A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\nl3\r\n"
	cases := []struct {
		name string
		msg  string
		n    int
		want string
	}{
		{"no body lines", msg, 0, "A: 1\r\nB: 2\r\n\r\n"},
		{"two body lines", msg, 2, "A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n"},
		{"more than there are", msg, 10, msg},
		{"no blank line", "A: 1\r\nB: 2\r\n", 1, "A: 1\r\nB: 2\r\n"},
		{"bare LF", "A: 1\n\nl1\nl2\n", 1, "A: 1\n\nl1\n"},
		{"line longer than the buffer", "A: 1\r\n\r\n" + strings.Repeat("x", 5000) + "\r\nl2\r\n", 1, "A: 1\r\n\r\n" + strings.Repeat("x", 5000) + "\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := copyTop(&out, strings.NewReader(tc.msg), tc.n); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("got %q, want %q", out.String(), tc.want)
			}
		})
	}
}

func FuzzDotWriter(f *testing.F) {
	for _, seed := range []string{"", ".", "a\r\n.\r\n", "\n.\n", "\r", "..\r\n...", "a\rb\n"} {
		f.Add([]byte(seed), uint8(1))
	}
	f.Fuzz(func(t *testing.T, p []byte, chunk uint8) {
		got := stuffInChunks(t, p, int(chunk)+1)
		if want := dotStuff(p); got != want {
			t.Fatalf("dotWriter(%q) = %q, want %q", p, got, want)
		}
		// The client must see the termination line exactly once, at the end,
		// and no line ending other than CRLF.
		if i := strings.Index("\r\n"+got, "\r\n.\r\n"); i != len(got)-3 {
			t.Fatalf("dotWriter(%q) = %q ends early", p, got)
		}
		if strings.Count(got, "\n") != strings.Count(got, "\r\n") {
			t.Fatalf("dotWriter(%q) = %q has a bare LF", p, got)
		}
	})
}
