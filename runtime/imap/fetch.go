package imap

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/textproto"

	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
	"github.com/mailstack/terraform-provider-mailstack/third_party/go-imap/imapserver"
)

// Fetch implements FETCH and UID FETCH (RFC 9051 6.4.5). Whatever needs
// content reads the message once into a buffer reused across messages,
// except a whole-message BODY[] of a message larger than maxBufferedBody,
// which is streamed from the file. Fetching a body section without .PEEK
// sets \Seen, and the new flags go into that message's response.
func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	sel := s.sel
	uids := sel.uidsOf(sel.resolve(numSet))
	if w.Vanished() {
		// RFC 7162 3.2.6: expunged UIDs of the set first.
		set, _ := numSet.(imap.UIDSet)
		if err := s.writeVanishedSince(w.Updates(), options.ChangedSince, set); err != nil {
			return err
		}
	}
	if len(uids) == 0 {
		return nil
	}
	infos, err := s.srv.store.Lookup(s.user, sel.name, uids)
	if err != nil {
		return s.imapError(err, imap.ResponseCodeNonExistent)
	}
	if options.ChangedSince > 0 {
		// RFC 7162 3.1.4.1: only messages changed since.
		infos = slices.DeleteFunc(infos, func(m store.MessageInfo) bool { return m.ModSeq <= options.ChangedSince })
	}
	condStore := w.Conn().CondStoreEnabled()
	seen := make(map[uint32]bool)
	if !sel.readOnly && marksSeen(options) {
		var unseen []uint32
		for _, m := range infos {
			if !m.HasFlag(store.FlagSeen) {
				unseen = append(unseen, m.UID)
			}
		}
		if len(unseen) > 0 {
			res, err := s.srv.store.SetFlags(s.user, sel.name, unseen, store.FlagChange{Op: store.FlagsAdd, Flags: []string{store.FlagSeen}})
			if err != nil {
				return s.imapError(err, imap.ResponseCodeNonExistent)
			}
			flags := make(map[uint32][]string, len(res.Messages))
			for _, m := range res.Messages {
				flags[m.UID] = m.Flags
				seen[m.UID] = true
			}
			for i := range infos {
				if f, ok := flags[infos[i].UID]; ok {
					infos[i].Flags = f
				}
			}
		}
	}
	var buf []byte
	blobs := fetchBlobs(s.srv.store, infos, needsContent(options))
	for _, m := range infos {
		i := sel.indexOf(m.UID)
		if i < 0 {
			continue
		}
		var flags []imap.Flag
		if options.Flags || seen[m.UID] {
			sel.msgs[i].flags = m.Flags
			if err := sel.announceKeywords(w.Updates(), m.Flags); err != nil {
				return err
			}
			flags = sel.imapFlags(m.UID, m.Flags)
		}
		var modSeq uint64
		if options.ModSeq || condStore && flags != nil {
			modSeq = m.ModSeq // RFC 7162 3.1.4.1, 3.2.4
		}
		if err := fetchOne(w, blobs, uint32(i+1), m, options, flags, modSeq, &buf); err != nil {
			return err
		}
	}
	return nil
}

// maxBufferedBody is the largest message whose whole-message BODY[] is
// read into memory rather than streamed from its file: reading costs a
// single system call, streaming bounds the memory a huge message takes.
const maxBufferedBody = 1 << 20

// needsParsing reports whether a FETCH reads every message's content to
// parse it.
func needsParsing(options *imap.FetchOptions) bool {
	return options.Envelope || options.BodyStructure != nil || len(options.BinarySection) > 0 || len(options.BinarySectionSize) > 0
}

// needsContent reports whether a FETCH reads message content at all.
func needsContent(options *imap.FetchOptions) bool {
	return needsParsing(options) || len(options.BodySection) > 0
}

func marksSeen(options *imap.FetchOptions) bool {
	for _, bs := range options.BodySection {
		if !bs.Peek {
			return true
		}
	}
	for _, bs := range options.BinarySection {
		if !bs.Peek {
			return true
		}
	}
	return false
}

// wholeMessage reports whether a section is the entire message, which can
// be streamed from the file as is.
func wholeMessage(bs *imap.FetchItemBodySection) bool {
	return bs.Specifier == imap.PartSpecifierNone && len(bs.Part) == 0 && bs.Partial == nil &&
		len(bs.HeaderFields) == 0 && len(bs.HeaderFieldsNot) == 0
}

// fetchOne writes one message's FETCH response, with FLAGS when flags is
// not nil and MODSEQ when modSeq is not 0. A message whose file is
// gone (expunged by another session, not yet reported) is skipped, which
// RFC 9051 7.5.1 allows; the file is opened before anything is written so
// that no response is left half-written.
func fetchOne(w *imapserver.FetchWriter, blobs store.Blobs, seq uint32, m store.MessageInfo, options *imap.FetchOptions, flags []imap.Flag, modSeq uint64, buf *[]byte) (err error) {
	needContent := needsParsing(options)
	needFile := needContent
	for _, bs := range options.BodySection {
		needContent = needContent || !wholeMessage(bs) || m.Size <= maxBufferedBody
		needFile = true
	}
	var (
		f       io.ReadCloser
		content []byte
	)
	switch {
	case needContent:
		if content, err = blobs.ReadBlob(m.Body, m.Size, *buf); err == nil {
			*buf = content
		}
	case needFile:
		f, err = blobs.OpenBlob(m.Body)
		if err == nil {
			defer f.Close()
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}

	rw := w.CreateMessage(seq)
	defer func() {
		if cerr := rw.Close(); err == nil {
			err = cerr
		}
	}()
	rw.WriteUID(imap.UID(m.UID)) // required for UID FETCH, useful for FETCH
	if flags != nil {
		rw.WriteFlags(flags)
	}
	if modSeq != 0 {
		rw.WriteModSeq(modSeq)
	}
	if options.InternalDate {
		rw.WriteInternalDate(m.Date)
	}
	if options.RFC822Size {
		rw.WriteRFC822Size(m.Size)
	}
	if options.Envelope {
		h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(content)))
		if err != nil {
			h = textproto.Header{} // unparseable header: an empty envelope
		}
		rw.WriteEnvelope(imapserver.ExtractEnvelope(h))
	}
	if options.BodyStructure != nil {
		rw.WriteBodyStructure(imapserver.ExtractBodyStructure(bytes.NewReader(content)))
	}
	for _, bs := range options.BodySection {
		part := content
		if !wholeMessage(bs) {
			part = imapserver.ExtractBodySection(bytes.NewReader(content), bs)
		} else if f != nil {
			// Stream: the literal's size is the indexed size, and the file
			// never changes after delivery.
			wc := rw.WriteBodySection(bs, m.Size)
			_, err := io.CopyN(wc, f, m.Size)
			if cerr := wc.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("sending message %d: %w", m.UID, err)
			}
			continue
		}
		if !wholeMessage(bs) && bytes.IndexByte(part, 0) >= 0 {
			// BODY[] cannot carry NUL (RFC 3501 4.3); content APPENDed as
			// binary (RFC 3516) is sent base64-encoded there, and as it
			// is in BINARY[].
			part = base64Lines(part)
		}
		if err := writeLiteral(rw.WriteBodySection(bs, int64(len(part))), part); err != nil {
			return err
		}
	}
	for _, bs := range options.BinarySection {
		part := imapserver.ExtractBinarySection(bytes.NewReader(content), bs)
		if err := writeLiteral(rw.WriteBinarySection(bs, int64(len(part))), part); err != nil {
			return err
		}
	}
	for _, bss := range options.BinarySectionSize {
		rw.WriteBinarySectionSize(bss, imapserver.ExtractBinarySectionSize(bytes.NewReader(content), bss))
	}
	return nil
}

func writeLiteral(wc io.WriteCloser, b []byte) error {
	_, err := wc.Write(b)
	if cerr := wc.Close(); err == nil {
		err = cerr
	}
	return err
}

// base64Lines encodes b as MIME base64 in lines of 76 characters.
func base64Lines(b []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(b)
	out := make([]byte, 0, len(enc)+len(enc)/76*2+2)
	for len(enc) > 76 {
		out = append(out, enc[:76]...)
		out = append(out, "\r\n"...)
		enc = enc[76:]
	}
	return append(append(out, enc...), "\r\n"...)
}
