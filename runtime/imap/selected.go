package imap

import (
	"cmp"
	"errors"
	"slices"
	"sort"

	"github.com/emersion/go-imap/v2"

	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
	"github.com/mailstack/terraform-provider-mailstack/third_party/go-imap/imapserver"
)

// selected is the session's view of its selected mailbox: the messages the
// client knows, in sequence-number order, with the flags it was last told.
// Poll brings the view up to date with the store by comparing the two
// (expunged, new and changed messages), which keeps every session's
// sequence numbers right however many sessions change the mailbox.
type selected struct {
	name        string
	readOnly    bool
	uidValidity uint32
	modSeq      uint64
	msgs        []viewMsg
	watch       *store.Watch
	// stale is set when Poll had to hold back EXPUNGE responses (during
	// FETCH, STORE and SEARCH, RFC 9051 7.5.1), so the next Poll compares
	// again even if the mailbox did not change.
	stale bool
	// searchRes is the result saved by SEARCH RETURN (SAVE), as UIDs
	// (RFC 5182).
	searchRes imap.UIDSet
	// recent are the UIDs that are \Recent in this session (RFC 3501
	// 2.3.2): claimed from the store by SELECT and by each update that
	// brings new messages; for EXAMINE, those nobody claimed.
	recent []store.UIDRange
	// keywords are the keywords the client was told of in FLAGS; a
	// message with another one makes a new FLAGS response first.
	keywords map[string]bool
	// contexts are the searches kept up to date (RFC 5267 4).
	contexts []*searchContext
}

type viewMsg struct {
	uid   uint32
	flags []string
	// gone marks a message expunged in the store whose EXPUNGE the client
	// has not been sent yet; commands skip it.
	gone bool
}

func (sel *selected) close() { sel.watch.Close() }

var systemFlags = []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft}

// Select implements SELECT and EXAMINE (RFC 9051 6.3.2, 6.3.3).
func (s *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	if s.sel != nil {
		s.sel.close()
		s.sel = nil
	}
	if s.notify != nil {
		s.notify.setSelected("")
	}
	watch, err := s.srv.store.Watch(s.user, name)
	if err != nil {
		return nil, s.imapError(err, imap.ResponseCodeNonExistent)
	}
	snap, err := s.srv.store.Messages(s.user, name)
	if err != nil {
		watch.Close()
		return nil, s.imapError(err, imap.ResponseCodeNonExistent)
	}
	sel := &selected{name: snap.Name, readOnly: options.ReadOnly, uidValidity: snap.UIDValidity, modSeq: snap.ModSeq, watch: watch, keywords: make(map[string]bool)}
	if options.ReadOnly {
		// EXAMINE shows what nobody claimed and claims nothing.
		sel.addRecent(snap.RecentFrom, snap.UIDNext)
	} else if err := s.claimRecent(sel); err != nil {
		watch.Close()
		return nil, err
	}
	sel.msgs = make([]viewMsg, len(snap.Messages))
	var firstUnseen uint32
	for i, m := range snap.Messages {
		sel.msgs[i] = viewMsg{uid: m.UID, flags: m.Flags}
		for _, f := range m.Flags {
			if f[0] != '\\' {
				sel.keywords[f] = true
			}
		}
		if firstUnseen == 0 && !m.HasFlag(store.FlagSeen) {
			firstUnseen = uint32(i + 1)
		}
	}
	s.sel = sel
	if s.notify != nil {
		s.notify.setSelected(sel.name)
	}
	flags, permanent := sel.flagLists()
	return &imap.SelectData{
		Flags:             flags,
		PermanentFlags:    permanent,
		NumMessages:       uint32(len(sel.msgs)),
		NumRecent:         sel.numRecent(),
		FirstUnseenSeqNum: firstUnseen,
		UIDNext:           imap.UID(snap.UIDNext),
		UIDValidity:       snap.UIDValidity,
		HighestModSeq:     snap.ModSeq,
	}, nil
}

// claimRecent takes the messages no session has seen as this session's
// \Recent ones.
func (s *session) claimRecent(sel *selected) error {
	first, next, err := s.srv.store.ClaimRecent(s.user, sel.name)
	if err != nil {
		return s.imapError(err, imap.ResponseCodeNonExistent)
	}
	sel.addRecent(first, next)
	return nil
}

// addRecent makes UIDs first to next-1 recent in the session.
func (sel *selected) addRecent(first, next uint32) {
	if first == 0 {
		first = 1 // a mailbox from before \Recent was kept
	}
	if first < next {
		sel.recent = append(sel.recent, store.UIDRange{Start: first, Stop: next - 1})
	}
}

func (sel *selected) isRecent(uid uint32) bool {
	for _, r := range sel.recent {
		if uid >= r.Start && uid <= r.Stop {
			return true
		}
	}
	return false
}

// numRecent counts the recent messages in the view.
func (sel *selected) numRecent() uint32 {
	var n uint32
	for _, m := range sel.msgs {
		if !m.gone && sel.isRecent(m.uid) {
			n++
		}
	}
	return n
}

// flagLists returns FLAGS and PERMANENTFLAGS: the system flags and every
// keyword the client was told of.
func (sel *selected) flagLists() (flags, permanent []imap.Flag) {
	flags = slices.Clone(systemFlags)
	for k := range sel.keywords {
		flags = append(flags, imap.Flag(k))
	}
	sort.Slice(flags[len(systemFlags):], func(i, j int) bool { return flags[len(systemFlags)+i] < flags[len(systemFlags)+j] })
	permanent = []imap.Flag{}
	if !sel.readOnly {
		permanent = append(slices.Clone(flags), imap.FlagWildcard)
	}
	return flags, permanent
}

// announceKeywords sends FLAGS (and PERMANENTFLAGS) before a message with
// a keyword the client has not been told of is shown to it (RFC 3501
// 7.2.6: FLAGS lists the flags the mailbox uses).
func (sel *selected) announceKeywords(w *imapserver.UpdateWriter, flags []string) error {
	fresh := false
	for _, f := range flags {
		if f[0] != '\\' && !sel.keywords[f] {
			sel.keywords[f], fresh = true, true
		}
	}
	if !fresh {
		return nil
	}
	all, permanent := sel.flagLists()
	if err := w.WriteMailboxFlags(all); err != nil {
		return err
	}
	return w.WritePermanentFlags(permanent)
}

// imapFlags returns a message's flags for the client, \Recent included.
func (sel *selected) imapFlags(uid uint32, flags []string) []imap.Flag {
	out := make([]imap.Flag, len(flags), len(flags)+1)
	for i, f := range flags {
		out[i] = imap.Flag(f)
	}
	if sel.isRecent(uid) {
		out = append(out, flagRecent)
	}
	return out
}

// Unselect implements UNSELECT and the end of CLOSE.
func (s *session) Unselect() error {
	if s.sel != nil {
		s.sel.close()
		s.sel = nil
	}
	if s.notify != nil {
		s.notify.setSelected("")
	}
	return nil
}

// Poll sends the changes other sessions and deliveries made to the
// selected mailbox since the client last heard (RFC 9051 7.5.1).
func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	sel := s.sel
	if sel == nil {
		return nil
	}
	modSeq, err := s.srv.store.ModSeq(s.user, sel.name)
	if errors.Is(err, store.ErrNotFound) {
		return nil // deleted or renamed by another session; commands will say so
	} else if err != nil {
		return s.imapError(err, imap.ResponseCodeNonExistent)
	}
	if modSeq != sel.modSeq || sel.stale && allowExpunge {
		snap, err := s.srv.store.Messages(s.user, sel.name)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return s.imapError(err, imap.ResponseCodeNonExistent)
		}
		if err := s.update(sel, w, snap, allowExpunge); err != nil {
			return err
		}
	}
	return s.updateSearches(w)
}

// update compares the view with snap and writes EXPUNGE (highest sequence
// number first, so no number shifts under the client), FETCH FLAGS and
// EXISTS responses.
func (s *session) update(sel *selected, w *imapserver.UpdateWriter, snap *store.Snapshot, allowExpunge bool) error {
	sel.modSeq = snap.ModSeq
	cur := snap.Messages
	changed := make(map[uint32]uint64) // UID -> its MODSEQ
	j := 0
	for i := range sel.msgs {
		v := &sel.msgs[i]
		for j < len(cur) && cur[j].UID < v.uid {
			j++
		}
		if j < len(cur) && cur[j].UID == v.uid {
			if !slices.Equal(v.flags, cur[j].Flags) {
				v.flags = cur[j].Flags
				changed[v.uid] = cur[j].ModSeq
			}
			j++
		} else {
			v.gone = true
		}
	}
	last := uint32(0)
	if len(sel.msgs) > 0 {
		last = sel.msgs[len(sel.msgs)-1].uid
	}
	isGone := func(m viewMsg) bool { return m.gone }
	sel.stale = false
	if allowExpunge {
		if err := sel.dropExpunged(w); err != nil {
			return err
		}
	}
	if allowExpunge && w.Conn().QResyncEnabled() {
		// RFC 7162 3.2.10: VANISHED with UIDs replaces EXPUNGE.
		var gone imap.UIDSet
		for _, m := range sel.msgs {
			if m.gone {
				gone.AddNum(imap.UID(m.uid))
			}
		}
		if len(gone) > 0 {
			if err := w.WriteVanished(gone, false); err != nil {
				return err
			}
		}
	} else if allowExpunge {
		for i := len(sel.msgs) - 1; i >= 0; i-- {
			if sel.msgs[i].gone {
				if err := w.WriteExpunge(uint32(i + 1)); err != nil {
					return err
				}
			}
		}
	}
	if allowExpunge {
		sel.msgs = slices.DeleteFunc(sel.msgs, isGone)
	} else {
		sel.stale = slices.ContainsFunc(sel.msgs, isGone)
	}
	n := len(sel.msgs)
	for _, m := range cur {
		if m.UID > last {
			sel.msgs = append(sel.msgs, viewMsg{uid: m.UID, flags: m.Flags})
			if err := sel.announceKeywords(w, m.Flags); err != nil {
				return err
			}
		}
	}
	condStore := w.Conn().CondStoreEnabled()
	for i, m := range sel.msgs[:n] {
		modSeq, ok := changed[m.uid]
		if !ok {
			continue
		}
		if err := sel.announceKeywords(w, m.flags); err != nil {
			return err
		}
		var err error
		if condStore {
			err = w.WriteMessageFlagsModSeq(uint32(i+1), imap.UID(m.uid), sel.imapFlags(m.uid, m.flags), modSeq)
		} else {
			err = w.WriteMessageFlags(uint32(i+1), imap.UID(m.uid), sel.imapFlags(m.uid, m.flags))
		}
		if err != nil {
			return err
		}
	}
	if len(sel.msgs) == n {
		return nil
	}
	if !sel.readOnly {
		if err := s.claimRecent(sel); err != nil {
			return err
		}
	}
	if err := w.WriteNumMessages(uint32(len(sel.msgs))); err != nil {
		return err
	}
	return w.WriteNumRecent(sel.numRecent())
}

// Idle implements IDLE (RFC 2177, RFC 9051 6.3.13): it sends updates as
// soon as the store reports a change to the selected mailbox, and says BYE
// when the server shuts down.
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	var changes <-chan struct{}
	if s.sel != nil {
		changes = s.sel.watch.C
		// Catch up first: a change may have landed since the last command.
		if err := s.Poll(w, true); err != nil {
			return err
		}
	}
	for {
		select {
		case <-changes:
			if err := s.Poll(w, true); err != nil {
				return err
			}
		case <-stop:
			return nil
		case <-s.srv.shutdown:
			return s.conn.Bye("Server shutting down")
		}
	}
}

// resolve returns the view indexes a sequence set or UID set names, in
// ascending order, skipping messages already expunged (RFC 9051 6.4.8:
// UIDs that do not exist are ignored; "*" is the last message).
func (sel *selected) resolve(numSet imap.NumSet) []int {
	if imap.IsSearchRes(numSet) {
		numSet = sel.searchRes
	}
	var out []int
	add := func(i int) {
		if !sel.msgs[i].gone {
			out = append(out, i)
		}
	}
	switch set := numSet.(type) {
	case imap.SeqSet:
		n := uint32(len(sel.msgs))
		for _, r := range set {
			start, stop := staticRange(r.Start, r.Stop, n)
			for seq := start; seq <= stop && seq <= n; seq++ {
				if seq > 0 {
					add(int(seq - 1))
				}
			}
		}
	case imap.UIDSet:
		var maxUID uint32
		if len(sel.msgs) > 0 {
			maxUID = sel.msgs[len(sel.msgs)-1].uid
		}
		for _, r := range set {
			start, stop := staticRange(uint32(r.Start), uint32(r.Stop), maxUID)
			i := sort.Search(len(sel.msgs), func(i int) bool { return sel.msgs[i].uid >= start })
			for ; i < len(sel.msgs) && sel.msgs[i].uid <= stop; i++ {
				add(i)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// staticRange replaces "*" (0) by max and orders the bounds.
func staticRange(start, stop, max uint32) (uint32, uint32) {
	if start == 0 {
		start = max
	}
	if stop == 0 {
		stop = max
	}
	if start > stop {
		start, stop = stop, start
	}
	return start, stop
}

// uidsOf returns the UIDs of view indexes.
func (sel *selected) uidsOf(idx []int) []uint32 {
	out := make([]uint32, len(idx))
	for k, i := range idx {
		out[k] = sel.msgs[i].uid
	}
	return out
}

// indexOf returns the view index of uid, or -1.
func (sel *selected) indexOf(uid uint32) int {
	i, ok := slices.BinarySearchFunc(sel.msgs, uid, func(m viewMsg, uid uint32) int { return cmp.Compare(m.uid, uid) })
	if !ok {
		return -1
	}
	return i
}

// flagRecent is IMAP4rev1's \Recent, which go-imap v2 (IMAP4rev2) dropped.
const flagRecent imap.Flag = `\Recent`

var _ imapserver.SessionQResync = (*session)(nil)

// QResync answers SELECT (QRESYNC ...) (RFC 7162 3.2.5): VANISHED
// (EARLIER) for the UIDs expunged since the client's MODSEQ, then FETCH
// UID FLAGS MODSEQ for every message changed since, limited to the UIDs
// the client says it knows.
func (s *session) QResync(w *imapserver.UpdateWriter, params *imapserver.QResyncParams) error {
	sel := s.sel
	if err := s.writeVanishedSince(w, params.ModSeq, params.KnownUIDs); err != nil {
		return err
	}
	snap, err := s.srv.store.Messages(s.user, sel.name)
	if err != nil {
		return s.imapError(err, imap.ResponseCodeNonExistent)
	}
	for _, m := range snap.Messages {
		if m.ModSeq <= params.ModSeq || len(params.KnownUIDs) > 0 && !params.KnownUIDs.Contains(imap.UID(m.UID)) {
			continue
		}
		i := sel.indexOf(m.UID)
		if i < 0 {
			continue
		}
		if err := w.WriteMessageFlagsModSeq(uint32(i+1), imap.UID(m.UID), sel.imapFlags(m.UID, sel.msgs[i].flags), m.ModSeq); err != nil {
			return err
		}
	}
	return nil
}

// writeVanishedSince sends VANISHED (EARLIER) for the UIDs expunged since
// modSeq, within only unless it is empty.
func (s *session) writeVanishedSince(w *imapserver.UpdateWriter, modSeq uint64, only imap.UIDSet) error {
	ranges, err := s.srv.store.Vanished(s.user, s.sel.name, modSeq)
	if err != nil {
		return s.imapError(err, imap.ResponseCodeNonExistent)
	}
	var set imap.UIDSet
	for _, r := range ranges {
		if len(only) == 0 {
			set.AddRange(imap.UID(r.Start), imap.UID(r.Stop))
			continue
		}
		for _, o := range only {
			start, stop := uint32(o.Start), uint32(o.Stop)
			if stop == 0 || start == 0 { // "*": as far as it goes
				start, stop = max(start, 1), ^uint32(0)
			}
			if lo, hi := max(start, r.Start), min(stop, r.Stop); lo <= hi {
				set.AddRange(imap.UID(lo), imap.UID(hi))
			}
		}
	}
	if len(set) == 0 {
		return nil
	}
	return w.WriteVanished(set, true)
}

var _ imapserver.SessionCondStore = (*session)(nil)

// HighestModSeq is the selected mailbox's MODSEQ as the session last told
// the client (RFC 7162 3.1.2).
func (s *session) HighestModSeq() uint64 {
	if s.sel == nil {
		return 0
	}
	return s.sel.modSeq
}
