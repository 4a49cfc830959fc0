package imapserver

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailstack/terraform-provider-mailstack/third_party/go-imap/internal/imapwire"
)

// CONDSTORE and QRESYNC (RFC 7162): the wire side. A session reports
// mod-sequences through FetchResponseWriter.WriteModSeq, SelectData's
// HighestModSeq and StatusData's HighestModSeq, and answers a QRESYNC
// SELECT through SessionQResync.

// QResyncParams are the client's state given with SELECT (QRESYNC ...)
// (RFC 7162 3.2.5).
type QResyncParams struct {
	UIDValidity uint32
	ModSeq      uint64
	// KnownUIDs limits the report to these UIDs; empty means all.
	KnownUIDs imap.UIDSet
}

// SessionQResync is a session that supports QRESYNC. QResync runs after
// a successful SELECT with the QRESYNC parameter whose UIDVALIDITY
// matches, and sends VANISHED (EARLIER) and FETCH responses for what
// changed since params.ModSeq.
type SessionQResync interface {
	Session
	QResync(w *UpdateWriter, params *QResyncParams) error
}

// CondStoreEnabled reports whether the client enabled CONDSTORE, with
// ENABLE or by using it (RFC 7162 3.1): FETCH responses with FLAGS then
// carry MODSEQ.
func (c *Conn) CondStoreEnabled() bool {
	c.mutex.Lock()
	defer c.mutex.Unlock()
	return c.enabled.Has(imap.CapCondStore) || c.enabled.Has(imap.CapQResync)
}

// QResyncEnabled reports whether the client enabled QRESYNC: expunges are
// then reported as VANISHED (RFC 7162 3.2.10).
func (c *Conn) QResyncEnabled() bool {
	c.mutex.Lock()
	defer c.mutex.Unlock()
	return c.enabled.Has(imap.CapQResync)
}

// SessionCondStore is a session that supports CONDSTORE: it reports the
// selected mailbox's HIGHESTMODSEQ as the client knows it.
type SessionCondStore interface {
	Session
	HighestModSeq() uint64
}

// enableCondStore enables CONDSTORE for a CONDSTORE-enabling command
// (RFC 7162 3.1). Enabled while a mailbox is selected, it tells the
// client the mailbox's HIGHESTMODSEQ, which SELECT did not.
func (c *Conn) enableCondStore() error {
	if !c.server.options.caps().Has(imap.CapCondStore) {
		return nil
	}
	c.mutex.Lock()
	_, had := c.enabled[imap.CapCondStore]
	c.enabled[imap.CapCondStore] = struct{}{}
	c.mutex.Unlock()
	if sess, ok := c.session.(SessionCondStore); ok && !had && c.state == imap.ConnStateSelected {
		return c.writeHighestModSeq(sess.HighestModSeq())
	}
	return nil
}

// readSelectParams reads SELECT's optional parameter list.
func readSelectParams(dec *imapwire.Decoder, options *imap.SelectOptions, qr **QResyncParams) error {
	return dec.ExpectList(func() error {
		var name string
		if !dec.ExpectAtom(&name) {
			return dec.Err()
		}
		switch strings.ToUpper(name) {
		case "CONDSTORE":
			options.CondStore = true
		case "QRESYNC":
			p := &QResyncParams{}
			if !dec.ExpectSP() {
				return dec.Err()
			}
			err := dec.ExpectList(func() error {
				if !dec.ExpectNumber(&p.UIDValidity) || !dec.ExpectSP() || !dec.ExpectModSeq(&p.ModSeq) {
					return dec.Err()
				}
				if dec.SP() {
					var known imap.NumSet
					if !dec.ExpectNumSet(imapwire.NumKindUID, &known) {
						return dec.Err()
					}
					p.KnownUIDs, _ = known.(imap.UIDSet)
					if dec.SP() { // seq-match-data: an optimisation we skip
						var a, b imap.NumSet
						err := dec.ExpectList(func() error {
							if !dec.ExpectNumSet(imapwire.NumKindSeq, &a) || !dec.ExpectSP() || !dec.ExpectNumSet(imapwire.NumKindUID, &b) {
								return dec.Err()
							}
							return nil
						})
						if err != nil {
							return err
						}
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			options.CondStore = true
			*qr = p
		default:
			return newClientBugError("unknown SELECT parameter")
		}
		return nil
	})
}

// readFetchModifiers reads FETCH's (CHANGEDSINCE n [VANISHED]).
func readFetchModifiers(dec *imapwire.Decoder, options *imap.FetchOptions, vanished *bool) error {
	return dec.ExpectList(func() error {
		var name string
		if !dec.ExpectAtom(&name) {
			return dec.Err()
		}
		switch strings.ToUpper(name) {
		case "CHANGEDSINCE":
			if !dec.ExpectSP() || !dec.ExpectModSeq(&options.ChangedSince) {
				return dec.Err()
			}
			options.ModSeq = true
		case "VANISHED":
			*vanished = true
		default:
			return newClientBugError("unknown FETCH modifier")
		}
		return nil
	})
}

// readStoreModifiers reads the rest of STORE's (UNCHANGEDSINCE n), after
// the opening parenthesis.
func readStoreModifiers(dec *imapwire.Decoder, options *imap.StoreOptions) error {
	var name string
	if !dec.ExpectAtom(&name) {
		return dec.Err()
	}
	if strings.ToUpper(name) != "UNCHANGEDSINCE" {
		return newClientBugError("unknown STORE modifier")
	}
	if !dec.ExpectSP() || !dec.ExpectModSeq(&options.UnchangedSince) || !dec.ExpectSpecial(')') {
		return dec.Err()
	}
	return nil
}

// WriteModSeq writes the message's MODSEQ (RFC 7162 3.1.4.1).
func (w *FetchResponseWriter) WriteModSeq(modSeq uint64) {
	w.writeItemSep()
	w.enc.Atom("MODSEQ").SP().Special('(').ModSeq(modSeq).Special(')')
}

// Vanished reports whether FETCH asked for VANISHED with CHANGEDSINCE
// (RFC 7162 3.2.6): the session then sends VANISHED (EARLIER) for the
// requested UIDs expunged since.
func (cmd *FetchWriter) Vanished() bool { return cmd.options.vanished }

// Conn returns the connection, for CondStoreEnabled and QResyncEnabled.
func (cmd *FetchWriter) Conn() *Conn { return cmd.conn }

// Conn returns the connection, for CondStoreEnabled and QResyncEnabled.
func (w *UpdateWriter) Conn() *Conn { return w.conn }

// WriteVanished writes VANISHED (RFC 7162 3.2.10), with (EARLIER) for
// expunges older than the current command.
func (w *UpdateWriter) WriteVanished(uids imap.UIDSet, earlier bool) error {
	if !earlier && !w.allowExpunge {
		return errExpungeNotAllowed
	}
	enc := newResponseEncoder(w.conn)
	defer enc.end()
	enc.Atom("*").SP().Atom("VANISHED").SP()
	if earlier {
		enc.Special('(').Atom("EARLIER").Special(')').SP()
	}
	enc.NumSet(uids)
	return enc.CRLF()
}

// WriteMessageFlagsModSeq writes a FETCH response with FLAGS and MODSEQ,
// as an update sends after CONDSTORE is enabled.
func (w *UpdateWriter) WriteMessageFlagsModSeq(seqNum uint32, uid imap.UID, flags []imap.Flag, modSeq uint64) error {
	fetchWriter := &FetchWriter{conn: w.conn}
	respWriter := fetchWriter.CreateMessage(seqNum)
	if uid != 0 {
		respWriter.WriteUID(uid)
	}
	respWriter.WriteFlags(flags)
	respWriter.WriteModSeq(modSeq)
	return respWriter.Close()
}

// writeHighestModSeq writes the HIGHESTMODSEQ response code of SELECT.
func (c *Conn) writeHighestModSeq(v uint64) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("OK").SP().Special('[').Atom("HIGHESTMODSEQ").SP().ModSeq(v).Special(']')
	enc.SP().Text("Highest")
	return enc.CRLF()
}
