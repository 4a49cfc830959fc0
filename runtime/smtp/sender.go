package smtp

import (
	"bufio"
	"bytes"
	"net/mail"
	"net/textproto"

	gosmtp "github.com/emersion/go-smtp"
)

// Replies of the header check (RFC 6409 section 8: the MSA may refuse a
// message whose originator fields it will not vouch for).
var (
	replyHeaderFromNotOwned = &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 7, 1},
		Message: "Header From must be the authenticated address"}
	replyNoHeaderFrom = &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 6, 0},
		Message: "Message has no valid From header"}
)

// checkHeaderFrom checks that every address in the message's From (RFC
// 5322 section 3.6.2) and Sender fields is the authenticated user's, so
// that a user cannot make mail look as if it came from someone else. It
// returns the reply to refuse the message with, or nil.
func checkHeaderFrom(msg []byte, user string) *gosmtp.SMTPError {
	hdr, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(msg))).ReadMIMEHeader()
	if err != nil && len(hdr) == 0 {
		return replyNoHeaderFrom
	}
	froms := hdr.Values("From")
	if len(froms) == 0 {
		return replyNoHeaderFrom
	}
	for _, field := range append(froms, hdr.Values("Sender")...) {
		addrs, err := mail.ParseAddressList(field)
		if err != nil || len(addrs) == 0 {
			return replyNoHeaderFrom
		}
		for _, a := range addrs {
			if !sameAddress(a.Address, user) {
				return replyHeaderFromNotOwned
			}
		}
	}
	return nil
}
