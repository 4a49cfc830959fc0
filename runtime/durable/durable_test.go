package durable

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestCommitterIsolatesFailures runs many concurrent updates, some of
// which fail: the others commit, each failure reaches only its caller.
func TestCommitterIsolatesFailures(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "t.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := NewCommitter(db)
	errBad := errors.New("bad operation")
	var wg sync.WaitGroup
	errs := make([]error, 200)
	for i := range errs {
		wg.Go(func() {
			errs[i] = c.Update(func(tx *bolt.Tx) error {
				if i%7 == 0 {
					return errBad
				}
				b, err := tx.CreateBucketIfNotExists([]byte("b"))
				if err != nil {
					return err
				}
				return b.Put([]byte{byte(i >> 8), byte(i)}, []byte("v"))
			})
		})
	}
	wg.Wait()
	c.Close()
	for i, err := range errs {
		if want := i%7 == 0; want != errors.Is(err, errBad) || !want && err != nil {
			t.Errorf("update %d: err = %v", i, err)
		}
	}
	db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket([]byte("b")).Stats().KeyN; n != 200-29 {
			t.Errorf("%d keys committed, want %d", n, 200-29)
		}
		return nil
	})
}

func TestWriteFileAndSyncDir(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := WriteFile(p, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("again")); err == nil {
		t.Error("WriteFile replaced an existing file")
	}
	if b, _ := os.ReadFile(p); string(b) != "hello" {
		t.Errorf("file holds %q", b)
	}
	var s DirSyncer
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if err := s.Sync(dir); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := s.Sync(filepath.Join(dir, "missing")); err == nil {
		t.Error("Sync of a missing directory succeeded")
	}
}

// Each kind of fsync reaches the observer, with a latency.
func TestObserveSyncs(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	ObserveSyncs(func(kind string, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if d <= 0 {
			t.Errorf("%s fsync took %v", kind, d)
		}
		seen[kind]++
	})
	defer ObserveSyncs(nil)
	dir := t.TempDir()
	if err := WriteFile(filepath.Join(dir, "f"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(dir, "t.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := NewCommitter(db)
	defer c.Close()
	if err := c.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists([]byte("b")); return err }); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen["file"] != 1 || seen["dir"] != 1 || seen["index"] != 1 {
		t.Errorf("observed %v, want one fsync of each kind", seen)
	}
}

// TestIndexClosesOnce: an Index takes its owner's sentinel once closed,
// from every lock and from a second Close; what was committed before is
// in the file, and the open options reach bbolt.
func TestIndexClosesOnce(t *testing.T) {
	errClosed := errors.New("owner closed")
	path := filepath.Join(t.TempDir(), "t.db")
	ix, err := OpenIndex(path, IndexOptions{Name: "test index", ErrClosed: errClosed, NoFreelistSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if !ix.DB().NoFreelistSync {
		t.Error("NoFreelistSync did not reach bbolt")
	}
	if err := ix.RLock(); err != nil {
		t.Fatal(err)
	}
	err = ix.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err })
	ix.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	released := false
	if err := ix.Close(func() { released = true }); err != nil {
		t.Fatal(err)
	}
	if !released {
		t.Error("Close did not run release")
	}
	if err := ix.RLock(); err != errClosed {
		t.Errorf("RLock after Close: %v, want %v", err, errClosed)
	}
	if err := ix.Lock(); err != errClosed {
		t.Errorf("Lock after Close: %v, want %v", err, errClosed)
	}
	if err := ix.Close(nil); err != errClosed {
		t.Errorf("second Close: %v, want %v", err, errClosed)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("b")) == nil {
			t.Error("the update before Close is not in the file")
		}
		return nil
	})
}
