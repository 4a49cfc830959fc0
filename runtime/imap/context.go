package imap

import (
	"slices"

	"github.com/emersion/go-imap/v2"

	"github.com/mailstack/terraform-provider-mailstack/third_party/go-imap/imapserver"
)

// maxSearchContexts bounds the searches one session keeps up to date:
// each is re-run after every change to the mailbox.
const maxSearchContexts = 8

// searchContext is a search the session keeps up to date (CONTEXT=SEARCH,
// RFC 5267 4) until CANCELUPDATE or another mailbox is selected.
type searchContext struct {
	tag      string
	kind     imapserver.NumKind
	criteria *imap.SearchCriteria
	options  imap.SearchOptions
	uids     []uint32 // the result as the client knows it, ascending
	modSeq   uint64   // the mailbox's when the result was last compared
}

var _ imapserver.SessionSearchContext = (*session)(nil)

// SearchUpdate keeps the result of the search with tag up to date.
func (s *session) SearchUpdate(tag string, kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions, result *imap.SearchData) error {
	sel := s.sel
	sel.contexts = slices.DeleteFunc(sel.contexts, func(c *searchContext) bool { return c.tag == tag })
	if len(sel.contexts) >= maxSearchContexts {
		return imapserver.ErrNoUpdate(tag)
	}
	ctx := &searchContext{tag: tag, kind: kind, criteria: criteria, options: *options, modSeq: sel.modSeq}
	switch all := result.All.(type) {
	case imap.UIDSet:
		nums, _ := all.Nums()
		for _, n := range nums {
			ctx.uids = append(ctx.uids, uint32(n))
		}
	case imap.SeqSet:
		nums, _ := all.Nums()
		for _, n := range nums {
			ctx.uids = append(ctx.uids, sel.msgs[n-1].uid)
		}
	}
	sel.contexts = append(sel.contexts, ctx)
	return nil
}

// CancelSearchUpdate implements CANCELUPDATE (RFC 5267 4.3).
func (s *session) CancelSearchUpdate(tags []string) error {
	sel := s.sel
	for _, tag := range tags {
		if !slices.ContainsFunc(sel.contexts, func(c *searchContext) bool { return c.tag == tag }) {
			return &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "No search with tag " + tag + " is kept up to date"}
		}
	}
	sel.contexts = slices.DeleteFunc(sel.contexts, func(c *searchContext) bool { return slices.Contains(tags, c.tag) })
	return nil
}

// dropExpunged tells each kept search that its messages about to be
// expunged left the result, by the sequence numbers they still have.
func (sel *selected) dropExpunged(w *imapserver.UpdateWriter) error {
	for _, ctx := range sel.contexts {
		var gone []uint32
		ctx.uids = slices.DeleteFunc(ctx.uids, func(uid uint32) bool {
			i := sel.indexOf(uid)
			if i >= 0 && sel.msgs[i].gone {
				gone = append(gone, sel.number(ctx.kind, i))
				return true
			}
			return false
		})
		if err := w.WriteSearchUpdate(ctx.tag, ctx.kind, false, gone); err != nil {
			return err
		}
	}
	return nil
}

// updateSearches runs each kept search again if the mailbox changed since
// and writes what left its result (REMOVEFROM), what joined it (ADDTO),
// and MIN, MAX and COUNT when they were asked for and changed.
func (s *session) updateSearches(w *imapserver.UpdateWriter) error {
	sel := s.sel
	for _, ctx := range sel.contexts {
		if ctx.modSeq == sel.modSeq {
			continue
		}
		var now []uint32
		if err := s.matching(ctx.criteria, func(c *candidate) error {
			now = append(now, c.info.UID)
			return nil
		}); err != nil {
			return err
		}
		var removed, added []uint32
		for _, uid := range ctx.uids {
			if _, ok := slices.BinarySearch(now, uid); !ok {
				if i := sel.indexOf(uid); i >= 0 {
					removed = append(removed, sel.number(ctx.kind, i))
				}
			}
		}
		for _, uid := range now {
			if _, ok := slices.BinarySearch(ctx.uids, uid); !ok {
				added = append(added, sel.number(ctx.kind, sel.indexOf(uid)))
			}
		}
		ctx.uids, ctx.modSeq = now, sel.modSeq
		if len(removed) == 0 && len(added) == 0 {
			continue
		}
		if err := w.WriteSearchUpdate(ctx.tag, ctx.kind, false, removed); err != nil {
			return err
		}
		if err := w.WriteSearchUpdate(ctx.tag, ctx.kind, true, added); err != nil {
			return err
		}
		if o := ctx.options; o.ReturnMin || o.ReturnMax || o.ReturnCount {
			data := &imap.SearchData{Count: uint32(len(now))}
			if len(now) > 0 {
				data.Min = sel.number(ctx.kind, sel.indexOf(now[0]))
				data.Max = sel.number(ctx.kind, sel.indexOf(now[len(now)-1]))
			}
			o.ReturnAll = false
			if err := w.WriteSearchResult(ctx.tag, ctx.kind, data, &o); err != nil {
				return err
			}
		}
	}
	return nil
}

// number is the sequence number or the UID of view index i, by kind.
func (sel *selected) number(kind imapserver.NumKind, i int) uint32 {
	if kind == imapserver.NumKindUID {
		return sel.msgs[i].uid
	}
	return uint32(i + 1)
}
