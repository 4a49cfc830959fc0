// Package queue owns the runtime's durable outbound queue: messages
// accepted for other domains (and the local recipients that came with them)
// wait here until every recipient is delivered or returned to the sender.
//
// # Layout on disk
//
// <dir>/spool/<id> holds each message byte for byte, as it will be sent.
// <dir>/queue.db (bbolt) holds one entry per message: envelope, creation
// time, and per recipient its state, attempts and last error. The index is
// authoritative: a spool file without an entry is a message whose Enqueue
// never returned, and Open removes it.
//
// # Durability
//
// Enqueue returns only after the spool file was written and fsynced, the
// spool directory fsynced and the entry committed, with the same group
// commits and shared directory fsyncs as the mail store (runtime/durable),
// so 32 concurrent submissions share a handful of fsyncs. Every result
// (a recipient delivered, failed, deferred) is committed before the caller
// goes on, so a message whose recipient is recorded as delivered is never
// sent to it again.
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
