package store

import (
	"context"
	"io"
)

// Backend is the mail store as the protocol front ends and the control API
// see it: users, delivery, mailboxes, messages, their bodies and POP3
// maildrops. The embedded store (*Store: Maildir files and a bbolt index)
// implements it; another implementation (PostgreSQL, several runtimes on
// one database) must pass the same conformance table, storetest.Run.
//
// Contracts every implementation keeps:
//
//   - Addresses are canonicalised with CanonicalAddress; every method accepts
//     any case of the domain. Mailbox names use Delimiter ('/') and INBOX in
//     any case names INBOX; a name a method gives a mailbox (create, rename,
//     subscribe) is checked as MailboxArgs does.
//   - Errors wrap the package's sentinel errors (ErrNotFound, ErrExists,
//     ErrAuthFailed, ErrQuotaExceeded, ...) so that callers test them with
//     errors.Is; anything else is an internal failure that a front end
//     reports without detail.
//   - A method that changes mail returns only when the change is durable
//     (fsync, or a committed transaction with synchronous commit): no
//     acknowledged message or flag is ever lost.
//   - The store allocates UIDVALIDITY, UIDs and MODSEQs: UIDs in a mailbox
//     strictly ascend and are never reused while its UIDVALIDITY stands,
//     even with several processes on one store; a mailbox deleted and
//     created again gets a new UIDVALIDITY (RFC 9051 2.3.1.1).
//   - Every committed change to a mailbox's messages fires the Watches on
//     that mailbox and the user's WatchUser watches, whichever process made
//     it; a change to the mailbox list or subscriptions fires the latter.
//
// Implementations are safe for concurrent use.
type Backend interface {
	Users
	Deliverer
	Mailboxes
	Messages
	Blobs
	Maildrops
	// Close releases the store; every method fails with ErrClosed after.
	Close() error
}

// Users holds accounts, their password hashes and quotas.
type Users interface {
	// PutUser creates the user (with INBOX) or changes the password and
	// quota of an existing one, keeping their mail. The password is stored
	// only as a strong hash. quotaBytes 0 means unlimited.
	PutUser(address, password string, quotaBytes int64) error
	// DeleteUser removes the user and all their mail (ErrNotFound if there
	// is no such user, ErrMaildropLocked while a POP3 session holds it).
	DeleteUser(address string) error
	// User returns a user with their quota and current usage, or
	// ErrNotFound.
	User(address string) (UserInfo, error)
	// Users returns every user, ordered by address.
	Users() ([]UserInfo, error)
	// Authenticate checks a password. Unknown users, invalid addresses and
	// wrong passwords all fail with ErrAuthFailed (or ErrInvalidAddress),
	// in about the same time, so a caller cannot tell which.
	Authenticate(address, password string) error
}

// Deliverer stores mail that arrived over SMTP.
type Deliverer interface {
	// Deliver stores body in the INBOX of every recipient, all or nothing:
	// an unknown recipient (ErrNotFound) or one over quota
	// (ErrQuotaExceeded) fails the call before anything is stored.
	// Duplicate recipients get one copy. It returns when the message is
	// durable for every recipient. body is stored byte for byte.
	Deliver(ctx context.Context, recipients []string, body []byte) error
}

// Mailboxes manages a user's mailbox list (the IMAP mailbox commands).
type Mailboxes interface {
	// Mailboxes returns the user's mailboxes ordered by name.
	Mailboxes(address string) ([]MailboxInfo, error)
	// Status returns a mailbox with its counters (IMAP STATUS).
	Status(address, mailbox string) (MailboxStatus, error)
	// CreateMailbox creates mailbox name and any missing parents (ErrExists
	// if name exists, ErrInvalidMailbox for a name the store cannot hold,
	// ErrSpecialUse for a special use not in SpecialUses). PutUser creates
	// DefaultMailboxes for every new user.
	CreateMailbox(address, name string, opts CreateOptions) error
	// DeleteMailbox deletes a mailbox and its messages. INBOX cannot be
	// deleted (ErrInvalidMailbox), nor a mailbox with children
	// (ErrHasChildren).
	DeleteMailbox(address, name string) error
	// RenameMailbox renames a mailbox with its children, keeping their
	// UIDVALIDITY, UIDs and flags, and creates missing parents of the new
	// name. Renaming INBOX moves its messages into the new mailbox and
	// leaves INBOX empty (RFC 9051 6.3.6).
	RenameMailbox(address, oldName, newName string) error
	// Subscribe adds a mailbox name to the user's subscriptions or removes
	// it (LSUB, LIST (SUBSCRIBED)). A subscription is a name: it may name
	// a mailbox that does not exist, and outlives a deleted one (RFC 9051
	// 6.3.7). INBOX starts subscribed. MailboxInfo.Subscribed reflects it.
	Subscribe(address, name string, subscribed bool) error
	// Subscriptions returns the subscribed names, sorted.
	Subscriptions(address string) ([]string, error)
	// WatchUser starts notifications of any change to the user's mail
	// (IMAP NOTIFY): to the messages of any of their mailboxes (what
	// Messages.Watch reports), to the mailbox list (create, delete, rename)
	// and to the subscriptions, whichever process made it. It fails with
	// ErrNotFound for an unknown user. The caller must Close it.
	// Implementations fan out through a Hub (Hub.WatchUser, NotifyUser).
	WatchUser(address string) (*Watch, error)
}

// Messages reads and changes the messages of one mailbox.
type Messages interface {
	// Messages returns every message of the mailbox in UID order, with the
	// mailbox's UIDVALIDITY, UIDNEXT and MODSEQ at that moment. MODSEQ
	// values (mailbox and message) are at least 1, grow with every change
	// and are never reused while the UIDVALIDITY stands; a message's is the
	// mailbox's at its last change.
	Messages(address, mailbox string) (*Snapshot, error)
	// ModSeq returns the mailbox's change counter: while it is unchanged,
	// so are the mailbox's messages and their flags. It is cheap; IMAP
	// calls it after every command.
	ModSeq(address, mailbox string) (uint64, error)
	// Lookup returns the messages with the given UIDs in the order given,
	// skipping UIDs that do not exist.
	Lookup(address, mailbox string, uids []uint32) ([]MessageInfo, error)
	// Append stores size bytes from r as a new message (IMAP APPEND) as
	// durably as Deliver and returns the mailbox's UIDVALIDITY and the new
	// UID. It fails with ErrQuotaExceeded over quota.
	Append(address, mailbox string, r io.Reader, size int64, opts AppendOptions) (uidValidity, uid uint32, err error)
	// SetFlags applies a flag change to the messages with the given UIDs
	// (missing UIDs are skipped) and reports what it did. \Recent and
	// unknown system flags are not stored. A change that changes nothing
	// leaves ModSeq as it was; otherwise the mailbox's ModSeq grows and
	// every message changed takes the new value (RFC 7162 3.1.3), in one
	// atomic step with the UNCHANGEDSINCE test.
	SetFlags(address, mailbox string, uids []uint32, ch FlagChange) (FlagResult, error)
	// ClaimRecent hands this session the \Recent messages (RFC 3501
	// 2.3.2): every message with first <= UID < next was claimed by no
	// session before and is recent for the caller alone (next is the
	// UIDNEXT of that moment). Atomic across sessions and processes; it
	// does not change ModSeq or fire Watches.
	ClaimRecent(address, mailbox string) (first, next uint32, err error)
	// Vanished returns the UIDs expunged (or moved away) after MODSEQ
	// since, for QRESYNC (RFC 7162 3.2.10), in ascending ranges. It may
	// also return UIDs expunged earlier, or that never existed below
	// UIDNEXT, when it no longer knows that far back; never a UID that
	// exists.
	Vanished(address, mailbox string, since uint64) ([]UIDRange, error)
	// Expunge removes the messages flagged \Deleted, only among uids if
	// uids is not nil, and returns the UIDs removed in ascending order.
	Expunge(address, mailbox string, uids []uint32) ([]uint32, error)
	// Copy copies messages to dst with their flags and internal dates; they
	// get new UIDs there (COPYUID).
	Copy(address, src string, uids []uint32, dst string) (CopyResult, error)
	// Move is Copy followed by removing the sources, atomically for an
	// observer of src (RFC 6851).
	Move(address, src string, uids []uint32, dst string) (CopyResult, error)
	// Watch starts notifications of changes to a mailbox (IMAP IDLE). The
	// caller must Close it. Implementations fan out through a Hub.
	Watch(address, mailbox string) (*Watch, error)
}

// BlobRef names a message body inside its store: a file path in the
// embedded store, a row or object key elsewhere. Outside the store it is
// opaque; only the Blobs of the store that made it can read it.
type BlobRef string

// Blobs reads message bodies. A body never changes after it is stored.
// Reading a body whose message was expunged (by this or another session)
// may fail with ErrNotFound.
type Blobs interface {
	// ReadBlob reads the whole body, size bytes (MessageInfo.Size), into
	// buf's storage, grown if needed, and returns it: the cheap path for
	// the small messages that most are.
	ReadBlob(ref BlobRef, size int64, buf []byte) ([]byte, error)
	// OpenBlob streams a body, so that a large message is never held in
	// memory whole.
	OpenBlob(ref BlobRef) (io.ReadCloser, error)
}

// BlobBatchReader is implemented by Blobs whose every read is a round
// trip to a server (PostgreSQL): a front end about to read many bodies
// reads them with one call instead. It is optional; the embedded store,
// whose reads are local files, does not need it.
type BlobBatchReader interface {
	Blobs
	// ReadBlobs reads the whole bodies of refs and calls fn with each, in
	// any order; body is valid only during the call. A body that is gone
	// (its message expunged) is left out.
	ReadBlobs(refs []BlobRef, fn func(ref BlobRef, body []byte) error) error
}

// Maildrops serves POP3.
type Maildrops interface {
	// OpenMaildrop locks the user's INBOX against other POP3 sessions (of
	// any process on the store) and lists it. It fails with
	// ErrMaildropLocked while another session holds it, ErrNotFound for an
	// unknown user. The caller must Close the maildrop.
	OpenMaildrop(address string) (Maildrop, error)
}

// Maildrop is a user's INBOX as one POP3 session sees it (RFC 1939): the
// messages present when it was opened. IMAP sessions are not locked out; a
// message they expunge meanwhile fails to Open.
type Maildrop interface {
	// Messages returns the messages present at OpenMaildrop, oldest first.
	Messages() ([]MaildropMessage, error)
	// Open returns the content of a message (ErrNotFound for an unknown
	// unique id).
	Open(uid string) (io.ReadCloser, error)
	// Commit removes the given messages durably (the RFC 1939 UPDATE
	// state). Messages already gone are not an error.
	Commit(deleteUIDs []string) error
	// Close releases the lock. It is safe to call more than once.
	Close() error
}

var _ Backend = (*Store)(nil)
