package imapserver

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/mail"
)

// routeSep separates a display name from an obsolete source route
// ("@route1,@route2", RFC 5322 4.4) in imap.Address.Name, which has no field
// for the route. ExtractEnvelope puts it there and writeAddressList takes it
// out as the address's adl (RFC 3501 7.4.2); no header can put a NUL there.
const routeSep = "\x00"

// parseAddressList parses the address-list of header field k into the
// IMAP envelope form: group syntax becomes a group-start marker (mailbox
// is the group name, host NIL) and a group-end marker (all NIL), as RFC
// 3501 7.4.2 specifies; members that cannot be parsed are left out.
func parseAddressList(mh mail.Header, k string) []imap.Address {
	value := mh.Get(k)
	if strings.TrimSpace(value) == "" {
		return nil
	}
	var (
		out   []imap.Address
		item  strings.Builder
		group bool
	)
	flush := func() {
		if a, ok := parseMailbox(item.String()); ok {
			out = append(out, a)
		}
		item.Reset()
	}
	quoted, comment, angle := false, 0, false
	for i := 0; i < len(value); i++ {
		ch := value[i]
		switch {
		case quoted:
			if ch == '\\' && i+1 < len(value) {
				item.WriteByte(ch)
				i++
				ch = value[i]
			} else if ch == '"' {
				quoted = false
			}
		case comment > 0:
			if ch == '\\' && i+1 < len(value) {
				item.WriteByte(ch)
				i++
				ch = value[i]
			} else if ch == '(' {
				comment++
			} else if ch == ')' {
				comment--
			}
		case ch == '"':
			quoted = true
		case ch == '(':
			comment++
		case ch == '<':
			angle = true
		case ch == '>':
			angle = false
		case angle:
			// '@route,@route:' inside angle brackets is not a separator.
		case ch == ':' && !group:
			name := strings.TrimSpace(stripComments(item.String()))
			out = append(out, imap.Address{Mailbox: unquote(name)})
			item.Reset()
			group = true
			continue
		case ch == ';' && group:
			flush()
			out = append(out, imap.Address{})
			group = false
			continue
		case ch == ',':
			flush()
			continue
		}
		item.WriteByte(ch)
	}
	flush()
	if group {
		out = append(out, imap.Address{})
	}
	return out
}

// parseMailbox parses one mailbox ("Name <user@host>", "user@host
// (Name)", "<@route:user@host>").
func parseMailbox(s string) (imap.Address, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return imap.Address{}, false
	}
	var route string
	if i := strings.Index(s, "<@"); i >= 0 {
		if j := strings.IndexByte(s[i:], ':'); j > 0 && !strings.ContainsAny(s[i:i+j], "> ") {
			route = s[i+1 : i+j]
			s = s[:i+1] + s[i+j+1:]
		}
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		// Comments inside the address ("<user (c)@ (c) host>") defeat
		// the parser; without them the address is plain.
		if a, err = mail.ParseAddress(squeezeAngle(stripComments(s))); err != nil {
			return imap.Address{}, false
		}
	}
	mailbox, host, ok := strings.Cut(a.Address, "@")
	if !ok {
		return imap.Address{}, false
	}
	name := a.Name
	if route != "" {
		name += routeSep + route
	}
	return imap.Address{Name: name, Mailbox: mailbox, Host: host}, true
}

// stripComments removes RFC 5322 comments.
func stripComments(s string) string {
	var b strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '(':
			depth++
		case ch == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteByte(ch)
		}
	}
	return b.String()
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return strings.ReplaceAll(strings.ReplaceAll(s[1:len(s)-1], `\"`, `"`), `\\`, `\`)
	}
	return s
}

// squeezeAngle removes the white space inside <...>, which RFC 5322's
// obsolete syntax allows around the '@' of an addr-spec.
func squeezeAngle(s string) string {
	i, j := strings.IndexByte(s, '<'), strings.LastIndexByte(s, '>')
	if i < 0 || j < i {
		return s
	}
	return s[:i] + strings.Join(strings.Fields(s[i:j]), "") + s[j:]
}
