package imapserver

import (
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailstack/terraform-provider-mailstack/third_party/go-imap/internal/imapwire"
)

// CONTEXT=SEARCH (RFC 5267 4): SEARCH RETURN (PARTIAL m:n) answers a
// window of the result, RETURN (UPDATE) keeps the result up to date with
// ESEARCH ADDTO and REMOVEFROM until CANCELUPDATE.

// CapContextSearch is CONTEXT=SEARCH's capability.
const CapContextSearch imap.Cap = "CONTEXT=SEARCH"

// searchContext is what RETURN asked for beyond imap.SearchOptions.
type searchContext struct {
	partial [2]uint32 // 1-based positions, low first; 0 when not asked
	update  bool
}

// contextOpts returns ctx when the server advertises CONTEXT=SEARCH and the
// session keeps searches, nil otherwise.
func (c *Conn) contextOpts(ctx *searchContext) *searchContext {
	if _, ok := c.session.(SessionSearchContext); !ok || !c.server.options.caps().Has(CapContextSearch) {
		return nil
	}
	return ctx
}

// readContextReturnOpt reads one of CONTEXT=SEARCH's return options, name
// in upper case, and reports whether it was one.
func readContextReturnOpt(dec *imapwire.Decoder, name string, ctx *searchContext) (bool, error) {
	switch name {
	case "UPDATE":
		ctx.update = true
	case "CONTEXT":
		// A hint that the client will refine the search: nothing to do.
	case "PARTIAL":
		var r string
		if !dec.ExpectSP() || !dec.Expect(dec.Func(&r, func(ch byte) bool { return ch == ':' || ch >= '0' && ch <= '9' }), "partial-range") {
			return true, dec.Err()
		}
		lo, hi, ok := strings.Cut(r, ":")
		a, errA := strconv.ParseUint(lo, 10, 32)
		b, errB := strconv.ParseUint(hi, 10, 32)
		if !ok || errA != nil || errB != nil || a == 0 || b == 0 {
			return true, newClientBugError("PARTIAL wants a range m:n of positions from 1")
		}
		ctx.partial = [2]uint32{uint32(min(a, b)), uint32(max(a, b))}
	default:
		return false, nil
	}
	return true, nil
}

// SessionSearchContext is a session that keeps search results up to date
// (RFC 5267 4.2). SearchUpdate is called after Search for RETURN (UPDATE)
// with its result; from then on, whenever Poll or Idle reports changes,
// the session tells of messages that joined or left the result with
// UpdateWriter.WriteSearchUpdate, until CancelSearchUpdate or until
// another mailbox is selected. An error (NOUPDATE when the session keeps
// too many) refuses the command.
type SessionSearchContext interface {
	Session
	SearchUpdate(tag string, kind NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions, result *imap.SearchData) error
	// CancelSearchUpdate stops the updates of the searches with tags,
	// failing for a tag that has none.
	CancelSearchUpdate(tags []string) error
}

// ErrNoUpdate refuses RETURN (UPDATE) for tag: the session keeps as many
// search contexts as it allows.
func ErrNoUpdate(tag string) error {
	return &imap.Error{
		Type: imap.StatusResponseTypeNo,
		Code: imap.ResponseCode("NOUPDATE " + strconv.Quote(tag)),
		Text: "Too many searches kept up to date; cancel one first",
	}
}

func (c *Conn) handleCancelUpdate(dec *imapwire.Decoder) error {
	var tags []string
	for dec.SP() {
		var tag string
		if !dec.ExpectString(&tag) {
			return dec.Err()
		}
		tags = append(tags, tag)
	}
	if !dec.ExpectCRLF() {
		return dec.Err()
	}
	if len(tags) == 0 {
		return newClientBugError("CANCELUPDATE wants the tags of searches")
	}
	if err := c.checkState(imap.ConnStateSelected); err != nil {
		return err
	}
	sess, ok := c.session.(SessionSearchContext)
	if !ok {
		return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "CANCELUPDATE is not supported"}
	}
	return sess.CancelSearchUpdate(tags)
}

// WriteSearchUpdate writes ESEARCH ADDTO (when add) or REMOVEFROM for the
// search with tag (RFC 5267 4.3): nums, sequence numbers or UIDs as the
// search had them. position is 0, as for SEARCH, whose order is that of
// the messages.
func (w *UpdateWriter) WriteSearchUpdate(tag string, kind NumKind, add bool, nums []uint32) error {
	if len(nums) == 0 {
		return nil
	}
	enc := newResponseEncoder(w.conn)
	defer enc.end()
	enc.Atom("*").SP().Atom("ESEARCH").SP().Special('(').Atom("TAG").SP().String(tag).Special(')')
	if kind == NumKindUID {
		enc.SP().Atom("UID")
	}
	if add {
		enc.SP().Atom("ADDTO")
	} else {
		enc.SP().Atom("REMOVEFROM")
	}
	enc.SP().Special('(').Number(0).SP().NumSet(numSetOf(kind, nums)).Special(')')
	return enc.CRLF()
}

// numSetOf returns nums as a UIDSet or a SeqSet by kind.
func numSetOf(kind NumKind, nums []uint32) imap.NumSet {
	if kind == NumKindUID {
		var set imap.UIDSet
		for _, n := range nums {
			set.AddNum(imap.UID(n))
		}
		return set
	}
	var set imap.SeqSet
	for _, n := range nums {
		set.AddNum(n)
	}
	return set
}

// WriteSearchResult writes an ESEARCH response for the search with tag
// with what its return options ask for, as after MIN, MAX or COUNT of a
// kept search changed.
func (w *UpdateWriter) WriteSearchResult(tag string, kind NumKind, data *imap.SearchData, options *imap.SearchOptions) error {
	return w.conn.writeESearch(tag, data, options, searchContext{}, kind)
}

// writePartial writes PARTIAL (RFC 5267 4.4): the numbers at positions
// r[0] to r[1] of the result, NIL when there are none.
func writePartial(enc *responseEncoder, all imap.NumSet, r [2]uint32, kind NumKind) {
	var nums []uint32
	switch set := all.(type) {
	case imap.SeqSet:
		nums, _ = set.Nums()
	case imap.UIDSet:
		uids, _ := set.Nums()
		for _, u := range uids {
			nums = append(nums, uint32(u))
		}
	}
	enc.SP().Atom("PARTIAL").SP().Special('(').Number(r[0]).Special(':').Number(r[1]).SP()
	if lo, hi := int(r[0])-1, min(int(r[1]), len(nums)); lo < hi {
		enc.NumSet(numSetOf(kind, nums[lo:hi]))
	} else {
		enc.Atom("NIL")
	}
	enc.Special(')')
}
