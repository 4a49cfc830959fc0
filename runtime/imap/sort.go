package imap

import (
	"cmp"
	"mime"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailstack/terraform-provider-mailstack/third_party/go-imap/imapserver"
)

var _ imapserver.SessionSort = (*session)(nil)

// sortKeys are the values a message is sorted by.
type sortKeys struct {
	seq, uid uint32
	arrival  time.Time
	date     time.Time
	size     int64
	subject  string
	from, to string
	cc       string
	// displayFrom and displayTo are SORT=DISPLAY's keys (RFC 5957).
	displayFrom, displayTo string
}

// Sort implements SORT and UID SORT (RFC 5256 3): the messages matching
// criteria, ordered by the keys in turn, ties by sequence number.
func (s *session) Sort(kind imapserver.NumKind, keys []imapserver.SortCriterion, criteria *imap.SearchCriteria) ([]uint32, error) {
	needHeader := slices.ContainsFunc(keys, func(k imapserver.SortCriterion) bool {
		return k.Key != imapserver.SortKeyArrival && k.Key != imapserver.SortKeySize
	})
	var msgs []sortKeys
	err := s.matching(criteria, func(c *candidate) error {
		k := sortKeys{seq: c.seq, uid: c.info.UID, arrival: c.info.Date, date: c.info.Date, size: c.info.Size}
		if needHeader {
			h := c.header()
			// RFC 5256 3, DATE: the sent date, or the internal date
			// when there is none.
			if d, err := h.Date(); err == nil && !d.IsZero() {
				k.date = d
			}
			subject, _ := h.Text("Subject")
			if subject == "" {
				subject = h.Get("Subject")
			}
			k.subject = BaseSubject(subject)
			env := c.envelope(h)
			k.from, k.to, k.cc = firstMailbox(env.From), firstMailbox(env.To), firstMailbox(env.Cc)
			k.displayFrom, k.displayTo = displayName(env.From, h.Get("From")), displayName(env.To, h.Get("To"))
		}
		msgs = append(msgs, k)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(msgs, func(a, b sortKeys) int {
		for _, k := range keys {
			var r int
			switch k.Key {
			case imapserver.SortKeyArrival:
				r = a.arrival.Compare(b.arrival)
			case imapserver.SortKeyDate:
				r = a.date.Compare(b.date)
			case imapserver.SortKeySize:
				r = cmp.Compare(a.size, b.size)
			case imapserver.SortKeySubject:
				r = strings.Compare(a.subject, b.subject)
			case imapserver.SortKeyFrom:
				r = strings.Compare(a.from, b.from)
			case imapserver.SortKeyTo:
				r = strings.Compare(a.to, b.to)
			case imapserver.SortKeyCc:
				r = strings.Compare(a.cc, b.cc)
			case imapserver.SortKeyDisplayFrom:
				r = strings.Compare(a.displayFrom, b.displayFrom)
			case imapserver.SortKeyDisplayTo:
				r = strings.Compare(a.displayTo, b.displayTo)
			}
			if k.Reverse {
				r = -r
			}
			if r != 0 {
				return r
			}
		}
		return cmp.Compare(a.seq, b.seq)
	})
	out := make([]uint32, len(msgs))
	for i, m := range msgs {
		if kind == imapserver.NumKindUID {
			out[i] = m.uid
		} else {
			out[i] = m.seq
		}
	}
	return out, nil
}

// firstMailbox is the addr-mailbox of the first address, in upper case
// for i;ascii-casemap (RFC 5256 3: FROM, TO, CC).
func firstMailbox(list []imap.Address) string {
	for _, a := range list {
		if a.Host != "" || a.Mailbox != "" {
			return asciiUpper(a.Mailbox)
		}
	}
	return ""
}

// displayName is RFC 5957's sort key: the first address's display name
// (decoded), else its addr-spec, or the name of the group it opens; for a
// field that holds no parseable address, the field itself.
func displayName(list []imap.Address, raw string) string {
	for _, a := range list {
		if a.Host == "" {
			if a.Mailbox != "" {
				return asciiUpper(a.Mailbox) // a group sorts by its name
			}
			continue // a group's end
		}
		name, _, _ := strings.Cut(a.Name, "\x00") // without a source route
		if name != "" {
			return asciiUpper(name)
		}
		return asciiUpper(a.Mailbox + "@" + a.Host)
	}
	if d, err := wordDecoder.DecodeHeader(raw); err == nil {
		raw = d
	}
	return asciiUpper(strings.TrimSpace(raw))
}

var wordDecoder = mime.WordDecoder{}

// BaseSubject extracts the base subject of RFC 5256 2.1, upper-cased for
// the i;ascii-casemap comparator, so that "Re: [fwd: Hello] (fwd)" and
// "hello" sort together.
func BaseSubject(subject string) string {
	base, _ := baseSubject(subject)
	return base
}

// baseSubject is BaseSubject, also reporting whether the subject marks a
// reply or forward: whether a leader, a "(fwd)" trailer or a "[fwd: ]"
// wrapper was removed (RFC 5256 4, REFERENCES step 5).
func baseSubject(subject string) (string, bool) {
	// (1) Decode encoded words; tabs and runs of white space become one
	// space.
	if d, err := wordDecoder.DecodeHeader(subject); err == nil {
		subject = d
	}
	subject = strings.Join(strings.FieldsFunc(subject, func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' }), " ")
	reply := false
	for {
		// (2) Trailing "(fwd)" and white space.
		for {
			t := strings.TrimRight(subject, " ")
			if strings.HasSuffix(strings.ToLower(t), "(fwd)") {
				t, reply = t[:len(t)-len("(fwd)")], true
			}
			if t == subject {
				break
			}
			subject = t
		}
		// (3)-(5) Leading subj-leader and subj-blob, as long as they go.
		for {
			t, refwd := stripLeader(subject)
			reply = reply || refwd
			if b, ok := cutBlob(t); ok && b != "" {
				t = b
			}
			if t == subject {
				break
			}
			subject = t
		}
		// (6) "[fwd: ...]" around it all.
		lower := strings.ToLower(subject)
		if strings.HasPrefix(lower, "[fwd:") && strings.HasSuffix(subject, "]") {
			subject, reply = strings.TrimLeft(subject[len("[fwd:"):len(subject)-1], " "), true
			continue
		}
		return asciiUpper(subject), reply
	}
}

// stripLeader removes one subj-leader: white space, or blobs followed by
// "re", "fw" or "fwd", an optional blob and ":"; refwd says it was the
// latter.
func stripLeader(s string) (rest string, refwd bool) {
	if strings.HasPrefix(s, " ") {
		return strings.TrimLeft(s, " "), false
	}
	t := s
	for {
		b, ok := cutBlob(t)
		if !ok {
			break
		}
		t = b
	}
	lower := strings.ToLower(t)
	switch {
	case strings.HasPrefix(lower, "re"):
		rest = t[2:]
	case strings.HasPrefix(lower, "fwd"):
		rest = t[3:]
	case strings.HasPrefix(lower, "fw"):
		rest = t[2:]
	default:
		return s, false
	}
	rest = strings.TrimLeft(rest, " ")
	if b, ok := cutBlob(rest); ok {
		rest = b
	}
	if !strings.HasPrefix(rest, ":") {
		return s, false
	}
	return rest[1:], true
}

// asciiUpper is i;ascii-casemap's folding: a-z only (RFC 4790 9.2).
func asciiUpper(s string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' {
			return r - ('a' - 'A')
		}
		return r
	}, s)
}

// cutBlob removes a leading subj-blob, "[" *BLOBCHAR "]" *WSP, and reports
// whether there was one.
func cutBlob(s string) (string, bool) {
	if !strings.HasPrefix(s, "[") {
		return s, false
	}
	end := strings.IndexAny(s[1:], "[]")
	if end < 0 || s[1+end] != ']' {
		return s, false
	}
	return strings.TrimLeft(s[end+2:], " "), true
}
