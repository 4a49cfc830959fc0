// Package store owns the runtime's durable mail: users and their password
// hashes, mailboxes, and messages.
//
// # The interface
//
// The protocol front ends and the control API reach mail only through
// Backend (backend.go), whose contracts every implementation keeps and whose
// conformance table is storetest.Run. Store, below, is the embedded
// implementation: one host, one process.
//
// # Layout on disk
//
// Every user has a Maildir at <dir>/mail/<domain>/<local>/ (tmp/, new/, cur/)
// that is their INBOX; other mailboxes are Maildir++ subfolders beside it
// (".Archive", ".Archive.2024" for the IMAP name "Archive/2024"), so mutt,
// Dovecot, doveadm or a backup script can read the mail directly. Message
// files hold the message byte for byte as it was delivered (CRLF line endings,
// as SMTP and IMAP carry it) and never change after delivery. Deliveries land
// in new/; APPEND lands in cur/ with the standard ":2," flag suffix.
//
// One index, <dir>/index.db, holds what a Maildir cannot hold reliably:
// users (argon2id PHC hashes, quotas, usage), mailboxes with their
// UIDVALIDITY and UIDNEXT, and per message its UID, flags, size, internal
// date and file name. The index is authoritative for flags: the names of the
// files are not renamed when flags change, which keeps STORE to a single
// index write.
//
// # Why bbolt
//
// The index is go.etcd.io/bbolt: a single-file copy-on-write B+tree with
// ACID, fsynced transactions, in pure Go (no cgo, so the runtime stays one
// static binary), with lock-free readers over an mmap, which suits a mail
// server that reads (SELECT, FETCH, STATUS) far more than it writes. Its one
// writer at a time is not a bottleneck because writes are group-committed:
// concurrent deliveries share one transaction and one fsync (see committer).
// Rejected: SQLite (cgo, or a much slower pure-Go port, and SQL buys nothing
// for key lookups by user/mailbox/UID); Pebble/Badger (LSM trees built for
// write-heavy data far larger than a mail index, with background compaction,
// more memory and many files); flags in Maildir file names only (every STORE
// becomes a rename plus a directory fsync, and UIDs would need Dovecot-style
// uidlist files that are easy to corrupt under concurrency).
//
// # Durability
//
// Deliver and Append return only after the message file was written and
// fsynced in tmp/, linked into new/ or cur/, that directory fsynced and the
// index transaction committed. A crash at any point loses no message whose
// delivery returned and never shows half a message, because a file in tmp/
// is never visible. Open repairs whatever a crash left: files in new/ or cur/
// the index does not know are indexed, index entries whose file is gone are
// dropped, Maildir++ folders made by other tools become mailboxes, and stale
// tmp/ files are removed.
package store
