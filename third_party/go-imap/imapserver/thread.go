package imapserver

import (
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailstack/terraform-provider-mailstack/third_party/go-imap/internal/imapwire"
)

// ThreadNode is a message in a THREAD response (RFC 5256 4) with its
// replies. Num 0 is a message that is not in the mailbox but whose replies
// are (a dummy).
type ThreadNode struct {
	Num      uint32
	Children []ThreadNode
}

// SessionThread is a session that supports THREAD (RFC 5256) with the
// algorithms Options.Caps names as THREAD=<algorithm>.
type SessionThread interface {
	Session
	Thread(kind NumKind, algorithm imap.ThreadAlgorithm, criteria *imap.SearchCriteria) ([]ThreadNode, error)
}

func (c *Conn) handleThread(dec *imapwire.Decoder, numKind NumKind) error {
	var algo, charset string
	if !dec.ExpectSP() || !dec.ExpectAtom(&algo) || !dec.ExpectSP() || !dec.ExpectAString(&charset) || !dec.ExpectSP() {
		return dec.Err()
	}
	algorithm := imap.ThreadAlgorithm(strings.ToUpper(algo))
	var criteria imap.SearchCriteria
	for {
		if err := readSearchKey(&criteria, dec); err != nil {
			return err
		}
		if !dec.SP() {
			break
		}
	}
	if !dec.ExpectCRLF() {
		return dec.Err()
	}
	if err := c.checkState(imap.ConnStateSelected); err != nil {
		return err
	}
	sess, ok := c.session.(SessionThread)
	if !ok || !c.server.options.caps().Has(imap.Cap("THREAD="+string(algorithm))) {
		return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Unsupported THREAD algorithm"}
	}
	if err := checkSearchCharset(charset); err != nil {
		return err
	}
	threads, err := sess.Thread(numKind, algorithm, &criteria)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, t := range threads {
		b.WriteByte('(')
		writeThreadBranch(&b, t)
		b.WriteByte(')')
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("THREAD")
	if b.Len() > 0 {
		enc.SP().Atom(b.String())
	}
	return enc.CRLF()
}

// writeThreadBranch writes a node and its replies: one reply follows after
// a space, several each in parentheses (RFC 5256 4).
func writeThreadBranch(b *strings.Builder, n ThreadNode) {
	if n.Num != 0 {
		b.WriteString(strconv.FormatUint(uint64(n.Num), 10))
	}
	switch len(n.Children) {
	case 0:
	case 1:
		if n.Num != 0 {
			b.WriteByte(' ')
		}
		writeThreadBranch(b, n.Children[0])
	default:
		if n.Num != 0 {
			b.WriteByte(' ')
		}
		for _, c := range n.Children {
			b.WriteByte('(')
			writeThreadBranch(b, c)
			b.WriteByte(')')
		}
	}
}
