package imapserver

import (
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailstack/terraform-provider-mailstack/third_party/go-imap/internal"
	"github.com/mailstack/terraform-provider-mailstack/third_party/go-imap/internal/imapwire"
)

// defaultAppendLimit is the default maximum size of an APPEND payload.
const defaultAppendLimit = 100 * 1024 * 1024 // 100MiB

func (c *Conn) handleAppend(tag string, dec *imapwire.Decoder) error {
	var mailbox string
	if !dec.ExpectSP() || !dec.ExpectMailbox(&mailbox) || !dec.ExpectSP() {
		return dec.Err()
	}
	// MULTIAPPEND (RFC 3502): more messages may follow, each after a
	// space, and all are appended or none.
	var (
		appended  []*imap.AppendData
		appendErr error
	)
	for {
		options, dataExt, lit, nonSync, err := readAppendMessage(dec)
		if err != nil {
			return c.abortAppend(mailbox, appended, err)
		}
		appendLimit := int64(defaultAppendLimit)
		if appendLimitSession, ok := c.session.(SessionAppendLimit); ok {
			appendLimit = int64(appendLimitSession.AppendLimit())
		}
		if lit.Size() > appendLimit {
			return c.abortAppend(mailbox, appended, &imap.Error{
				Type: imap.StatusResponseTypeNo,
				Code: imap.ResponseCodeTooBig,
				Text: fmt.Sprintf("Literals are limited to %v bytes for this command", appendLimit),
			})
		}
		if appendErr != nil && !nonSync {
			// The client waits for "+": refusing ends the command.
			return c.abortAppend(mailbox, appended, appendErr)
		}
		if err := c.acceptLiteral(lit.Size(), nonSync); err != nil {
			return c.abortAppend(mailbox, appended, err)
		}

		c.setReadTimeout(literalReadTimeout)
		if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
			io.Copy(io.Discard, lit)
			dec.CRLF()
			c.setReadTimeout(cmdReadTimeout)
			return err
		}
		if appendErr == nil {
			data, err := c.session.Append(mailbox, lit, &options)
			if err != nil {
				appendErr = err
			} else {
				appended = append(appended, data)
			}
		}
		_, discardErr := io.Copy(io.Discard, lit)
		c.setReadTimeout(cmdReadTimeout)
		if discardErr != nil {
			return c.abortAppend(mailbox, appended, discardErr)
		}
		if dataExt != "" && !dec.ExpectSpecial(')') {
			return c.abortAppend(mailbox, appended, dec.Err())
		}
		if !dec.SP() {
			break
		}
	}
	if !dec.ExpectCRLF() {
		return c.abortAppend(mailbox, appended, dec.Err())
	}
	if appendErr != nil {
		return c.abortAppend(mailbox, appended, appendErr)
	}
	if err := c.poll("APPEND"); err != nil {
		return err
	}
	return c.writeAppendOK(tag, appended)
}

// readAppendMessage reads one message of APPEND: flags, date, an optional
// data extension and the literal's header.
func readAppendMessage(dec *imapwire.Decoder) (options imap.AppendOptions, dataExt string, lit *imapwire.LiteralReader, nonSync bool, err error) {
	hasFlagList, err := dec.List(func() error {
		flag, err := internal.ExpectFlag(dec)
		if err != nil {
			return err
		}
		options.Flags = append(options.Flags, flag)
		return nil
	})
	if err != nil {
		return options, "", nil, false, err
	}
	if hasFlagList && !dec.ExpectSP() {
		return options, "", nil, false, dec.Err()
	}

	t, err := internal.DecodeDateTime(dec)
	if err != nil {
		return options, "", nil, false, err
	}
	if !t.IsZero() && !dec.ExpectSP() {
		return options, "", nil, false, dec.Err()
	}
	options.Time = t

	if !dec.Special('~') && dec.Atom(&dataExt) { // ignore literal8 prefix if any for BINARY
		switch strings.ToUpper(dataExt) {
		case "UTF8":
			// '~' is the literal8 prefix
			if !dec.ExpectSP() || !dec.ExpectSpecial('(') || !dec.ExpectSpecial('~') {
				return options, "", nil, false, dec.Err()
			}
		default:
			return options, "", nil, false, newClientBugError("Unknown APPEND data extension")
		}
	}

	lit, nonSync, err = dec.ExpectLiteralReader()
	return options, dataExt, lit, nonSync, err
}

// SessionAppendRollback is a session that can take back messages a
// MULTIAPPEND appended before one of its later messages failed, so that
// none of them stays (RFC 3502 6.3.11).
type SessionAppendRollback interface {
	Session
	RollbackAppend(mailbox string, appended []*imap.AppendData) error
}

// abortAppend takes back what the command appended and returns err.
func (c *Conn) abortAppend(mailbox string, appended []*imap.AppendData, err error) error {
	if len(appended) == 0 {
		return err
	}
	if sess, ok := c.session.(SessionAppendRollback); ok {
		if rerr := sess.RollbackAppend(mailbox, appended); rerr != nil {
			c.server.logger().Printf("taking back a failed MULTIAPPEND: %v", rerr)
		}
	}
	return err
}

func (c *Conn) writeAppendOK(tag string, appended []*imap.AppendData) error {
	enc := newResponseEncoder(c)
	defer enc.end()

	enc.Atom(tag).SP().Atom("OK").SP()
	// UIDPLUS (RFC 4315 3): one UIDVALIDITY, the UIDs as a set.
	var uids imap.UIDSet
	var uidValidity uint32
	for _, data := range appended {
		if data == nil || data.UID == 0 || uidValidity != 0 && data.UIDValidity != uidValidity {
			uids = nil
			break
		}
		uidValidity = data.UIDValidity
		uids.AddNum(data.UID)
	}
	if len(uids) > 0 {
		enc.Special('[')
		enc.Atom("APPENDUID").SP().Number(uidValidity).SP().NumSet(uids)
		enc.Special(']').SP()
	}
	enc.Text("APPEND completed")
	return enc.CRLF()
}
