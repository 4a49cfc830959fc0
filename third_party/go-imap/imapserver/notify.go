package imapserver

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailstack/terraform-provider-mailstack/third_party/go-imap/internal/imapwire"
)

// NOTIFY (RFC 5465): the client names the mailboxes and the events it
// wants to hear of, and the server tells of them as they happen, without
// the client polling each mailbox with STATUS.

// NotifyEvent is a NOTIFY event (RFC 5465 5), spelt as the RFC does.
type NotifyEvent string

// The events a SessionNotify may serve.
const (
	NotifyMessageNew         NotifyEvent = "MessageNew"
	NotifyMessageExpunge     NotifyEvent = "MessageExpunge"
	NotifyFlagChange         NotifyEvent = "FlagChange"
	NotifyMailboxName        NotifyEvent = "MailboxName"
	NotifySubscriptionChange NotifyEvent = "SubscriptionChange"
)

// NotifyEvents are the events served, in the order BADEVENT lists them.
var NotifyEvents = []NotifyEvent{NotifyMessageNew, NotifyMessageExpunge, NotifyFlagChange, NotifyMailboxName, NotifySubscriptionChange}

// NotifyFilter kinds (RFC 5465 6).
const (
	NotifySelected        = "SELECTED"
	NotifySelectedDelayed = "SELECTED-DELAYED"
	NotifyInboxes         = "INBOXES"
	NotifyPersonal        = "PERSONAL"
	NotifySubscribed      = "SUBSCRIBED"
	NotifySubtree         = "SUBTREE"
	NotifyMailboxes       = "MAILBOXES"
)

// NotifyGroup is one event group of NOTIFY SET: the mailboxes a filter
// names and the events wanted for them (none: NONE).
type NotifyGroup struct {
	Filter    string   // one of the Notify* filter kinds
	Mailboxes []string // for NotifySubtree and NotifyMailboxes
	Events    []NotifyEvent
}

// NotifyOptions is NOTIFY SET; nil stands for NOTIFY NONE.
type NotifyOptions struct {
	Status bool // send the STATUS of each mailbox with message events now
	Groups []NotifyGroup
}

// SessionNotify is a session that serves NOTIFY. Notify replaces what the
// session tells of, or stops it for nil options, and writes the initial
// STATUS responses with w. Events happen whenever: the session writes them
// with the UpdateWriter of Conn.Unsolicited, except for the selected
// mailbox, whose changes go out as Poll and Idle report them.
type SessionNotify interface {
	Session
	Notify(w *UpdateWriter, options *NotifyOptions) error
}

// Unsolicited returns a writer for updates sent while no command may be
// running (NOTIFY): STATUS and LIST, never EXPUNGE. Each response is
// written whole, between the responses of a running command.
func (c *Conn) Unsolicited() *UpdateWriter {
	return &UpdateWriter{conn: c}
}

// WriteStatus writes a STATUS response with the items options asks for.
func (w *UpdateWriter) WriteStatus(data *imap.StatusData, options *imap.StatusOptions) error {
	return w.conn.writeStatus(data, options)
}

// WriteList writes a LIST response, as NOTIFY's MailboxName and
// SubscriptionChange events do (RFC 5465 5.4, 5.5).
func (w *UpdateWriter) WriteList(data *imap.ListData) error {
	return w.conn.writeList(data)
}

func (c *Conn) handleNotify(dec *imapwire.Decoder) error {
	var verb string
	if !dec.ExpectSP() || !dec.ExpectAtom(&verb) {
		return dec.Err()
	}
	var options *NotifyOptions
	switch strings.ToUpper(verb) {
	case "NONE":
	case "SET":
		options = &NotifyOptions{}
		if !dec.ExpectSP() {
			return dec.Err()
		}
		var atom string
		if dec.Atom(&atom) {
			if !strings.EqualFold(atom, "STATUS") || !dec.ExpectSP() {
				return newClientBugError("NOTIFY SET wants STATUS or event groups")
			}
			options.Status = true
		}
		for {
			var g NotifyGroup
			if err := dec.ExpectList(func() error { return readNotifyGroup(dec, &g) }); err != nil {
				return err
			}
			options.Groups = append(options.Groups, g)
			if !dec.SP() {
				break
			}
		}
	default:
		return newClientBugError("NOTIFY wants SET or NONE")
	}
	if !dec.ExpectCRLF() {
		return dec.Err()
	}
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}
	sess, ok := c.session.(SessionNotify)
	if !ok {
		return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "NOTIFY is not supported"}
	}
	if options != nil {
		for _, g := range options.Groups {
			for _, e := range g.Events {
				if e == "" {
					return errBadEvent()
				}
			}
		}
	}
	return sess.Notify(&UpdateWriter{conn: c}, options)
}

// readNotifyGroup reads the inside of an event group: a filter, a space
// and the events or NONE. An event it does not serve is left "" for the
// command to refuse with BADEVENT once the whole command is read.
func readNotifyGroup(dec *imapwire.Decoder, g *NotifyGroup) error {
	var filter string
	if !dec.ExpectAtom(&filter) {
		return dec.Err()
	}
	g.Filter = strings.ToUpper(filter)
	switch g.Filter {
	case NotifySelected, NotifySelectedDelayed, NotifyInboxes, NotifyPersonal, NotifySubscribed:
	case NotifySubtree, NotifyMailboxes:
		if !dec.ExpectSP() {
			return dec.Err()
		}
		readOne := func() error {
			var name string
			if !dec.ExpectMailbox(&name) {
				return dec.Err()
			}
			g.Mailboxes = append(g.Mailboxes, name)
			return nil
		}
		isList, err := dec.List(readOne)
		if err != nil {
			return err
		}
		if !isList {
			if err := readOne(); err != nil {
				return err
			}
		}
	default:
		return newClientBugError("unknown NOTIFY filter")
	}
	if !dec.ExpectSP() {
		return dec.Err()
	}
	var none string
	if dec.Atom(&none) {
		if !strings.EqualFold(none, "NONE") {
			return newClientBugError("NOTIFY events want a list or NONE")
		}
		return nil
	}
	// Not dec.ExpectList: MessageNew may be followed by a list of FETCH
	// items, which only a space tells from the next event.
	if !dec.ExpectSpecial('(') {
		return dec.Err()
	}
	for {
		var name string
		if !dec.ExpectAtom(&name) {
			return dec.Err()
		}
		var event NotifyEvent
		for _, e := range NotifyEvents {
			if strings.EqualFold(name, string(e)) {
				event = e
			}
		}
		if dec.Special(')') {
			g.Events = append(g.Events, event)
			return nil
		}
		if !dec.ExpectSP() {
			return dec.Err()
		}
		if event == NotifyMessageNew && dec.Special('(') {
			// MessageNew's FETCH items are not served: BADEVENT.
			event = ""
			depth := 0
			var items string
			dec.Func(&items, func(ch byte) bool {
				switch ch {
				case '(':
					depth++
				case ')':
					depth--
				}
				return depth >= 0 && ch != '\r' && ch != '\n'
			})
			if !dec.ExpectSpecial(')') {
				return dec.Err()
			}
			if dec.Special(')') {
				g.Events = append(g.Events, event)
				return nil
			}
			if !dec.ExpectSP() {
				return dec.Err()
			}
		}
		g.Events = append(g.Events, event)
	}
}

// errBadEvent refuses an event the server does not serve, listing those
// it does (RFC 5465 8).
func errBadEvent() error {
	names := make([]string, len(NotifyEvents))
	for i, e := range NotifyEvents {
		names[i] = string(e)
	}
	return &imap.Error{
		Type: imap.StatusResponseTypeNo,
		Code: imap.ResponseCode("BADEVENT (" + strings.Join(names, " ") + ")"),
		Text: "Event not supported",
	}
}
