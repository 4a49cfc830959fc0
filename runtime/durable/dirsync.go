package durable

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// DirSyncer makes directory entries durable, sharing fsyncs: a caller needs
// an fsync of the directory that starts after its own link or rename; every
// caller that arrives while one fsync runs is covered by the next single
// one. With 32 clients delivering to one mailbox this turns 32 directory
// fsyncs into about two. The zero value is ready to use.
type DirSyncer struct {
	mu   sync.Mutex
	dirs map[string]*dirSync
}

type dirSync struct {
	mu      sync.Mutex
	cond    sync.Cond
	started uint64 // fsyncs started
	done    uint64 // highest fsync finished
	lastOK  uint64 // highest fsync that succeeded
	lastErr error
	running bool
}

// Sync makes every entry linked into dir before the call durable.
func (s *DirSyncer) Sync(dir string) error {
	s.mu.Lock()
	if s.dirs == nil {
		s.dirs = make(map[string]*dirSync)
	}
	d := s.dirs[dir]
	if d == nil {
		d = &dirSync{}
		d.cond.L = &d.mu
		s.dirs[dir] = d
	}
	s.mu.Unlock()

	d.mu.Lock()
	defer d.mu.Unlock()
	need := d.started + 1
	for d.done < need {
		if d.running {
			d.cond.Wait()
			continue
		}
		d.running = true
		d.started++
		gen := d.started
		d.mu.Unlock()
		err := SyncDir(dir)
		d.mu.Lock()
		d.running = false
		d.done = gen
		if err == nil {
			d.lastOK = gen
		} else {
			d.lastErr = err
		}
		d.cond.Broadcast()
	}
	if d.lastOK >= need {
		return nil
	}
	return d.lastErr
}

// Forget drops the state of directories that were removed.
func (s *DirSyncer) Forget(dirs ...string) {
	s.mu.Lock()
	for _, d := range dirs {
		delete(s.dirs, d)
	}
	s.mu.Unlock()
}

// SyncDir fsyncs directory dir, making the entries linked into it durable.
func SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing directory: %w", err)
	}
	start := time.Now()
	err = f.Sync()
	observe("dir", start)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}
