package imap

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
	"github.com/mailstack/terraform-provider-mailstack/third_party/go-imap/imapserver"
)

var _ imapserver.SessionCatenate = (*session)(nil)

// CatenateURL serves the URL parts of CATENATE (RFC 4469): the section of
// one of the user's own messages that an IMAP URL (RFC 5092) names. A
// missing target mailbox answers TRYCREATE before any URL is looked at, as
// a plain APPEND would; anything the URL does not name answers BADURL.
func (s *session) CatenateURL(mailbox, rawURL string) ([]byte, error) {
	if _, err := s.srv.store.Status(s.user, mailbox); err != nil {
		return nil, s.imapError(err, imap.ResponseCodeTryCreate)
	}
	u, err := parseMessageURL(rawURL, s.user)
	if err != nil {
		return nil, badURL(rawURL, err.Error())
	}
	st, err := s.srv.store.Status(s.user, u.mailbox)
	if errors.Is(err, store.ErrNotFound) {
		return nil, badURL(rawURL, "No such mailbox")
	} else if err != nil {
		return nil, s.imapError(err, imap.ResponseCodeNonExistent)
	}
	if u.uidValidity != 0 && u.uidValidity != st.UIDValidity {
		return nil, badURL(rawURL, "UIDVALIDITY does not match the mailbox")
	}
	infos, err := s.srv.store.Lookup(s.user, u.mailbox, []uint32{u.uid})
	if err != nil {
		return nil, s.imapError(err, imap.ResponseCodeNonExistent)
	}
	if len(infos) == 0 {
		return nil, badURL(rawURL, "No message with that UID")
	}
	content, err := s.srv.store.ReadBlob(infos[0].Body, infos[0].Size, nil)
	if errors.Is(err, store.ErrNotFound) {
		return nil, badURL(rawURL, "No message with that UID") // expunged meanwhile
	} else if err != nil {
		return nil, s.imapError(err, imap.ResponseCodeNonExistent)
	}
	return imapserver.ExtractBodySection(bytes.NewReader(content), u.section), nil
}

// badURL refuses a CATENATE URL with the BADURL code, which carries the URL
// when it can (RFC 4469 5: url-resp-text has no "]" nor line break).
func badURL(rawURL, text string) error {
	code := imap.ResponseCode("BADURL")
	if rawURL != "" && !strings.ContainsAny(rawURL, "]\r\n\x00") {
		code += imap.ResponseCode(" " + rawURL)
	}
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: text}
}

// messageURL is an IMAP URL naming a message part (RFC 5092 imessagepart).
type messageURL struct {
	mailbox     string
	uidValidity uint32 // 0: any
	uid         uint32
	section     *imap.FetchItemBodySection // with the URL's PARTIAL
}

// parseMessageURL parses an IMAP URL that names a message part of user's:
// a path on this server ("/INBOX;UIDVALIDITY=5/;UID=3/;SECTION=1.TEXT"),
// or an absolute "imap://" URL whose user, if it names one, is user. The
// host is not checked: the server answers to names it does not know.
// URLAUTH URLs (RFC 4467) are not served.
func parseMessageURL(raw, user string) (*messageURL, error) {
	path := raw
	if len(raw) >= 7 && strings.EqualFold(raw[:7], "imap://") {
		authority, rest, ok := strings.Cut(raw[7:], "/")
		if !ok {
			return nil, errors.New("URL names no message")
		}
		if userinfo, _, ok := strings.Cut(authority, "@"); ok {
			name, _, _ := strings.Cut(userinfo, ";")
			if name, err := url.PathUnescape(name); err != nil || name != "" && !sameUser(name, user) {
				return nil, errors.New("URL names another user's mail")
			}
		}
		path = "/" + rest
	}
	if !strings.HasPrefix(path, "/") {
		return nil, errors.New("relative URL: want /mailbox/;UID=n")
	}
	parts := strings.Split(path[1:], "/;")
	u := &messageURL{section: &imap.FetchItemBodySection{}}
	mbox, validity, hasValidity := strings.Cut(parts[0], ";")
	name, err := url.PathUnescape(mbox)
	if err != nil || name == "" {
		return nil, errors.New("URL names no mailbox")
	}
	if strings.EqualFold(name, "INBOX") {
		name = "INBOX"
	}
	u.mailbox = name
	if hasValidity {
		v, ok := urlParam(validity, "UIDVALIDITY")
		if u.uidValidity, err = parseNZ(v); !ok || err != nil {
			return nil, errors.New("bad UIDVALIDITY")
		}
	}
	for i, p := range parts[1:] {
		key, value, _ := strings.Cut(p, "=")
		switch strings.ToUpper(key) {
		case "UID":
			if i != 0 {
				return nil, errors.New("UID must follow the mailbox")
			}
			if u.uid, err = parseNZ(value); err != nil {
				return nil, errors.New("bad UID")
			}
		case "SECTION":
			s, err := url.PathUnescape(value)
			if err != nil {
				return nil, errors.New("bad SECTION")
			}
			partial := u.section.Partial
			if u.section, err = imapserver.ParseSection(s); err != nil {
				return nil, fmt.Errorf("bad SECTION: %v", err)
			}
			u.section.Partial = partial
		case "PARTIAL":
			off, size, hasSize := strings.Cut(value, ".")
			o, err := strconv.ParseUint(off, 10, 32)
			n := uint64(math.MaxInt64 - math.MaxUint32) // no length: to the end
			if err == nil && hasSize {
				n, err = strconv.ParseUint(size, 10, 32)
				if n == 0 {
					err = errors.New("zero length")
				}
			}
			if err != nil {
				return nil, errors.New("bad PARTIAL")
			}
			u.section.Partial = &imap.SectionPartial{Offset: int64(o), Size: int64(n)}
		default:
			return nil, fmt.Errorf("URL part %q is not served", key)
		}
	}
	if u.uid == 0 {
		return nil, errors.New("URL names no message: want /;UID=n")
	}
	return u, nil
}

// urlParam returns the value of "KEY=value" when its key is key.
func urlParam(p, key string) (string, bool) {
	k, v, ok := strings.Cut(p, "=")
	return v, ok && strings.EqualFold(k, key)
}

// parseNZ parses a non-zero 32-bit number (RFC 5092 nz-number).
func parseNZ(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err == nil && (n == 0 || s[0] == '0') {
		err = errors.New("not a non-zero number")
	}
	return uint32(n), err
}

// sameUser reports whether the URL's user is the logged-in canonical
// address.
func sameUser(name, user string) bool {
	addr, err := store.CanonicalAddress(name)
	return err == nil && addr == user
}
