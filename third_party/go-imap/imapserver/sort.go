package imapserver

import (
	"strconv"
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
	// SORT=DISPLAY (RFC 5957): the display name, else the address.
	SortKeyDisplayFrom SortKey = "DISPLAYFROM"
	SortKeyDisplayTo   SortKey = "DISPLAYTO"
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

func (c *Conn) handleSort(tag string, dec *imapwire.Decoder, numKind NumKind) error {
	var (
		sortCriteria []SortCriterion
		options      imap.SearchOptions
		extended     bool
		atom         string
	)
	if !dec.ExpectSP() {
		return dec.Err()
	}
	// ESORT (RFC 5267 3): SORT RETURN (...) answers with ESEARCH.
	if dec.Atom(&atom) {
		if !strings.EqualFold(atom, "RETURN") || !c.server.options.caps().Has(imap.CapESort) {
			return newClientBugError("expected sort criteria")
		}
		if err := readSearchReturnOpts(dec, &options, nil); err != nil {
			return err
		}
		if !dec.ExpectSP() {
			return dec.Err()
		}
		extended = true
		if !options.ReturnMin && !options.ReturnMax && !options.ReturnAll && !options.ReturnCount {
			options.ReturnAll = true
		}
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
		case SortKeyDisplayFrom, SortKeyDisplayTo:
			if !c.server.options.caps().Has(imap.CapSortDisplay) {
				return newClientBugError("unknown SORT key")
			}
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
	if extended {
		return c.writeESort(tag, nums, &options, numKind)
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("SORT")
	for _, n := range nums {
		enc.SP().Number(n)
	}
	return enc.CRLF()
}

// writeESort answers SORT RETURN with ESEARCH (RFC 5267 3.2): MIN and MAX
// are the first and last in sort order, ALL keeps the sort order.
func (c *Conn) writeESort(tag string, nums []uint32, options *imap.SearchOptions, numKind NumKind) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("ESEARCH").SP().Special('(').Atom("TAG").SP().String(tag).Special(')')
	if numKind == NumKindUID {
		enc.SP().Atom("UID")
	}
	if len(nums) > 0 {
		if options.ReturnMin {
			enc.SP().Atom("MIN").SP().Number(nums[0])
		}
		if options.ReturnMax {
			enc.SP().Atom("MAX").SP().Number(nums[len(nums)-1])
		}
	}
	if options.ReturnCount {
		enc.SP().Atom("COUNT").SP().Number(uint32(len(nums)))
	}
	if options.ReturnAll && len(nums) > 0 {
		enc.SP().Atom("ALL").SP().Atom(orderedSet(nums))
	}
	return enc.CRLF()
}

// orderedSet writes numbers in their order, ascending runs as ranges.
func orderedSet(nums []uint32) string {
	var b strings.Builder
	for i := 0; i < len(nums); {
		j := i
		for j+1 < len(nums) && nums[j+1] == nums[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(nums[i]), 10))
		if j > i {
			b.WriteByte(':')
			b.WriteString(strconv.FormatUint(uint64(nums[j]), 10))
		}
		i = j + 1
	}
	return b.String()
}
