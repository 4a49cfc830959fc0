package imapwire

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

func newTestDecoder(s string, side ConnSide) *Decoder {
	return NewDecoder(bufio.NewReader(strings.NewReader(s)), side)
}

// TestQuotedEndsAtLineEnd: on the server side a CR or LF in a quoted string
// (RFC 9051 and RFC 3501 allow neither) is a syntax error, and DiscardLine
// then leaves the decoder at the start of the next line, where the client's
// next command begins.
func TestQuotedEndsAtLineEnd(t *testing.T) {
	for name, in := range map[string]string{
		"CRLF":         "\"alice\r\nNEXT\r\n",
		"LF":           "\"alice\nNEXT\r\n",
		"lone CR":      "\"al\rice\" x\r\nNEXT\r\n",
		"escaped CR":   "\"alice\\\r\nNEXT\r\n",
		"escaped LF":   "\"alice\\\nNEXT\r\n",
		"empty, CRLF":  "\"\r\nNEXT\r\n",
		"lone CR, end": "\"al\rice\r\nNEXT\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			dec := newTestDecoder(in, ConnSideServer)
			var s string
			if dec.Quoted(&s) {
				t.Fatalf("Quoted(%q) = true, %q; want a syntax error", in, s)
			}
			var expectErr *DecoderExpectError
			if !errors.As(dec.Err(), &expectErr) {
				t.Fatalf("Quoted(%q): error %v, want a DecoderExpectError (a BAD)", in, dec.Err())
			}
			dec.DiscardLine()
			var next string
			if !dec.Atom(&next) || next != "NEXT" {
				t.Fatalf("after DiscardLine on %q: atom %q, want NEXT", in, next)
			}
		})
	}
}

// TestQuotedStillDecodes: what the fix must not break. Quoted strings with
// escapes decode on the server side, a literal's data holds CRLF and quotes,
// and the client side still takes a quoted string with CRLF from a server
// that sends one.
func TestQuotedStillDecodes(t *testing.T) {
	for _, tc := range []struct {
		name string
		side ConnSide
		in   string
		want string
	}{
		{"escapes", ConnSideServer, `"a\"b\\c" END `, `a"b\c`},
		{"empty", ConnSideServer, `"" END `, ``},
		{"client side, CRLF", ConnSideClient, "\"a\r\nb\" END ", "a\r\nb"},
		{"literal with CRLF and a quote", ConnSideServer, "{7}\r\n\"a\r\nb\r\n END ", "\"a\r\nb\r\n"},
		{"non-synchronizing literal", ConnSideServer, "{4+}\r\n\r\n\r\n END ", "\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dec := newTestDecoder(tc.in, tc.side)
			var s string
			if !dec.String(&s) || s != tc.want {
				t.Fatalf("String(%q) = %q (error %v), want %q", tc.in, s, dec.Err(), tc.want)
			}
			var next string
			if !dec.ExpectSP() || !dec.ExpectAtom(&next) || next != "END" {
				t.Fatalf("after String(%q): atom %q (error %v), want END", tc.in, next, dec.Err())
			}
		})
	}
}

// TestDiscardLineLoneCR: a lone CR ends no line, so DiscardLine reads past
// it to the LF.
func TestDiscardLineLoneCR(t *testing.T) {
	dec := newTestDecoder("junk\rmore junk\r\nNEXT\r\n", ConnSideServer)
	dec.DiscardLine()
	var next string
	if !dec.Atom(&next) || next != "NEXT" {
		t.Fatalf("after DiscardLine: atom %q (error %v), want NEXT", next, dec.Err())
	}
}
