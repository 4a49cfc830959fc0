// Package durable makes writes survive a crash cheaply when many happen at
// once. It owns the three steps the mail store and the outbound queue share
// on the way to an acknowledged message:
//
//   - WriteFile and CopyFile write a new file and fsync it;
//   - DirSyncer fsyncs a directory after entries were linked into it, one
//     fsync covering every caller that arrived while the previous one ran;
//   - Committer runs bbolt write transactions from many goroutines as one
//     group commit, one fsync for all of them.
//
// None of these waits for company: a lone caller pays exactly one fsync per
// step, and concurrent callers share them without a tuned delay (only
// UpdateLater, for results nobody waits on, waits up to LaterDelay).
//
// Index is the bbolt file each of them owns (index.db, queue.db), opened
// the same way, with its Committer and the lock that lets Close wait for
// the operations in progress and refuse those that come after.
package durable
