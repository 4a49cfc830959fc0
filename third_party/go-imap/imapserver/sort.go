package imapserver

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailstack/terraform-provider-mailstack/third_party/go-imap/internal/imapwire"
)

// SortKey is a SORT criterion's key (RFC 5256 3).
type SortKey string

// Sort keys.
const (
	SortKeyArrival SortKey = "ARRIVAL"
	SortKeyCc      SortKey = "CC"
	SortKeyDate    SortKey = "DATE"
	SortKeyFrom    SortKey = "FROM"
	SortKeySize    SortKey = "SIZE"
	SortKeySubject SortKey = "SUBJECT"
	SortKeyTo      SortKey = "TO"
)

// SortCriterion is one key of a SORT, reversed or not.
type SortCriterion struct {
	Key     SortKey
	Reverse bool
}

// SessionSort is a session that supports SORT (RFC 5256). Sort returns the
// numbers (sequence numbers or UIDs, by kind) of the messages matching
// criteria, ordered by sortCriteria, ties by sequence number.
type SessionSort interface {
	Session
	Sort(kind NumKind, sortCriteria []SortCriterion, criteria *imap.SearchCriteria) ([]uint32, error)
}

func (c *Conn) handleSort(dec *imapwire.Decoder, numKind NumKind) error {
	var sortCriteria []SortCriterion
	if !dec.ExpectSP() {
		return dec.Err()
	}
	err := dec.ExpectList(func() error {
		var name string
		if !dec.ExpectAtom(&name) {
			return dec.Err()
		}
		var crit SortCriterion
		if strings.EqualFold(name, "REVERSE") {
			crit.Reverse = true
			if !dec.ExpectSP() || !dec.ExpectAtom(&name) {
				return dec.Err()
			}
		}
		switch key := SortKey(strings.ToUpper(name)); key {
		case SortKeyArrival, SortKeyCc, SortKeyDate, SortKeyFrom, SortKeySize, SortKeySubject, SortKeyTo:
			crit.Key = key
		default:
			return newClientBugError("unknown SORT key")
		}
		sortCriteria = append(sortCriteria, crit)
		return nil
	})
	if err != nil {
		return err
	}
	if len(sortCriteria) == 0 {
		return newClientBugError("SORT needs at least one key")
	}
	var charset string
	if !dec.ExpectSP() || !dec.ExpectAString(&charset) || !dec.ExpectSP() {
		return dec.Err()
	}
	if err := checkSearchCharset(charset); err != nil {
		return err
	}
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
	sess, ok := c.session.(SessionSort)
	if !ok || !c.server.options.caps().Has(imap.CapSort) {
		return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "SORT is not supported"}
	}
	nums, err := sess.Sort(numKind, sortCriteria, &criteria)
	if err != nil {
		return err
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("SORT")
	for _, n := range nums {
		enc.SP().Number(n)
	}
	return enc.CRLF()
}
