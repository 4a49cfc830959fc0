package imap

import (
	"slices"

	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
)

// Bodies for a FETCH from a store whose reads are round trips to a server
// (store.BlobBatchReader: PostgreSQL): the bodies the command will read are
// fetched a window at a time, so that a FETCH of 2,000 messages costs a few
// dozen queries, not 2,000. Reads the window does not cover go to the store
// as usual.

// Prefetch windows: at most this many bodies, or about this many bytes.
const (
	prefetchBodies = 128
	prefetchBytes  = 2 << 20
)

// prefetcher is the store.Blobs a FETCH reads through.
type prefetcher struct {
	store.BlobBatchReader
	order  []store.MessageInfo // the messages to come, in FETCH order
	next   int                 // order[next:] are not fetched yet
	window map[store.BlobRef][]byte
	arena  []byte
}

// fetchBlobs returns the Blobs a FETCH of msgs reads bodies through:
// the store itself, or a prefetcher when the store reads in batches and
// the command reads buffered bodies.
func fetchBlobs(st store.Blobs, msgs []store.MessageInfo, readsBodies bool) store.Blobs {
	br, ok := st.(store.BlobBatchReader)
	if !ok || !readsBodies || len(msgs) < 2 {
		return st
	}
	return &prefetcher{BlobBatchReader: br, order: msgs}
}

// ReadBlob serves ref from the window, reading the next window first when
// ref is not in it.
func (p *prefetcher) ReadBlob(ref store.BlobRef, size int64, buf []byte) ([]byte, error) {
	body, ok := p.window[ref]
	if !ok && p.fill(ref) {
		body, ok = p.window[ref]
	}
	if !ok {
		return p.BlobBatchReader.ReadBlob(ref, size, buf)
	}
	return append(buf[:0], body...), nil
}

// fill reads the window that starts with ref, if ref is still to come.
func (p *prefetcher) fill(ref store.BlobRef) bool {
	i := slices.IndexFunc(p.order[p.next:], func(m store.MessageInfo) bool { return m.Body == ref })
	if i < 0 {
		return false
	}
	p.next += i
	var refs []store.BlobRef
	var bytes int64
	for _, m := range p.order[p.next:] {
		if len(refs) == prefetchBodies || len(refs) > 0 && bytes+m.Size > prefetchBytes {
			break
		}
		if m.Size <= maxBufferedBody {
			refs = append(refs, m.Body)
			bytes += m.Size
		}
		p.next++
	}
	clear(p.window)
	if len(refs) == 0 {
		return false // only bodies streamed or read on their own
	}
	if p.window == nil {
		p.window = make(map[store.BlobRef][]byte, len(refs))
	}
	p.arena = slices.Grow(p.arena[:0], int(bytes))
	err := p.ReadBlobs(refs, func(ref store.BlobRef, body []byte) error {
		start := len(p.arena)
		p.arena = append(p.arena, body...)
		p.window[ref] = p.arena[start:len(p.arena):len(p.arena)]
		return nil
	})
	return err == nil
}
