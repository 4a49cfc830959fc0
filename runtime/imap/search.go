package imap

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
	"github.com/mailstack/terraform-provider-mailstack/third_party/go-imap/imapserver"
)

// Search implements SEARCH and UID SEARCH (RFC 9051 6.4.4) with ESEARCH
// return options and SEARCHRES (RFC 5182). Messages are read from disk only
// when a criterion needs the header or body.
func (s *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	var (
		data imap.SearchData
		seqs imap.SeqSet
		uids imap.UIDSet

		allModSeq, minModSeq, maxModSeq uint64
	)
	err := s.matching(criteria, func(c *candidate) error {
		m := c.info
		uids.AddNum(imap.UID(m.UID))
		num := c.seq
		if kind == imapserver.NumKindUID {
			num = m.UID
		} else {
			seqs.AddNum(c.seq)
		}
		if data.Min == 0 || num < data.Min {
			data.Min, minModSeq = num, m.ModSeq
		}
		if num >= data.Max {
			data.Max, maxModSeq = num, m.ModSeq
		}
		data.Count++
		allModSeq = max(allModSeq, m.ModSeq)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if kind == imapserver.NumKindUID {
		data.All = uids
	} else {
		data.All = seqs
	}
	// RFC 7162 3.1.5: the highest MODSEQ of the messages returned; MIN and
	// MAX alone return one message each.
	data.ModSeq = allModSeq
	if !options.ReturnAll && !options.ReturnCount {
		data.ModSeq = 0
		if options.ReturnMin {
			data.ModSeq = minModSeq
		}
		if options.ReturnMax {
			data.ModSeq = max(data.ModSeq, maxModSeq)
		}
	}
	if options.ReturnSave {
		s.sel.searchRes = uids
	}
	return &data, nil
}

// matching calls found, in sequence order, for every message of the
// selected mailbox that satisfies criteria. A candidate's content is only
// valid during the call.
func (s *session) matching(criteria *imap.SearchCriteria, found func(c *candidate) error) error {
	sel := s.sel
	var live []int
	for i, m := range sel.msgs {
		if !m.gone {
			live = append(live, i)
		}
	}
	infos, err := s.srv.store.Lookup(s.user, sel.name, sel.uidsOf(live))
	if err != nil {
		return s.imapError(err, imap.ResponseCodeNonExistent)
	}
	var (
		buf     []byte
		maxUID  uint32
		numMsgs = uint32(len(sel.msgs))
	)
	if len(sel.msgs) > 0 {
		maxUID = sel.msgs[len(sel.msgs)-1].uid
	}
	for _, m := range infos {
		i := sel.indexOf(m.UID)
		if i < 0 {
			continue
		}
		c := &candidate{sel: sel, blobs: s.srv.store, info: m, seq: uint32(i + 1), numMsgs: numMsgs, maxUID: maxUID, buf: &buf}
		ok := c.match(criteria)
		if c.err != nil {
			return s.imapError(c.err, imap.ResponseCodeNonExistent)
		}
		if ok {
			if err := found(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// candidate is one message under test, with its content loaded lazily.
type candidate struct {
	sel     *selected
	blobs   store.Blobs
	info    store.MessageInfo
	seq     uint32
	numMsgs uint32
	maxUID  uint32
	buf     *[]byte // storage reused across candidates

	content []byte
	loaded  bool
	env     *imap.Envelope
	err     error
}

func (c *candidate) load() []byte {
	if !c.loaded {
		c.loaded = true
		content, err := c.blobs.ReadBlob(c.info.Body, c.info.Size, *c.buf)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				c.err = err
			}
			return nil
		}
		*c.buf, c.content = content, content
	}
	return c.content
}

func (c *candidate) header() mail.Header {
	h, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(c.load())))
	return mail.Header{Header: gomessage.Header{Header: h}}
}

// match reports whether the message satisfies every key of criteria.
func (c *candidate) match(criteria *imap.SearchCriteria) bool {
	for _, set := range criteria.SeqNum {
		if imap.IsSearchRes(set) {
			if !c.sel.searchRes.Contains(imap.UID(c.info.UID)) {
				return false
			}
		} else if !inSet(set, c.seq, c.numMsgs) {
			return false
		}
	}
	for _, set := range criteria.UID {
		if imap.IsSearchRes(set) {
			set = c.sel.searchRes
		}
		if !inSet(set, c.info.UID, c.maxUID) {
			return false
		}
	}
	if !matchDate(c.info.Date, criteria.Since, criteria.Before) {
		return false
	}
	for _, f := range criteria.Flag {
		if !c.hasFlag(f) {
			return false
		}
	}
	for _, f := range criteria.NotFlag {
		if c.hasFlag(f) {
			return false
		}
	}
	if criteria.ModSeq != nil && c.info.ModSeq < criteria.ModSeq.ModSeq {
		return false // RFC 7162 3.1.5
	}
	if criteria.Larger != 0 && c.info.Size <= criteria.Larger {
		return false
	}
	if criteria.Smaller != 0 && c.info.Size >= criteria.Smaller {
		return false
	}
	if len(criteria.Header) > 0 || !criteria.SentSince.IsZero() || !criteria.SentBefore.IsZero() {
		h := c.header()
		for _, hf := range criteria.Header {
			if !matchFields(h.FieldsByKey(hf.Key), hf.Value) && !c.matchAddresses(h, hf.Key, hf.Value) {
				return false
			}
		}
		if !criteria.SentSince.IsZero() || !criteria.SentBefore.IsZero() {
			t, err := h.Date()
			if err != nil || !matchDate(t, criteria.SentSince, criteria.SentBefore) {
				return false
			}
		}
	}
	for _, text := range criteria.Body {
		if !c.matchContent(text, false) {
			return false
		}
	}
	for _, text := range criteria.Text {
		if !c.matchContent(text, true) {
			return false
		}
	}
	for i := range criteria.Not {
		if c.match(&criteria.Not[i]) {
			return false
		}
	}
	for i := range criteria.Or {
		if !c.match(&criteria.Or[i][0]) && !c.match(&criteria.Or[i][1]) {
			return false
		}
	}
	return true
}

// inSet reports whether num is in set, with "*" standing for max.
func inSet(set imap.NumSet, num, max uint32) bool {
	switch set := set.(type) {
	case imap.SeqSet:
		for _, r := range set {
			if start, stop := staticRange(r.Start, r.Stop, max); num >= start && num <= stop {
				return true
			}
		}
	case imap.UIDSet:
		for _, r := range set {
			if start, stop := staticRange(uint32(r.Start), uint32(r.Stop), max); num >= start && num <= stop {
				return true
			}
		}
	}
	return false
}

// matchDate compares dates only, ignoring time and zone (RFC 9051 6.4.4).
func matchDate(t, since, before time.Time) bool {
	y, m, d := t.Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	if !since.IsZero() && day.Before(since) {
		return false
	}
	return before.IsZero() || day.Before(before)
}

// matchFields: an empty value matches any message with the field.
func matchFields(fields gomessage.HeaderFields, value string) bool {
	if value == "" {
		return fields.Len() > 0
	}
	value = strings.ToLower(value)
	for fields.Next() {
		if v, err := fields.Text(); err == nil && strings.Contains(strings.ToLower(v), value) {
			return true
		}
	}
	return false
}

// matchContent searches the decoded text parts (and with header, the
// header fields) case-insensitively.
func (c *candidate) matchContent(text string, header bool) bool {
	content := c.load()
	if content == nil {
		return false
	}
	e, err := gomessage.Read(bytes.NewReader(content))
	if e == nil {
		return false
	}
	_ = err // unknown charsets and encodings still give a readable entity
	return matchEntity(e, strings.ToLower(text), header)
}

func matchEntity(e *gomessage.Entity, text string, header bool) bool {
	if header && matchFields(e.Header.Fields(), text) {
		return true
	}
	if mr := e.MultipartReader(); mr != nil {
		for {
			part, err := mr.NextPart()
			if err != nil {
				return false
			}
			if matchEntity(part, text, header) {
				return true
			}
		}
	}
	t, _, _ := e.Header.ContentType()
	if t != "" && !strings.HasPrefix(t, "text/") && !strings.HasPrefix(t, "message/") {
		return false
	}
	body, err := io.ReadAll(e.Body)
	if err != nil {
		return false
	}
	return bytes.Contains(bytes.ToLower(body), []byte(text))
}

// hasFlag tests a flag, \Recent included (SEARCH RECENT, NEW and OLD).
func (c *candidate) hasFlag(f imap.Flag) bool {
	if strings.EqualFold(string(f), string(flagRecent)) {
		return c.sel.isRecent(c.info.UID)
	}
	return c.info.HasFlag(string(f))
}

// matchAddresses matches an address header (FROM, TO, CC, BCC, ...) by its
// parsed addresses as "Name <mailbox@host>", so that comments, quoting and
// encoded names in the field do not hide an address (RFC 9051 6.4.4).
func (c *candidate) matchAddresses(h mail.Header, key, value string) bool {
	env := c.envelope(h)
	var list []imap.Address
	switch strings.ToLower(key) {
	case "from":
		list = env.From
	case "sender":
		list = env.Sender
	case "reply-to":
		list = env.ReplyTo
	case "to":
		list = env.To
	case "cc":
		list = env.Cc
	case "bcc":
		list = env.Bcc
	default:
		return false
	}
	value = strings.ToLower(value)
	for _, a := range list {
		if a.Host == "" {
			continue // group markers
		}
		s := a.Mailbox + "@" + a.Host
		if a.Name != "" {
			s = a.Name + " <" + s + ">"
		}
		if strings.Contains(strings.ToLower(s), value) {
			return true
		}
	}
	return false
}

func (c *candidate) envelope(h mail.Header) *imap.Envelope {
	if c.env == nil {
		c.env = imapserver.ExtractEnvelope(h.Header.Header)
	}
	return c.env
}
