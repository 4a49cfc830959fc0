package durable

import (
	"sync/atomic"
	"time"
)

// observer is told the latency of every fsync; see ObserveSyncs.
var observer atomic.Pointer[func(kind string, d time.Duration)]

// ObserveSyncs makes f hear how long each fsync took: kind is "file"
// (WriteFile, CopyFile), "dir" (a directory's entries) or "index" (a
// Committer's group commit, the fsync with the write that precedes it).
// The runtime feeds its fsync latency histogram with it; f must be quick.
// Fsync latency belongs to the disk, not to one store, hence one observer
// per process. Nil stops observing.
func ObserveSyncs(f func(kind string, d time.Duration)) {
	if f == nil {
		observer.Store(nil)
		return
	}
	observer.Store(&f)
}

// observe reports an fsync of kind that started at start.
func observe(kind string, start time.Time) {
	if f := observer.Load(); f != nil {
		(*f)(kind, time.Since(start))
	}
}
