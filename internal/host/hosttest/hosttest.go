// Package hosttest is the test table every internal/host Host passes:
// files, locks, processes, commands and dialing, each checked against the
// real thing (a real flock, a real process, a real unix socket).
package hosttest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

// Target is a host under test.
type Target struct {
	Host host.Host
	// Dir is an empty folder on the host that the table may fill.
	Dir string
	// ListenUnix opens a unix socket at a path the host can dial and
	// returns the listener and that path.
	ListenUnix func(t *testing.T) (net.Listener, string)
}

// Run runs the table against tg.
func Run(t *testing.T, tg Target) {
	cases := []struct {
		name string
		fn   func(*testing.T, context.Context, Target)
	}{
		{"abs", testAbs},
		{"write and read", testWriteRead},
		{"write replaces atomically", testReplace},
		{"write with owner", testOwner},
		{"file keeps mode and owner", testFileKeeps},
		{"users and groups", testUsers},
		{"missing files", testMissing},
		{"mkdir, stat, remove", testDirs},
		{"sha256", testSHA256},
		{"lock", testLock},
		{"start, status, signal", testProcess},
		{"run", testRun},
		{"executables written while others run", testWriteExec},
		{"dial unix", testDial},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			sub := tg
			sub.Dir = path.Join(tg.Dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := tg.Host.MkdirAll(ctx, sub.Dir, 0o700); err != nil {
				t.Fatal(err)
			}
			tc.fn(t, ctx, sub)
		})
	}
}

func testAbs(t *testing.T, _ context.Context, tg Target) {
	for _, p := range []string{"a/b", "./x/../y", tg.Dir + "/z/../w"} {
		abs, err := tg.Host.Abs(p)
		if err != nil {
			t.Fatalf("Abs(%q): %v", p, err)
		}
		if !path.IsAbs(abs) || path.Clean(abs) != abs {
			t.Errorf("Abs(%q) = %q, not absolute and clean", p, abs)
		}
	}
	if abs, _ := tg.Host.Abs(tg.Dir + "/z/../w"); abs != tg.Dir+"/w" {
		t.Errorf("Abs of an absolute path = %q, want %q", abs, tg.Dir+"/w")
	}
}

func testWriteRead(t *testing.T, ctx context.Context, tg Target) {
	h, p := tg.Host, path.Join(tg.Dir, "f")
	for _, mode := range []fs.FileMode{0, 0o640, 0o755} {
		data := []byte("content with mode " + mode.String() + "\n")
		if err := h.WriteFile(ctx, p, data, host.WriteOptions{Mode: mode}); err != nil {
			t.Fatal(err)
		}
		got, err := h.ReadFile(ctx, p)
		if err != nil || string(got) != string(data) {
			t.Fatalf("ReadFile = %q, %v; want %q", got, err, data)
		}
		st, err := h.Stat(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		want := mode
		if want == 0 {
			want = 0o600
		}
		if st.Mode.Perm() != want || !st.Mode.IsRegular() || st.Size != int64(len(data)) {
			t.Errorf("Stat after writing with mode %v = mode %v, size %d; want %v, %d", mode, st.Mode, st.Size, want, len(data))
		}
	}
	if err := h.WriteFile(ctx, path.Join(tg.Dir, "no-such-folder", "f"), []byte("x"), host.WriteOptions{}); err == nil {
		t.Error("WriteFile into a missing folder succeeded")
	}
}

// testReplace checks a rewrite leaves no temporary file behind and that a
// big file arrives whole.
func testReplace(t *testing.T, ctx context.Context, tg Target) {
	h, p := tg.Host, path.Join(tg.Dir, "big")
	big := make([]byte, 3<<20+17)
	for i := range big {
		big[i] = byte(i * 7)
	}
	for i := range 3 {
		big[0] = byte(i)
		if err := h.WriteFile(ctx, p, big, host.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := h.ReadFile(ctx, p)
	if err != nil || string(got) != string(big) {
		t.Fatalf("ReadFile of a 3 MiB file: %d bytes, %v", len(got), err)
	}
	out, err := h.Run(ctx, "ls", "-A", tg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if names := strings.Fields(string(out)); len(names) != 1 || names[0] != "big" {
		t.Errorf("folder holds %q after three rewrites, want only big", names)
	}
}

func testOwner(t *testing.T, ctx context.Context, tg Target) {
	h, p := tg.Host, path.Join(tg.Dir, "owned")
	if !isRoot(ctx, t, h) {
		t.Skip("changing a file's owner needs root on the host")
	}
	if err := h.WriteFile(ctx, p, []byte("x"), host.WriteOptions{Mode: 0o640, Owner: &host.Owner{UID: 65534, GID: 65533}}); err != nil {
		t.Fatal(err)
	}
	st, err := h.Stat(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if st.UID != 65534 || st.GID != 65533 || st.Mode.Perm() != 0o640 {
		t.Errorf("owner %d:%d mode %v, want 65534:65533 0640", st.UID, st.GID, st.Mode.Perm())
	}
}

// A File rewritten without options keeps the replaced file's mode (and,
// as root, its owner and group); its lock lives where LockPathFor says.
func testFileKeeps(t *testing.T, ctx context.Context, tg Target) {
	h, p := tg.Host, path.Join(tg.Dir, "kept")
	root := isRoot(ctx, t, h)
	opts := host.WriteOptions{Mode: 0o640}
	if root {
		opts.Owner = &host.Owner{UID: 65534, GID: 65533}
	}
	if err := h.WriteFile(ctx, p, []byte("one"), opts); err != nil {
		t.Fatal(err)
	}
	f := host.File{Host: h, Path: p, LockPath: host.LockPathFor(path.Join(tg.Dir, "state"), p)}
	unlock, err := f.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = f.Write(ctx, []byte("two"))
	unlock()
	if err != nil {
		t.Fatal(err)
	}
	st, err := h.Stat(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode.Perm() != 0o640 || root && (st.UID != 65534 || st.GID != 65533) {
		t.Errorf("after File.Write: mode %v owner %d:%d, want 0640 as before (owner 65534:65533 as root)", st.Mode.Perm(), st.UID, st.GID)
	}
	if _, err := h.Stat(ctx, p+".lock"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a lock file beside the file: %v", err)
	}
	if _, err := h.Stat(ctx, f.LockPath); err != nil {
		t.Errorf("no lock file at LockPathFor's %s: %v", f.LockPath, err)
	}
	f.Options = host.WriteOptions{Mode: 0o600}
	if root {
		f.Options.Owner = &host.Owner{UID: -1, GID: 0}
	}
	if err := f.Write(ctx, []byte("three")); err != nil {
		t.Fatal(err)
	}
	if st, err = h.Stat(ctx, p); err != nil || st.Mode.Perm() != 0o600 || root && (st.UID != 65534 || st.GID != 0) {
		t.Errorf("with Options: mode %v owner %d:%d (%v), want 0600 (65534:0 as root)", st.Mode.Perm(), st.UID, st.GID, err)
	}
}

func testUsers(t *testing.T, ctx context.Context, tg Target) {
	h := tg.Host
	if _, err := h.Run(ctx, "getent", "passwd", "root"); err != nil {
		t.Skipf("no getent on the host: %v", err)
	}
	if uid, err := host.LookupUser(ctx, h, "root"); err != nil || uid != 0 {
		t.Errorf("LookupUser(root) = %d, %v", uid, err)
	}
	if gid, err := host.LookupGroup(ctx, h, "4242"); err != nil || gid != 4242 {
		t.Errorf("LookupGroup(4242) = %d, %v", gid, err)
	}
	if _, err := host.LookupUser(ctx, h, "no-such-user-here"); err == nil || !strings.Contains(err.Error(), "no-such-user-here") {
		t.Errorf("LookupUser of an unknown name: %v", err)
	}
	if name := host.UserName(ctx, h, 0); name != "root" {
		t.Errorf("UserName(0) = %q", name)
	}
	if name := host.GroupName(ctx, h, 4242424); name != "4242424" {
		t.Errorf("GroupName of an unnamed gid = %q", name)
	}
}

func isRoot(ctx context.Context, t *testing.T, h host.Host) bool {
	out, err := h.Run(ctx, "id", "-u")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out)) == "0"
}

func testMissing(t *testing.T, ctx context.Context, tg Target) {
	h, p := tg.Host, path.Join(tg.Dir, "missing")
	if _, err := h.ReadFile(ctx, p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile of a missing file: %v, want fs.ErrNotExist", err)
	}
	if _, err := h.Stat(ctx, p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a missing file: %v, want fs.ErrNotExist", err)
	}
	if _, err := h.SHA256(ctx, p); err == nil {
		t.Error("SHA256 of a missing file succeeded")
	}
	if err := h.Remove(ctx, p); err != nil {
		t.Errorf("Remove of a missing file: %v", err)
	}
	if err := h.RemoveAll(ctx, p); err != nil {
		t.Errorf("RemoveAll of a missing path: %v", err)
	}
}

func testDirs(t *testing.T, ctx context.Context, tg Target) {
	h := tg.Host
	deep := path.Join(tg.Dir, "a", "b", "c")
	if err := h.MkdirAll(ctx, deep, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := h.MkdirAll(ctx, deep, 0o750); err != nil {
		t.Fatalf("MkdirAll of an existing folder: %v", err)
	}
	st, err := h.Stat(ctx, deep)
	if err != nil || !st.IsDir() {
		t.Fatalf("Stat(%s) = %+v, %v; want a folder", deep, st, err)
	}
	if err := h.WriteFile(ctx, path.Join(deep, "f"), []byte("x"), host.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := h.Remove(ctx, path.Join(deep, "f")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Stat(ctx, path.Join(deep, "f")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file still there after Remove: %v", err)
	}
	if err := h.WriteFile(ctx, path.Join(deep, "g"), []byte("x"), host.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := h.RemoveAll(ctx, path.Join(tg.Dir, "a")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Stat(ctx, path.Join(tg.Dir, "a")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("tree still there after RemoveAll: %v", err)
	}
}

func testSHA256(t *testing.T, ctx context.Context, tg Target) {
	p := path.Join(tg.Dir, "f")
	data := []byte("hash me\n")
	if err := tg.Host.WriteFile(ctx, p, data, host.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if got, err := tg.Host.SHA256(ctx, p); err != nil || got != hex.EncodeToString(sum[:]) {
		t.Errorf("SHA256 = %q, %v; want %x", got, err, sum)
	}
}

func testLock(t *testing.T, ctx context.Context, tg Target) {
	h, p := tg.Host, path.Join(tg.Dir, "f.lock")
	unlock, err := h.Lock(ctx, p, false)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := h.Stat(ctx, p); err != nil || st.Mode.Perm() != 0o600 {
		t.Errorf("lock file: %+v, %v; want mode 0600", st, err)
	}
	if _, err := h.Lock(ctx, p, false); !errors.Is(err, host.ErrLocked) {
		t.Fatalf("second Lock without wait: %v, want ErrLocked", err)
	}
	// A real flock on the host sees the lock too.
	if _, err := h.Run(ctx, "flock", "-n", p, "true"); err == nil {
		t.Error("flock -n on the host took a lock Lock holds")
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = h.Lock(short, p, true)
	cancel()
	if err == nil {
		t.Fatal("waiting Lock took a held lock")
	}
	got := make(chan error, 1)
	go func() {
		u, err := h.Lock(ctx, p, true)
		if err == nil {
			u()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("waiting Lock returned %v while the lock was held", err)
	case <-time.After(200 * time.Millisecond):
	}
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("waiting Lock after release: %v", err)
		}
	case <-time.After(testutil.HangGuard):
		t.Fatal("waiting Lock did not get the released lock")
	}
	if _, err := h.Run(ctx, "flock", "-n", p, "true"); err != nil {
		t.Errorf("flock -n on the host after release: %v", err)
	}
}

func testProcess(t *testing.T, ctx context.Context, tg Target) {
	h := tg.Host
	logFile := path.Join(tg.Dir, "out.log")
	pid, err := h.Start(ctx, host.Command{
		Path: "/bin/sh", Args: []string{"-c", `echo "started in $(pwd)"; exec sleep 60`},
		Dir: tg.Dir, LogFile: logFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Signal(context.Background(), pid, syscall.SIGKILL) })
	deadline := time.Now().Add(10 * time.Second)
	for !host.Runs(ctx, h, pid, "sleep", "60") {
		if time.Now().After(deadline) {
			p, err := h.Process(ctx, pid)
			t.Fatalf("started process %d: %+v, %v", pid, p, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if host.Runs(ctx, h, pid, "sleep", "61") {
		t.Error("Runs matched arguments the process does not have")
	}
	for {
		b, _ := h.ReadFile(ctx, logFile)
		if strings.Contains(string(b), "started in "+tg.Dir) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log %s = %q, want the line the process wrote in its folder", logFile, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st, err := h.Stat(ctx, logFile); err != nil || st.Mode.Perm() != 0o600 {
		t.Errorf("log file: %+v, %v; want mode 0600", st, err)
	}
	// The process outlives the call that started it, in its own session.
	out, err := h.Run(ctx, "ps", "-o", "sid=", "-p", strconv.Itoa(pid))
	if err != nil || strings.TrimSpace(string(out)) != strconv.Itoa(pid) {
		t.Errorf("session of %d = %q, %v; want its own", pid, out, err)
	}
	if err := host.Stop(ctx, h, pid, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if host.Alive(ctx, h, pid) {
		t.Error("process alive after Stop")
	}
	if err := h.Signal(ctx, pid, syscall.SIGTERM); !errors.Is(err, host.ErrNoProcess) {
		t.Errorf("Signal to a gone process: %v, want ErrNoProcess", err)
	}
	if p, err := h.Process(ctx, 1<<22+1); err != nil || p.Alive {
		t.Errorf("Process of an unused pid = %+v, %v", p, err)
	}
}

func testRun(t *testing.T, ctx context.Context, tg Target) {
	out, err := tg.Host.Run(ctx, "printf", "%s|", "two words", "it's")
	if err != nil || string(out) != "two words|it's|" {
		t.Errorf("Run(printf) = %q, %v; arguments must arrive as they are", out, err)
	}
	_, err = tg.Host.Run(ctx, "sh", "-c", "echo oops >&2; exit 3")
	if err == nil || !strings.Contains(err.Error(), "oops") {
		t.Errorf("failing Run: %v, want its standard error", err)
	}
	if _, err := host.DetectPlatform(ctx, tg.Host); err != nil {
		t.Errorf("DetectPlatform: %v", err)
	}
}

// testWriteExec writes executables and runs each as soon as it is written,
// from several goroutines at once, as one apply installs and starts several
// servers' runtimes. No run may fail with "text file busy": a process
// forked for one run must not hold another goroutine's executable open for
// writing (golang/go#22315).
func testWriteExec(t *testing.T, ctx context.Context, tg Target) {
	h := tg.Host
	exe, err := h.ReadFile(ctx, "/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	const workers, rounds = 4, 50
	errs := make(chan error, workers*rounds)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				p := path.Join(tg.Dir, fmt.Sprintf("exe-%d-%d", w, i))
				if err := h.WriteFile(ctx, p, exe, host.WriteOptions{Mode: 0o755}); err != nil {
					errs <- err
					return
				}
				if _, err := h.Run(ctx, p); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 3 {
			t.Error(err)
		}
	}
	if n > 0 {
		t.Errorf("%d of %d runs of a freshly written executable failed", n, workers*rounds)
	}
}

func testDial(t *testing.T, ctx context.Context, tg Target) {
	ln, p := tg.ListenUnix(t)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				c.Write([]byte("echo " + line))
			}()
		}
	}()
	for i := range 3 {
		c, err := tg.Host.DialUnix(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		msg := "hello " + strconv.Itoa(i) + "\n"
		c.Write([]byte(msg))
		got, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || got != "echo "+msg {
			t.Fatalf("answer %q, %v; want %q", got, err, "echo "+msg)
		}
	}
	if _, err := tg.Host.DialUnix(ctx, path.Join(tg.Dir, "no.sock")); err == nil {
		t.Error("DialUnix of a missing socket succeeded")
	}
}
