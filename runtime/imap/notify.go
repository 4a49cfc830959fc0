package imap

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/emersion/go-imap/v2"

	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
	"github.com/mailstack/terraform-provider-mailstack/third_party/go-imap/imapserver"
)

var _ imapserver.SessionNotify = (*session)(nil)

// Notify implements NOTIFY SET and NOTIFY NONE (RFC 5465). Changes to the
// selected mailbox still go out as EXISTS, EXPUNGE and FETCH when Poll and
// Idle report them, as without NOTIFY; a notifier tells of the others as
// they happen.
func (s *session) Notify(w *imapserver.UpdateWriter, options *imapserver.NotifyOptions) error {
	if s.notify != nil {
		s.notify.close()
		s.notify = nil
	}
	if options == nil {
		return nil
	}
	watch, err := s.srv.store.WatchUser(s.user)
	if err != nil {
		return s.imapError(err, imap.ResponseCodeNonExistent)
	}
	n := &notifier{srv: s.srv, user: s.user, log: s.log, conn: s.conn, groups: options.Groups, watch: watch,
		stop: make(chan struct{}), done: make(chan struct{})}
	if s.sel != nil {
		n.setSelected(s.sel.name)
	}
	// The state the client is told of from now on; with STATUS, told now.
	var initial []store.MailboxStatus
	if err := n.look(func(st store.MailboxStatus, events []imapserver.NotifyEvent) error {
		initial = append(initial, st)
		return nil
	}); err != nil {
		watch.Close()
		return s.imapError(err, imap.ResponseCodeNonExistent)
	}
	if options.Status {
		for _, st := range initial {
			events := n.events(st.Name)
			if err := writeNotifyStatus(w, st, statusItems(events)); err != nil {
				watch.Close()
				return err
			}
		}
	}
	s.notify = n
	go n.run()
	return nil
}

// notifier tells a NOTIFY client of changes to mailboxes other than the
// selected one (STATUS), to the mailbox list and to subscriptions (LIST),
// woken by the user's store watch. It runs beside the session's commands
// and touches none of the session's state but the selected mailbox's name.
type notifier struct {
	srv    *Server
	user   string
	log    *slog.Logger
	conn   *imapserver.Conn
	groups []imapserver.NotifyGroup
	watch  *store.Watch
	stop   chan struct{}
	done   chan struct{}

	selected atomic.Pointer[string] // the selected mailbox's name, or nil

	// What the client was last told, owned by run once it started.
	status map[string]store.MailboxStatus
	boxes  map[string]uint32 // name -> UIDVALIDITY
	subs   map[string]bool
}

func (n *notifier) setSelected(name string) {
	if name == "" {
		n.selected.Store(nil)
	} else {
		n.selected.Store(&name)
	}
}

func (n *notifier) close() {
	close(n.stop)
	<-n.done
	n.watch.Close()
}

func (n *notifier) run() {
	defer close(n.done)
	w := n.conn.Unsolicited()
	for {
		select {
		case <-n.stop:
			return
		case <-n.srv.shutdown:
			return
		case <-n.watch.C:
			if err := n.tell(w); err != nil {
				n.log.Warn("imap notify stopped", "user", n.user, "err", err)
				return
			}
		}
	}
}

// look reads the user's mailboxes and subscriptions into the notifier's
// state and calls found with the status of each mailbox that has message
// events, except the selected one.
func (n *notifier) look(found func(store.MailboxStatus, []imapserver.NotifyEvent) error) error {
	boxes, err := n.srv.store.Mailboxes(n.user)
	if err != nil {
		return err
	}
	subs, err := n.srv.store.Subscriptions(n.user)
	if err != nil {
		return err
	}
	n.boxes = make(map[string]uint32, len(boxes))
	n.subs = make(map[string]bool, len(subs))
	for _, name := range subs {
		n.subs[name] = true
	}
	status := make(map[string]store.MailboxStatus)
	sel := n.selected.Load()
	for _, b := range boxes {
		n.boxes[b.Name] = b.UIDValidity
		events := n.events(b.Name)
		if statusItems(events) == nil {
			continue
		}
		st, err := n.srv.store.Status(n.user, b.Name)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted meanwhile: the next look tells
		} else if err != nil {
			return err
		}
		// The selected mailbox's state is kept, not told: once another
		// is selected, its changes are told from there.
		status[b.Name] = st
		if sel != nil && *sel == b.Name {
			continue
		}
		if err := found(st, events); err != nil {
			return err
		}
	}
	n.status = status
	return nil
}

// tell compares the user's mail with what the client was last told and
// writes what changed.
func (n *notifier) tell(w *imapserver.UpdateWriter) error {
	oldStatus, oldBoxes, oldSubs := n.status, n.boxes, n.subs
	var changed []store.MailboxStatus
	if err := n.look(func(st store.MailboxStatus, events []imapserver.NotifyEvent) error {
		if old, ok := oldStatus[st.Name]; ok && statusChanged(old, st, events) {
			changed = append(changed, st)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := n.tellList(w, oldBoxes); err != nil {
		return err
	}
	if err := n.tellSubscriptions(w, oldSubs); err != nil {
		return err
	}
	for _, st := range changed {
		if err := writeNotifyStatus(w, st, statusItems(n.events(st.Name))); err != nil {
			return err
		}
	}
	return nil
}

// tellList writes MailboxName events (RFC 5465 5.4): a LIST for each
// mailbox created, \NonExistent for each deleted, OLDNAME for a rename (a
// renamed mailbox keeps its UIDVALIDITY, which no other has).
func (n *notifier) tellList(w *imapserver.UpdateWriter, old map[string]uint32) error {
	renamedFrom := make(map[uint32]string)
	for name, v := range old {
		if _, ok := n.boxes[name]; !ok {
			renamedFrom[v] = name
		}
	}
	var lists []imap.ListData
	for name, v := range n.boxes {
		if _, ok := old[name]; ok {
			continue
		}
		from := renamedFrom[v]
		delete(renamedFrom, v)
		if n.wants(name, imapserver.NotifyMailboxName) || from != "" && n.wants(from, imapserver.NotifyMailboxName) {
			lists = append(lists, imap.ListData{Mailbox: name, Delim: store.Delimiter, OldName: from})
		}
	}
	for _, name := range renamedFrom {
		if n.wants(name, imapserver.NotifyMailboxName) {
			lists = append(lists, imap.ListData{Mailbox: name, Delim: store.Delimiter, Attrs: []imap.MailboxAttr{imap.MailboxAttrNonExistent}})
		}
	}
	return writeLists(w, lists)
}

// tellSubscriptions writes SubscriptionChange events (RFC 5465 5.5): a
// LIST with \Subscribed for a new subscription, without for one removed.
func (n *notifier) tellSubscriptions(w *imapserver.UpdateWriter, old map[string]bool) error {
	var lists []imap.ListData
	for name := range n.subs {
		if !old[name] && n.wants(name, imapserver.NotifySubscriptionChange) {
			lists = append(lists, imap.ListData{Mailbox: name, Delim: store.Delimiter, Attrs: []imap.MailboxAttr{imap.MailboxAttrSubscribed}})
		}
	}
	for name := range old {
		if !n.subs[name] && n.wants(name, imapserver.NotifySubscriptionChange) {
			lists = append(lists, imap.ListData{Mailbox: name, Delim: store.Delimiter})
		}
	}
	return writeLists(w, lists)
}

func writeLists(w *imapserver.UpdateWriter, lists []imap.ListData) error {
	slices.SortFunc(lists, func(a, b imap.ListData) int { return strings.Compare(a.Mailbox, b.Mailbox) })
	for i := range lists {
		if err := w.WriteList(&lists[i]); err != nil {
			return err
		}
	}
	return nil
}

// events returns the events wanted for a mailbox: those of the first
// group whose filter names it (RFC 5465 6). The selected mailbox's own
// filters are left to Poll.
func (n *notifier) events(name string) []imapserver.NotifyEvent {
	for _, g := range n.groups {
		if n.names(g, name) {
			return g.Events
		}
	}
	return nil
}

func (n *notifier) wants(name string, e imapserver.NotifyEvent) bool {
	return slices.Contains(n.events(name), e)
}

// names reports whether the filter of g names the mailbox.
func (n *notifier) names(g imapserver.NotifyGroup, name string) bool {
	switch g.Filter {
	case imapserver.NotifyInboxes:
		return name == "INBOX"
	case imapserver.NotifyPersonal:
		return true
	case imapserver.NotifySubscribed:
		return n.subs[name]
	case imapserver.NotifySubtree:
		return slices.ContainsFunc(g.Mailboxes, func(m string) bool {
			return name == m || strings.HasPrefix(name, m+string(store.Delimiter))
		})
	case imapserver.NotifyMailboxes:
		return slices.Contains(g.Mailboxes, name)
	}
	return false // SELECTED, SELECTED-DELAYED: Poll's
}

// statusItems returns the STATUS items that tell of events, as Dovecot
// sends them: MessageNew MESSAGES, UIDNEXT and UIDVALIDITY, MessageExpunge
// MESSAGES, FlagChange UIDVALIDITY and HIGHESTMODSEQ; nil for none.
func statusItems(events []imapserver.NotifyEvent) *imap.StatusOptions {
	var o imap.StatusOptions
	for _, e := range events {
		switch e {
		case imapserver.NotifyMessageNew:
			o.NumMessages, o.UIDNext, o.UIDValidity = true, true, true
		case imapserver.NotifyMessageExpunge:
			o.NumMessages = true
		case imapserver.NotifyFlagChange:
			o.UIDValidity, o.HighestModSeq = true, true
		}
	}
	if o == (imap.StatusOptions{}) {
		return nil
	}
	return &o
}

// statusChanged reports whether a mailbox changed in a way its events ask
// to hear of.
func statusChanged(old, cur store.MailboxStatus, events []imapserver.NotifyEvent) bool {
	for _, e := range events {
		switch e {
		case imapserver.NotifyMessageNew:
			if cur.UIDNext != old.UIDNext || cur.UIDValidity != old.UIDValidity {
				return true
			}
		case imapserver.NotifyMessageExpunge:
			if cur.Messages < old.Messages || cur.Messages != old.Messages && cur.UIDNext == old.UIDNext {
				return true
			}
		case imapserver.NotifyFlagChange:
			if cur.ModSeq != old.ModSeq {
				return true
			}
		}
	}
	return false
}

func writeNotifyStatus(w *imapserver.UpdateWriter, st store.MailboxStatus, items *imap.StatusOptions) error {
	data := &imap.StatusData{Mailbox: st.Name, NumMessages: &st.Messages, UIDNext: imap.UID(st.UIDNext), UIDValidity: st.UIDValidity, HighestModSeq: st.ModSeq}
	return w.WriteStatus(data, items)
}
