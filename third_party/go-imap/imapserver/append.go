package imapserver

import (
	"bytes"
	"fmt"
	"io"
	"slices"
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
		options, dataExt, err := readAppendOptions(dec)
		if err != nil {
			return c.abortAppend(mailbox, appended, err)
		}
		appendLimit := int64(defaultAppendLimit)
		if appendLimitSession, ok := c.session.(SessionAppendLimit); ok {
			appendLimit = int64(appendLimitSession.AppendLimit())
		}
		if dataExt == "CATENATE" {
			msg, partErr, err := c.readCatenate(dec, mailbox, appendLimit, appendErr)
			if err != nil {
				return c.abortAppend(mailbox, appended, err)
			}
			if appendErr == nil {
				appendErr = partErr
			}
			if appendErr == nil {
				data, err := c.session.Append(mailbox, bytes.NewReader(msg), &options)
				if err != nil {
					appendErr = err
				} else {
					appended = append(appended, data)
				}
			}
			if !dec.SP() {
				break
			}
			continue
		}
		lit, nonSync, err := dec.ExpectLiteralReader()
		if err != nil {
			return c.abortAppend(mailbox, appended, err)
		}
		if lit.Size() > appendLimit {
			return c.abortAppend(mailbox, appended, errTooBig(appendLimit))
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

// errTooBig refuses a message larger than limit.
func errTooBig(limit int64) error {
	return &imap.Error{
		Type: imap.StatusResponseTypeNo,
		Code: imap.ResponseCodeTooBig,
		Text: fmt.Sprintf("Literals are limited to %v bytes for this command", limit),
	}
}

// readAppendOptions reads what precedes one message of APPEND: flags,
// date and a data extension: "UTF8" (whose "(~" it consumes, leaving the
// literal8) or "CATENATE", upper-cased.
func readAppendOptions(dec *imapwire.Decoder) (options imap.AppendOptions, dataExt string, err error) {
	hasFlagList, err := dec.List(func() error {
		flag, err := internal.ExpectFlag(dec)
		if err != nil {
			return err
		}
		options.Flags = append(options.Flags, flag)
		return nil
	})
	if err != nil {
		return options, "", err
	}
	if hasFlagList && !dec.ExpectSP() {
		return options, "", dec.Err()
	}

	t, err := internal.DecodeDateTime(dec)
	if err != nil {
		return options, "", err
	}
	if !t.IsZero() && !dec.ExpectSP() {
		return options, "", dec.Err()
	}
	options.Time = t

	if !dec.Special('~') && dec.Atom(&dataExt) { // ignore literal8 prefix if any for BINARY
		dataExt = strings.ToUpper(dataExt)
		switch dataExt {
		case "UTF8":
			// '~' is the literal8 prefix
			if !dec.ExpectSP() || !dec.ExpectSpecial('(') || !dec.ExpectSpecial('~') {
				return options, "", dec.Err()
			}
		case "CATENATE":
		default:
			return options, "", newClientBugError("Unknown APPEND data extension")
		}
	}
	return options, dataExt, nil
}

// SessionCatenate is a session that serves CATENATE (RFC 4469): it reads
// the data that the IMAP URL of a message part names.
type SessionCatenate interface {
	Session
	// CatenateURL returns the data that url names, for a message to be
	// appended to mailbox. Its error carries TRYCREATE when mailbox does
	// not exist, and BADURL when url names nothing the session can read.
	CatenateURL(mailbox, url string) ([]byte, error)
}

// readCatenate reads the parts of CATENATE after its keyword and returns
// the message they make (RFC 4469 5). After failed, an earlier message's
// failure, it only consumes what the client sends; a part that
// fails returns as partErr once the list is read. err ends the command
// at once: the client broke the syntax, or waits for "+" to send a
// synchronizing literal that is not wanted after a failure.
func (c *Conn) readCatenate(dec *imapwire.Decoder, mailbox string, limit int64, failed error) (msg []byte, partErr, err error) {
	sess, ok := c.session.(SessionCatenate)
	if !ok {
		return nil, nil, newClientBugError("CATENATE is not supported")
	}
	prior := failed
	if failed == nil {
		failed = c.checkState(imap.ConnStateAuthenticated)
	}
	if !dec.ExpectSP() || !dec.ExpectSpecial('(') {
		return nil, nil, dec.Err()
	}
	for {
		var kind string
		if !dec.ExpectAtom(&kind) || !dec.ExpectSP() {
			return nil, nil, dec.Err()
		}
		switch strings.ToUpper(kind) {
		case "URL":
			var url string
			if !dec.ExpectAString(&url) {
				return nil, nil, dec.Err()
			}
			if failed != nil {
				break
			}
			data, err := sess.CatenateURL(mailbox, url)
			switch {
			case err != nil:
				failed = err
			case int64(len(msg)+len(data)) > limit:
				failed = errTooBig(limit)
			default:
				msg = append(msg, data...)
			}
		case "TEXT":
			lit, nonSync, err := dec.ExpectLiteralReader()
			if err != nil {
				return nil, nil, err
			}
			if failed == nil && int64(len(msg))+lit.Size() > limit {
				failed = errTooBig(limit)
			}
			if failed != nil && !nonSync {
				return nil, nil, failed
			}
			if err := c.acceptLiteral(lit.Size(), nonSync); err != nil {
				return nil, nil, err
			}
			c.setReadTimeout(literalReadTimeout)
			if failed == nil {
				// Read to EOF, which closes the literal.
				buf := bytes.NewBuffer(slices.Grow(msg, int(lit.Size())))
				_, err = buf.ReadFrom(lit)
				msg = buf.Bytes()
			} else {
				_, err = io.Copy(io.Discard, lit)
			}
			c.setReadTimeout(cmdReadTimeout)
			if err != nil {
				return nil, nil, err
			}
		default:
			return nil, nil, newClientBugError("Unknown CATENATE part: want TEXT or URL")
		}
		if dec.Special(')') {
			break
		}
		if !dec.ExpectSP() {
			return nil, nil, dec.Err()
		}
	}
	if failed != prior {
		return nil, failed, nil
	}
	return msg, nil, nil
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
