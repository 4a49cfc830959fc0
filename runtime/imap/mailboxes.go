package imap

import (
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
	"github.com/mailstack/terraform-provider-mailstack/third_party/go-imap/imapserver"
)

// Create implements CREATE (RFC 9051 6.3.4), with CREATE-SPECIAL-USE's
// USE (RFC 6154 3); parents are created too.
func (s *session) Create(name string, options *imap.CreateOptions) error {
	var opts store.CreateOptions
	switch len(options.SpecialUse) {
	case 0:
	case 1:
		opts.SpecialUse = string(options.SpecialUse[0])
	default:
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: responseCodeUseAttr, Text: "One special use per mailbox"}
	}
	if err := s.srv.store.CreateMailbox(s.user, name, opts); err != nil {
		return s.imapError(err, imap.ResponseCodeNonExistent)
	}
	return nil
}

// responseCodeUseAttr refuses a special-use attribute (RFC 6154 6).
const responseCodeUseAttr imap.ResponseCode = "USEATTR"

// Delete implements DELETE (RFC 9051 6.3.5).
func (s *session) Delete(name string) error {
	if err := s.srv.store.DeleteMailbox(s.user, name); err != nil {
		return s.imapError(err, imap.ResponseCodeNonExistent)
	}
	return nil
}

// Rename implements RENAME (RFC 9051 6.3.6), children included.
func (s *session) Rename(oldName, newName string, _ *imap.RenameOptions) error {
	if err := s.srv.store.RenameMailbox(s.user, oldName, newName); err != nil {
		return s.imapError(err, imap.ResponseCodeNonExistent)
	}
	return nil
}

// Subscribe implements SUBSCRIBE (RFC 9051 6.3.7).
func (s *session) Subscribe(name string) error {
	if err := s.srv.store.Subscribe(s.user, name, true); err != nil {
		return s.imapError(err, imap.ResponseCodeNonExistent)
	}
	return nil
}

// Unsubscribe implements UNSUBSCRIBE (RFC 9051 6.3.8).
func (s *session) Unsubscribe(name string) error {
	if err := s.srv.store.Subscribe(s.user, name, false); err != nil {
		return s.imapError(err, imap.ResponseCodeNonExistent)
	}
	return nil
}

// List implements LIST (RFC 9051 6.3.9) with LIST-EXTENDED's selection
// and return options (RFC 5258), SPECIAL-USE (RFC 6154) and LIST-STATUS
// (RFC 5819), and LSUB (imapserver calls List with SelectSubscribed).
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 || len(patterns) == 1 && patterns[0] == "" {
		// The hierarchy delimiter request (RFC 9051 6.3.9).
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: store.Delimiter})
	}
	boxes, err := s.srv.store.Mailboxes(s.user)
	if err != nil {
		return s.imapError(err, imap.ResponseCodeNonExistent)
	}
	subs, err := s.srv.store.Subscriptions(s.user)
	if err != nil {
		return s.imapError(err, imap.ResponseCodeNonExistent)
	}
	match := func(name string) bool {
		for _, p := range patterns {
			if imapserver.MatchList(name, store.Delimiter, ref, p) {
				return true
			}
		}
		return false
	}
	l := newListing(boxes, subs)
	if w.LSub() {
		return l.lsub(w, match)
	}
	for _, name := range l.names(options.SelectSubscribed) {
		b, exists := l.boxes[name]
		subscribed := l.subscribed[name]
		childInfo := options.SelectRecursiveMatch && l.hasSubscribedChild(name, match)
		if !match(name) || options.SelectSubscribed && !subscribed && !childInfo {
			continue
		}
		if options.SelectSpecialUse && b.SpecialUse == "" {
			continue
		}
		data := imap.ListData{Mailbox: name, Delim: store.Delimiter}
		if !exists {
			data.Attrs = append(data.Attrs, imap.MailboxAttrNonExistent)
		} else if l.parents[name] {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
		} else {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if subscribed && (options.SelectSubscribed || options.ReturnSubscribed) {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if b.SpecialUse != "" {
			// RFC 6154 2: servers may return them without being asked.
			data.Attrs = append(data.Attrs, imap.MailboxAttr(b.SpecialUse))
		}
		if childInfo {
			data.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
		}
		if options.ReturnStatus != nil && exists {
			st, err := s.Status(name, options.ReturnStatus)
			if err != nil {
				return err
			}
			data.Status = st
		}
		if err := w.WriteList(&data); err != nil {
			return err
		}
	}
	return nil
}

// listing is a user's mailboxes and subscriptions, for LIST and LSUB.
type listing struct {
	boxes      map[string]store.MailboxInfo
	subscribed map[string]bool
	parents    map[string]bool // names with an existing child
	sorted     []string        // existing names
	subsSorted []string
}

func newListing(boxes []store.MailboxInfo, subs []string) *listing {
	l := &listing{boxes: make(map[string]store.MailboxInfo, len(boxes)), subscribed: make(map[string]bool, len(subs)), parents: make(map[string]bool), subsSorted: subs}
	for _, b := range boxes {
		l.boxes[b.Name] = b
		l.sorted = append(l.sorted, b.Name)
		if i := strings.LastIndexByte(b.Name, store.Delimiter); i > 0 {
			l.parents[b.Name[:i]] = true
		}
	}
	for _, n := range subs {
		l.subscribed[n] = true
	}
	return l
}

// names returns the names LIST considers: the existing mailboxes, and with
// subscribed, the subscriptions too (which may name no mailbox) and the
// parents of subscriptions (for RECURSIVEMATCH).
func (l *listing) names(subscribed bool) []string {
	if !subscribed {
		return l.sorted
	}
	out := slices.Clone(l.sorted)
	for _, n := range l.subsSorted {
		out = append(out, n)
		for p := parentOf(n); p != ""; p = parentOf(p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// hasSubscribedChild reports whether a subscribed descendant of name
// does not match the pattern itself, which RECURSIVEMATCH reports as
// CHILDINFO ("SUBSCRIBED") on name (RFC 5258 3.5).
func (l *listing) hasSubscribedChild(name string, match func(string) bool) bool {
	prefix := name + string(store.Delimiter)
	for _, n := range l.subsSorted {
		if strings.HasPrefix(n, prefix) && !match(n) {
			return true
		}
	}
	return false
}

// lsub answers LSUB (RFC 3501 6.3.9): the subscriptions that match, and,
// where a "%" stops above a subscription, its unsubscribed ancestor marked
// \Noselect.
func (l *listing) lsub(w *imapserver.ListWriter, match func(string) bool) error {
	out := make(map[string]bool)
	for _, n := range l.subsSorted {
		if match(n) {
			out[n] = l.subscribed[n]
		}
		for p := parentOf(n); p != ""; p = parentOf(p) {
			if match(p) && !l.subscribed[p] && !match(n) {
				out[p] = false
			}
		}
	}
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		data := imap.ListData{Mailbox: n, Delim: store.Delimiter}
		if _, exists := l.boxes[n]; !out[n] || !exists {
			data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect)
		}
		if err := w.WriteList(&data); err != nil {
			return err
		}
	}
	return nil
}

// parentOf returns the parent of a mailbox name, or "".
func parentOf(name string) string {
	i := strings.LastIndexByte(name, store.Delimiter)
	if i < 0 {
		return ""
	}
	return name[:i]
}

// Status implements STATUS (RFC 9051 6.3.11).
func (s *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	st, err := s.srv.store.Status(s.user, name)
	if err != nil {
		return nil, s.imapError(err, imap.ResponseCodeNonExistent)
	}
	data := &imap.StatusData{Mailbox: st.Name}
	if options.NumMessages {
		data.NumMessages = &st.Messages
	}
	if options.UIDNext {
		data.UIDNext = imap.UID(st.UIDNext)
	}
	if options.UIDValidity {
		data.UIDValidity = st.UIDValidity
	}
	if options.NumUnseen {
		data.NumUnseen = &st.Unseen
	}
	if options.NumDeleted {
		data.NumDeleted = &st.Deleted
	}
	if options.Size {
		data.Size = &st.Size
	}
	if options.NumRecent {
		data.NumRecent = &st.Recent
	}
	if options.HighestModSeq {
		data.HighestModSeq = st.ModSeq
	}
	if options.AppendLimit {
		data.AppendLimit = &s.srv.limit
	}
	return data, nil
}

// Append implements APPEND (RFC 9051 6.3.12) with UIDPLUS's APPENDUID.
func (s *session) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	flags := make([]string, len(options.Flags))
	for i, f := range options.Flags {
		flags[i] = string(f)
	}
	uidValidity, uid, err := s.srv.store.Append(s.user, mailbox, r, r.Size(), store.AppendOptions{Flags: flags, Date: options.Time})
	if err != nil {
		return nil, s.imapError(err, imap.ResponseCodeTryCreate)
	}
	return &imap.AppendData{UIDValidity: uidValidity, UID: imap.UID(uid)}, nil
}

var _ imapserver.SessionAppendRollback = (*session)(nil)

// RollbackAppend takes back the messages of a MULTIAPPEND whose later
// message failed (RFC 3502 6.3.11: all or none). They were visible for
// that moment; other sessions see them come and go.
func (s *session) RollbackAppend(mailbox string, appended []*imap.AppendData) error {
	uids := make([]uint32, 0, len(appended))
	for _, a := range appended {
		if a != nil {
			uids = append(uids, uint32(a.UID))
		}
	}
	if _, err := s.srv.store.SetFlags(s.user, mailbox, uids, store.FlagChange{Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}}); err != nil {
		return err
	}
	_, err := s.srv.store.Expunge(s.user, mailbox, uids)
	return err
}
