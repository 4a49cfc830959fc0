// Package postgres is the mail store in PostgreSQL (github.com/jackc/pgx/v5):
// a store.Backend that any number of runtimes, on any number of hosts, can
// share, so that they serve the same users, mailboxes and flags. It passes
// the same conformance table (storetest.Run) as the embedded store.
//
// # Schema
//
// Everything lives in the schema "mailstack" of the database the DSN names
// (migrations/*.sql): users (password hashes, quotas, usage), mailboxes
// (whose id is the IMAP UIDVALIDITY, from one sequence), messages (UID,
// flags, MODSEQ, size, internal date, body), bodies in blobs and
// blob_chunks (bytea, 256 KiB a row), subscriptions and the vanished UIDs
// QRESYNC asks for. Open applies the migrations the database lacks, under
// an advisory lock, so runtimes that start at once migrate it once; a
// database already migrated by a newer build is refused.
//
// # Across runtimes
//
// The database allocates what must be unique: every change to a mailbox's
// messages first locks the mailbox's row and takes its next UID and
// MODSEQ there, so UIDs ascend in commit order and two runtimes never hand
// out the same one. Once a transaction has committed, the store announces
// the mailboxes it changed with NOTIFY, from a connection of its own (a
// NOTIFY inside the transaction would serialize every such commit through
// its WAL flush); every store LISTENs and feeds other runtimes' changes to
// its Hub, which wakes IMAP IDLE sessions, and polls the MODSEQ of the
// mailboxes it watches twice a second in case a notification was lost
// (notify.go). The POP3 maildrop lock is a session advisory lock, seen by
// every runtime and released by the database if the runtime holding it
// dies.
//
// # Durability
//
// A delivery is one call of the schema's deliver function (one round
// trip): it checks every recipient and quota, stores the body and gives
// each copy its UID, in one transaction. It returns
// when the commit has returned, with synchronous_commit on (set on each
// connection where the server has it off): the message is on the
// database's disk, the promise the embedded store keeps with fsync. While
// the database is down every operation fails (SMTP answers 4xx); the pool
// and the LISTEN connection reconnect by themselves when it is back.
//
// # Bodies
//
// Behind store.Blobs a body is a row of blobs with the first 256 KiB,
// continued in blob_chunks: a large APPEND is written and a large FETCH
// read a chunk at a time, never whole in memory. Copies share a body (a
// reference count kept by triggers on messages); a body written by a
// runtime that died before its message committed is swept after an hour.
package postgres
