package imap

import (
	"github.com/emersion/go-imap/v2"

	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
	"github.com/mailstack/terraform-provider-mailstack/third_party/go-imap/imapserver"
)

// Store implements STORE (RFC 9051 6.4.6). The untagged FETCH responses
// carry the UID too, as UID STORE requires and STORE allows.
func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	sel := s.sel
	if sel.readOnly {
		return errReadOnly
	}
	uids := sel.uidsOf(sel.resolve(numSet))
	if len(uids) == 0 {
		return nil
	}
	var op store.FlagOp
	switch flags.Op {
	case imap.StoreFlagsSet:
		op = store.FlagsReplace
	case imap.StoreFlagsAdd:
		op = store.FlagsAdd
	case imap.StoreFlagsDel:
		op = store.FlagsRemove
	}
	names := make([]string, len(flags.Flags))
	for i, f := range flags.Flags {
		names[i] = string(f)
	}
	res, err := s.srv.store.SetFlags(s.user, sel.name, uids, store.FlagChange{Op: op, Flags: names, UnchangedSince: options.UnchangedSince})
	if err != nil {
		return s.imapError(err, imap.ResponseCodeNonExistent)
	}
	condStore := w.Conn().CondStoreEnabled()
	for _, m := range res.Messages {
		i := sel.indexOf(m.UID)
		if i < 0 {
			continue
		}
		sel.msgs[i].flags = m.Flags
		if err := sel.announceKeywords(w.Updates(), m.Flags); err != nil {
			return err
		}
		if flags.Silent && !(condStore && options.UnchangedSince > 0) {
			continue
		}
		rw := w.CreateMessage(uint32(i + 1))
		rw.WriteUID(imap.UID(m.UID))
		if !flags.Silent {
			rw.WriteFlags(sel.imapFlags(m.UID, m.Flags))
		}
		if condStore {
			// RFC 7162 3.1.3: MODSEQ, even for .SILENT with UNCHANGEDSINCE.
			rw.WriteModSeq(m.ModSeq)
		}
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return sel.modifiedError(numSet, res.Modified)
}

// modifiedError is STORE's tagged OK [MODIFIED set] for the messages
// UNCHANGEDSINCE left alone (RFC 7162 3.1.3), in the numbering of the
// command.
func (sel *selected) modifiedError(numSet imap.NumSet, uids []uint32) error {
	if len(uids) == 0 {
		return nil
	}
	var set imap.NumSet
	if _, byUID := numSet.(imap.UIDSet); byUID {
		var u imap.UIDSet
		for _, uid := range uids {
			u.AddNum(imap.UID(uid))
		}
		set = u
	} else {
		var q imap.SeqSet
		for _, uid := range uids {
			if i := sel.indexOf(uid); i >= 0 {
				q.AddNum(uint32(i + 1))
			}
		}
		set = q
	}
	return &imap.Error{Type: imap.StatusResponseTypeOK, Code: imap.ResponseCode("MODIFIED " + set.String()), Text: "Conditional STORE failed"}
}

// Copy implements COPY (RFC 9051 6.4.7) with UIDPLUS's COPYUID.
func (s *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	uids := s.sel.uidsOf(s.sel.resolve(numSet))
	res, err := s.srv.store.Copy(s.user, s.sel.name, uids, dest)
	if err != nil {
		return nil, s.imapError(err, imap.ResponseCodeTryCreate)
	}
	return copyData(res), nil
}

// Move implements MOVE (RFC 6851, RFC 9051 6.4.8). The EXPUNGE responses
// for the moved messages follow from the Poll that imapserver runs before
// the tagged OK.
func (s *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	if s.sel.readOnly {
		return errReadOnly
	}
	uids := s.sel.uidsOf(s.sel.resolve(numSet))
	res, err := s.srv.store.Move(s.user, s.sel.name, uids, dest)
	if err != nil {
		return s.imapError(err, imap.ResponseCodeTryCreate)
	}
	if data := copyData(res); data != nil {
		return w.WriteCopyData(data)
	}
	return nil
}

// copyData is the COPYUID response code (RFC 4315) for res, nil when no
// message was copied: a COPYUID needs at least one UID in each set, so a
// set that named no message (COPY 12 in a mailbox of 2, UID MOVE of an
// expunged UID) is answered with a plain OK.
func copyData(res store.CopyResult) *imap.CopyData {
	if len(res.SourceUIDs) == 0 {
		return nil
	}
	data := &imap.CopyData{UIDValidity: res.UIDValidity}
	for i := range res.SourceUIDs {
		data.SourceUIDs.AddNum(imap.UID(res.SourceUIDs[i]))
		data.DestUIDs.AddNum(imap.UID(res.DestUIDs[i]))
	}
	return data
}

// Expunge implements EXPUNGE, UID EXPUNGE (RFC 9051 6.4.3, 6.4.9) and the
// expunge step of CLOSE. The EXPUNGE responses come from the Poll that
// imapserver runs after the command; CLOSE sends none (RFC 9051 6.4.2).
func (s *session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	sel := s.sel
	if sel.readOnly {
		// imapserver hands CLOSE a writer without a connection; CLOSE on
		// a read-only mailbox just closes it, EXPUNGE is refused.
		if *w == (imapserver.ExpungeWriter{}) {
			return nil
		}
		return errReadOnly
	}
	var only []uint32
	if uids != nil {
		only = sel.uidsOf(sel.resolve(*uids))
		if len(only) == 0 {
			return nil
		}
	}
	if _, err := s.srv.store.Expunge(s.user, sel.name, only); err != nil {
		return s.imapError(err, imap.ResponseCodeNonExistent)
	}
	return nil
}
