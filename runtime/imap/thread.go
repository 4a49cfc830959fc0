package imap

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailstack/terraform-provider-mailstack/third_party/go-imap/imapserver"
)

var _ imapserver.SessionThread = (*session)(nil)

// threadMsg is what threading knows of a message.
type threadMsg struct {
	num        uint32 // sequence number or UID, as the client asked
	seq        uint32
	date       time.Time // sent date, or the internal date
	subject    string    // base subject
	reply      bool      // the subject marks a reply or forward
	messageID  string
	references []string // References, else the first In-Reply-To
}

// Thread implements THREAD and UID THREAD (RFC 5256 4) with ORDEREDSUBJECT
// and REFERENCES over the messages that match criteria.
func (s *session) Thread(kind imapserver.NumKind, algorithm imap.ThreadAlgorithm, criteria *imap.SearchCriteria) ([]imapserver.ThreadNode, error) {
	var msgs []*threadMsg
	err := s.matching(criteria, func(c *candidate) error {
		m := &threadMsg{num: c.seq, seq: c.seq, date: c.info.Date}
		if kind == imapserver.NumKindUID {
			m.num = c.info.UID
		}
		h := c.header()
		if d, err := h.Date(); err == nil && !d.IsZero() {
			m.date = d
		}
		subject, err := h.Text("Subject")
		if err != nil {
			subject = h.Get("Subject")
		}
		m.subject, m.reply = baseSubject(subject)
		m.messageID, _ = h.MessageID()
		if refs, err := h.MsgIDList("References"); err == nil && len(refs) > 0 {
			m.references = refs
		} else if irt, err := h.MsgIDList("In-Reply-To"); err == nil && len(irt) > 0 {
			m.references = irt[:1]
		}
		msgs = append(msgs, m)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if algorithm == imap.ThreadOrderedSubject {
		return threadOrderedSubject(msgs), nil
	}
	return threadReferences(msgs), nil
}

// byDate orders messages by sent date, then sequence number.
func byDate(a, b *threadMsg) int {
	if r := a.date.Compare(b.date); r != 0 {
		return r
	}
	return cmp.Compare(a.seq, b.seq)
}

// threadOrderedSubject groups messages by base subject; in each group the
// earliest is the root and the others its replies, by date; groups are
// ordered by their root's date (RFC 5256 4, ORDEREDSUBJECT).
func threadOrderedSubject(msgs []*threadMsg) []imapserver.ThreadNode {
	slices.SortStableFunc(msgs, func(a, b *threadMsg) int {
		if a.subject != b.subject {
			if a.subject < b.subject {
				return -1
			}
			return 1
		}
		return byDate(a, b)
	})
	type group struct {
		root    *threadMsg
		replies []imapserver.ThreadNode
	}
	var groups []*group
	for i, m := range msgs {
		if i > 0 && msgs[i-1].subject == m.subject {
			g := groups[len(groups)-1]
			g.replies = append(g.replies, imapserver.ThreadNode{Num: m.num})
			continue
		}
		groups = append(groups, &group{root: m})
	}
	slices.SortStableFunc(groups, func(a, b *group) int { return byDate(a.root, b.root) })
	out := make([]imapserver.ThreadNode, len(groups))
	for i, g := range groups {
		out[i] = imapserver.ThreadNode{Num: g.root.num, Children: g.replies}
	}
	return out
}

// container is a node of the REFERENCES algorithm: a message, or a
// Message-ID referred to but not present (msg nil).
type container struct {
	msg      *threadMsg
	parent   *container
	children []*container
}

func (c *container) isAncestorOf(d *container) bool {
	for p := d; p != nil; p = p.parent {
		if p == c {
			return true
		}
	}
	return false
}

func (c *container) setParent(p *container) {
	if c.parent != nil {
		c.parent.children = slices.DeleteFunc(c.parent.children, func(x *container) bool { return x == c })
	}
	c.parent = p
	if p != nil {
		p.children = append(p.children, c)
	}
}

// first is the message a container sorts by: its own, or its first
// child's.
func (c *container) first() *threadMsg {
	if c.msg != nil {
		return c.msg
	}
	if len(c.children) > 0 {
		return c.children[0].first()
	}
	return nil
}

func byContainer(a, b *container) int {
	am, bm := a.first(), b.first()
	switch {
	case am == nil && bm == nil:
		return 0
	case am == nil:
		return -1
	case bm == nil:
		return 1
	}
	return byDate(am, bm)
}

// threadReferences is RFC 5256's REFERENCES algorithm (after Jamie
// Zawinski's): link messages by References/In-Reply-To, prune empty
// containers, then join roots with the same base subject.
func threadReferences(msgs []*threadMsg) []imapserver.ThreadNode {
	ids := make(map[string]*container)
	get := func(id string) *container {
		c := ids[id]
		if c == nil {
			c = &container{}
			ids[id] = c
		}
		return c
	}
	slices.SortStableFunc(msgs, func(a, b *threadMsg) int { return cmp.Compare(a.seq, b.seq) })
	var all []*container
	for _, m := range msgs {
		// (1A) A message without a Message-ID, or with one already
		// taken, gets a unique one of its own.
		id := m.messageID
		if id == "" || ids[id] != nil && ids[id].msg != nil {
			id = "\x00" + strconv.Itoa(int(m.seq))
		}
		c := get(id)
		c.msg = m
		all = append(all, c)
		// (1B) Chain the references, each the parent of the next,
		// unless that would make a loop or they are linked already.
		var prev *container
		for _, ref := range m.references {
			r := get(ref)
			if prev != nil && r.parent == nil && !r.isAncestorOf(prev) && r != prev {
				r.setParent(prev)
			}
			prev = r
		}
		// (1C) The last reference is the message's parent.
		if prev != nil && (prev == c || c.isAncestorOf(prev)) {
			prev = nil
		}
		c.setParent(prev)
	}
	// (2) The root set.
	var roots []*container
	seen := make(map[*container]bool)
	for _, c := range ids {
		if c.parent == nil && !seen[c] {
			seen[c] = true
			roots = append(roots, c)
		}
	}
	// (3) Prune: drop empty dummies, promote a dummy's children, except
	// a dummy with several children at the root.
	var prune func(cs []*container, root bool) []*container
	prune = func(cs []*container, root bool) []*container {
		var out []*container
		for _, c := range cs {
			c.children = prune(c.children, false)
			switch {
			case c.msg == nil && len(c.children) == 0:
				continue
			case c.msg == nil && (!root || len(c.children) == 1):
				for _, k := range c.children {
					k.parent = c.parent
				}
				out = append(out, prune(c.children, root)...)
				continue
			}
			out = append(out, c)
		}
		return out
	}
	roots = prune(roots, true)
	for _, r := range roots {
		r.parent = nil
	}
	// (4) Sort each level by date, the dummies by their first child.
	var sortTree func(cs []*container)
	sortTree = func(cs []*container) {
		for _, c := range cs {
			sortTree(c.children)
		}
		slices.SortStableFunc(cs, byContainer)
	}
	sortTree(roots)
	// (5) Join roots that share a base subject.
	subjectOf := func(c *container) (string, bool) {
		m := c.first()
		if m == nil {
			return "", false
		}
		return m.subject, m.reply
	}
	table := make(map[string]*container)
	for _, r := range roots {
		subj, _ := subjectOf(r)
		if subj == "" {
			continue
		}
		// A dummy, or a message that is no reply, is the better
		// representative of a subject.
		old := table[subj]
		if old == nil || r.msg == nil && old.msg != nil || old.msg != nil && r.msg != nil && old.msg.reply && !r.msg.reply {
			table[subj] = r
		}
	}
	var joined []*container
	for _, r := range roots {
		subj, _ := subjectOf(r)
		t := table[subj]
		if subj == "" || t == nil || t == r {
			joined = append(joined, r)
			continue
		}
		switch {
		case t.msg == nil && r.msg == nil:
			for _, k := range slices.Clone(r.children) {
				k.setParent(t)
			}
		case t.msg == nil:
			r.setParent(t)
		case r.msg != nil && r.msg.reply && !t.msg.reply:
			r.setParent(t)
		default:
			// A new dummy holds both, where t was.
			d := &container{}
			i := slices.Index(joined, t)
			t.setParent(d)
			r.setParent(d)
			table[subj] = d
			if i >= 0 {
				joined[i] = d
			} else {
				joined = append(joined, d)
			}
		}
	}
	// (6) Sort again, now that children moved.
	sortTree(joined)
	var convert func(c *container) imapserver.ThreadNode
	convert = func(c *container) imapserver.ThreadNode {
		n := imapserver.ThreadNode{}
		if c.msg != nil {
			n.Num = c.msg.num
		}
		for _, k := range c.children {
			n.Children = append(n.Children, convert(k))
		}
		return n
	}
	out := make([]imapserver.ThreadNode, len(joined))
	for i, r := range joined {
		out[i] = convert(r)
	}
	return out
}
