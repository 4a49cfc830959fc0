package imap

import (
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
	"github.com/mailstack/terraform-provider-mailstack/third_party/go-imap/imapserver"
)

// Create implements CREATE (RFC 9051 6.3.4); parents are created too.
func (s *session) Create(name string, _ *imap.CreateOptions) error {
	if err := s.srv.store.CreateMailbox(s.user, name); err != nil {
		return s.imapError(err, imap.ResponseCodeNonExistent)
	}
	return nil
}

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

// List implements LIST (RFC 9051 6.3.9) with the LIST-EXTENDED selection
// and return options, and LSUB (imapserver calls List with
// SelectSubscribed).
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 || len(patterns) == 1 && patterns[0] == "" {
		// The hierarchy delimiter request (RFC 9051 6.3.9).
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: store.Delimiter})
	}
	boxes, err := s.srv.store.Mailboxes(s.user)
	if err != nil {
		return s.imapError(err, imap.ResponseCodeNonExistent)
	}
	hasChildren := make(map[string]bool)
	for _, b := range boxes {
		if i := strings.LastIndexByte(b.Name, store.Delimiter); i > 0 {
			hasChildren[b.Name[:i]] = true
		}
	}
	for _, b := range boxes {
		if options.SelectSubscribed && !b.Subscribed {
			continue
		}
		match := false
		for _, p := range patterns {
			if imapserver.MatchList(b.Name, store.Delimiter, ref, p) {
				match = true
				break
			}
		}
		if !match {
			continue
		}
		data := imap.ListData{Mailbox: b.Name, Delim: store.Delimiter}
		if hasChildren[b.Name] {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
		} else {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if b.Subscribed && (options.SelectSubscribed || options.ReturnSubscribed) {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if options.ReturnStatus != nil {
			st, err := s.Status(b.Name, options.ReturnStatus)
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
		var zero uint32 // \Recent is not kept (removed in IMAP4rev2)
		data.NumRecent = &zero
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
