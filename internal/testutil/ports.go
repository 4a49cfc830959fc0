package testutil

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Ports for servers the test does not bind itself.
//
// A test that runs its own server listens on 127.0.0.1:0 and reads the port
// from the listener: nothing can take it in between. Some ports must be
// known before the server binds them: a child process's configuration
// (Pebble, Postfix, Unbound, the runtime binary), a Terraform configuration,
// a challenge address the CA is told about. Between the check that such a
// port is free and the bind, another program could take it - and on a
// machine running several packages' tests at once (go test runs GOMAXPROCS
// test binaries in parallel) one did, now and then. FreePorts closes that
// window for everything but a foreign program binding a fixed port:
//
//   - the ports come from below the kernel's ephemeral range
//     (net.ipv4.ip_local_port_range), which the kernel never hands out for a
//     listener on port 0 or for an outgoing connection's local port, so no
//     test's own servers and no client anywhere can take them;
//   - each port is claimed with an open-file-description lock on its byte
//     of one lock file that every test process shares, held until the test
//     ends (or its process dies), so two pickers, in one process or in
//     several, never hand out the same port at once;
//   - it is free on 127.0.0.1 for both TCP and UDP when handed out.
//
// What remains (a foreign program binding the port in between) is for
// StartOnFreePorts to retry, where a child process binds the ports.

// portRangeLow is the lowest port FreePorts hands out: above the ports
// people configure by hand (the demo's 2xxx, PostgreSQL's 5432, 8080, 9154).
const portRangeLow = 10000

var portRange = sync.OnceValues(func() (lo, hi int) {
	ephLo, ephHi := 32768, 60999 // Linux's default
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			l, err1 := strconv.Atoi(f[0])
			h, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && l <= h {
				ephLo, ephHi = l, h
			}
		}
	}
	// The larger of the two gaps around the ephemeral range; none that is
	// too small to pick from at random (then: the kernel's choice).
	lo, hi = portRangeLow, ephLo
	if 65536-(ephHi+1) > hi-lo {
		lo, hi = max(ephHi+1, portRangeLow), 65536
	}
	if hi-lo < 1000 {
		return 0, 0
	}
	return lo, hi
})

// portLockPath is the file whose byte n claims port n for one test.
var portLockPath = filepath.Join(os.TempDir(), "mailstack-test-ports.lock")

// FreePort returns a TCP port on 127.0.0.1 that is free and reserved for
// this test until it ends; see FreePorts.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePorts(t, 1)[0]
}

// FreePorts returns n distinct ports for servers that a child process, a
// configuration or the code under test binds later: free on 127.0.0.1 for
// TCP and UDP now, outside the range the kernel picks from, and reserved
// against every other FreePorts caller (in any test process) until the test
// ends. A test that binds its own server listens on 127.0.0.1:0 instead.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports, release, err := reservePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return ports
}

// reservePorts claims n ports; release gives them back.
func reservePorts(n int) (ports []int, release func(), err error) {
	lo, hi := portRange()
	if lo == 0 {
		return kernelPorts(n)
	}
	var locks []*os.File
	release = func() {
		for _, f := range locks {
			f.Close() // drops its lock
		}
	}
	for tries := 0; len(ports) < n; tries++ {
		if tries == 1000 {
			release()
			return nil, nil, fmt.Errorf("no free port in %d-%d after %d tries", lo, hi-1, tries)
		}
		p := lo + rand.IntN(hi-lo)
		f, err := claimPort(p)
		if err != nil {
			release()
			return nil, nil, err
		}
		if f == nil {
			continue // another test holds it
		}
		if !portFree(p) {
			f.Close()
			continue
		}
		locks = append(locks, f)
		ports = append(ports, p)
	}
	return ports, release, nil
}

// claimPort takes the lock on port p's byte of the lock file; nil if
// another open file description (another test) holds it.
func claimPort(p int) (*os.File, error) {
	f, err := os.OpenFile(portLockPath, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("port lock file: %w", err)
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: int64(p), Len: 1}
	err = unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		f.Close()
		return nil, nil
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking port %d in %s: %w", p, portLockPath, err)
	}
	return f, nil
}

// portFree reports whether TCP and UDP port p can be bound on 127.0.0.1.
func portFree(p int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	pc.Close()
	return true
}

// kernelPorts is FreePorts where the ephemeral range leaves no room: ports
// the kernel chose, free a moment ago and not reserved.
func kernelPorts(n int) ([]int, func(), error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, func() {}, nil
}

// AddrInUse reports whether err says that an address was taken: a bind's
// EADDRINUSE, or a child process's error output quoted in err that says so.
func AddrInUse(err error) bool {
	return err != nil && (errors.Is(err, syscall.EADDRINUSE) || strings.Contains(strings.ToLower(err.Error()), "address already in use"))
}

// StartOnFreePorts calls start with n ports from FreePorts, and again with
// fresh ones, up to 5 times in all, when it fails because a port was taken
// after all (an error AddrInUse recognizes): the one retry a server that
// binds ports the test chose needs. start must undo what it started before
// it returns an error. Any other error fails the test. The ports stay
// reserved until the test ends, after the cleanups start registered.
func StartOnFreePorts(t testing.TB, n int, start func(ports []int) error) {
	t.Helper()
	var held func()
	t.Cleanup(func() {
		if held != nil {
			held()
		}
	})
	var err error
	for range 5 {
		ports, release, rerr := reservePorts(n)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if err = start(ports); err == nil {
			held = release
			return
		}
		release()
		if !AddrInUse(err) {
			t.Fatal(err)
		}
		t.Logf("ports %v: %v; trying others", ports, err)
	}
	t.Fatal(err)
}
