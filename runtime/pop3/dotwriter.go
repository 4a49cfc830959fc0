package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// dotWriter writes the body of a multi-line response (RFC 1939 section 3):
// a line starting with "." gets another "." in front, a bare LF becomes
// CRLF, and Close ends the response with ".". Runs of bytes that need no
// change go to the buffered writer in one call.
type dotWriter struct {
	w   *bufio.Writer
	bol bool // the next byte starts a line
	cr  bool // the last byte written was CR
}

func newDotWriter(w *bufio.Writer) *dotWriter {
	return &dotWriter{w: w, bol: true}
}

func (d *dotWriter) Write(p []byte) (int, error) {
	start := 0 // p[start:i] is written lazily
	for i := 0; i < len(p); {
		if d.bol && p[i] == '.' {
			d.w.Write(p[start:i])
			d.w.WriteByte('.')
			start = i
		}
		d.bol = false
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			d.cr = p[len(p)-1] == '\r'
			break
		}
		j += i
		if (j > 0 && p[j-1] != '\r') || (j == 0 && !d.cr) {
			d.w.Write(p[start:j])
			d.w.WriteByte('\r')
			start = j
		}
		d.bol, d.cr = true, false
		i = j + 1
	}
	if _, err := d.w.Write(p[start:]); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close terminates the last line if the content did not, and writes the
// termination octet.
func (d *dotWriter) Close() error {
	switch {
	case d.cr:
		d.w.WriteString("\n")
	case !d.bol:
		d.w.WriteString("\r\n")
	}
	_, err := d.w.WriteString(".\r\n")
	return err
}

// copyTop copies the header of a message, the blank line after it and the
// first n lines of its body from r to w (TOP, RFC 1939 section 7). A message
// without a blank line is all header.
func copyTop(w io.Writer, r io.Reader, n int) error {
	br := bufio.NewReader(r)
	inHeader, bol := true, true
	for inHeader || n > 0 {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			if _, werr := w.Write(chunk); werr != nil {
				return werr
			}
			eol := chunk[len(chunk)-1] == '\n'
			switch {
			case !eol:
			case !inHeader:
				n--
			case bol && (len(chunk) == 1 || string(chunk) == "\r\n"):
				inHeader = false
			}
			bol = eol
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return nil
		default:
			return err
		}
	}
	return nil
}
