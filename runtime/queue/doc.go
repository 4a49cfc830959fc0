// Package queue owns the runtime's durable outbound queue: messages
// accepted for other domains (and the local recipients that came with them)
// wait here until every recipient is delivered or returned to the sender.
//
// # Layout on disk
//
// <dir>/queue.db (bbolt) holds one entry per message: envelope, creation
// time, and per recipient its state, attempts and last error; and, in a
// bucket of their own, the bodies of messages of at most InlineMax bytes,
// byte for byte as they will be sent. <dir>/spool/<id> holds each larger
// message. The index is authoritative: a spool file without an entry is a
// message whose Enqueue never returned, and Open removes it. A queue
// written before inline bodies existed has only spool files, and is
// delivered from them; a queue written since cannot be read by that
// version. Like any bbolt file, queue.db reuses the pages that delivered
// messages free but does not shrink: it keeps the size of the fullest
// queue it held (at most InlineMax a message above the entries).
//
// # Durability
//
// Enqueue returns only after the message is durable: an inline body is
// committed in the same transaction as its entry; a spool file is written
// and fsynced, and the spool directory fsynced, before the entry is
// committed. Commits are grouped and directory fsyncs shared as in the mail
// store (runtime/durable), so 32 concurrent submissions share a handful of
// fsyncs; a small message costs no file of its own at all. Every result
// (a recipient delivered, failed, deferred) is committed before Settle
// returns, so a message whose recipient is recorded as delivered is never
// sent to it again; SettleLater lets that commit wait up to
// durable.LaterDelay for company, for a sender that wrote the peer's
// reply to the send log (below) and went on.
//
// The one window no MTA can close (RFC 5321 section 6.1) is between the
// end of the data and reading the peer's reply: the peer may have taken
// the message when the runtime is killed. Senders mark that window with
// BeginSend and close it with Replied the moment the reply is read, before
// the (fsynced, group-committed) result; both append to <dir>/sending.log
// with a plain write, which survives kill -9. Open then marks recipients
// whose 2xx was logged as delivered, so a killed runtime never sends again
// what a peer accepted, and marks those still in the window as possible
// duplicates: they are sent again, flagged, rather than lost.
package queue
