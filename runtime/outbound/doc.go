// Package outbound is the runtime's delivery engine: it takes messages
// from the durable queue (runtime/queue) and delivers each recipient, to
// this server's own mailboxes (Local) or over SMTP to another domain.
//
// # Routing
//
// Without a relay, mail for a domain goes to its MX hosts in preference
// order (RFC 5321 section 5.1); a domain without MX records is its own MX
// (A/AAAA), and a null MX (RFC 7505) is a permanent failure. With a relay
// (smarthost), everything for other domains goes there, logging in with
// AUTH PLAIN over TLS when a username is set.
//
// # Connections
//
// Each destination (a recipient domain, or the relay) has its own job list
// and up to Options.MaxConnections connections. A connection, once made,
// takes the destination's next job until none has come for IdleTimeout,
// so a stream of messages to one domain pays one TCP and TLS handshake per
// connection, not per message. Transactions use PIPELINING, SIZE,
// 8BITMIME and SMTPUTF8 when the peer offers them (client.go).
//
// # TLS
//
// Every connection follows the policy runtime/tlspolicy computes (DANE,
// MTA-STS, the operator's tls_policy blocks, else opportunistic). A policy
// that requires TLS is never downgraded: the message stays queued with the
// reason in its entry. TLS sessions are resumed across connections to the
// same address under the same policy (tlspolicy.Sessions), as Postfix's
// tlsmgr cache does.
//
// # Retries and notifications
//
// A 4xx reply, a connection failure or a policy failure defers the
// recipient: the next attempt comes after a backoff that doubles from the
// schedule's Min up to Max. After DelayWarning the sender is told once
// that the message is delayed; a 5xx reply, or a message older than
// GiveUpAfter, returns it with a delivery status notification (RFC 3464,
// dsn.go) to the sender's local mailbox.
//
// # Results
//
// The peer's replies go to the queue's send log the moment they are read,
// so that a runtime killed before they are committed sends none of the
// accepted ones again. The commit itself (a group commit, shared with the
// other connections' results and the submissions) runs while the
// connection goes on with its destination's next job; the message counts
// as in flight until it lands, so its next attempt never starts before.
//
// # Scheduling
//
// Submit starts a new message's delivery itself, with the entry it has
// just queued; the scheduler takes the rest: messages due for another
// attempt, and those queued before the engine started.
package outbound
