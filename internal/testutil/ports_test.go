package testutil

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestFreePorts(t *testing.T) {
	ports := FreePorts(t, 5)
	lo, hi := portRange()
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] || p == 0 {
			t.Errorf("ports %v", ports)
		}
		seen[p] = true
		if lo != 0 && (p < lo || p >= hi) {
			t.Errorf("port %d is outside %d-%d, the range beside the kernel's ephemeral ports", p, lo, hi-1)
		}
		if !portFree(p) {
			t.Errorf("port %d is not free for TCP and UDP on 127.0.0.1", p)
		}
		// Reserved: no other picker, in this process or another, gets it.
		if f, err := claimPort(p); err != nil || f != nil {
			if f != nil {
				f.Close()
			}
			t.Errorf("port %d claimed a second time in this process (%v)", p, err)
		}
	}
	if out, err := claimInChild(ports); err != nil || !strings.Contains(out, "held "+strconv.Itoa(len(ports))) {
		t.Errorf("another test process could claim the ports %v: %v\n%s", ports, err, out)
	}
}

// A reservation ends with the test that made it.
func TestFreePortsReleased(t *testing.T) {
	var ports []int
	t.Run("holder", func(t *testing.T) { ports = FreePorts(t, 3) })
	for _, p := range ports {
		f, err := claimPort(p)
		if err != nil || f == nil {
			t.Errorf("port %d still reserved after its test ended (%v)", p, err)
			continue
		}
		f.Close()
	}
}

// claimInChild runs this test binary as another process that tries to
// claim ports; it prints how many were held by someone else.
func claimInChild(ports []int) (string, error) {
	var args []string
	for _, p := range ports {
		args = append(args, strconv.Itoa(p))
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestClaimHelper$")
	cmd.Env = append(os.Environ(), "TESTUTIL_CLAIM_PORTS="+strings.Join(args, ","))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestClaimHelper is the other process of claimInChild.
func TestClaimHelper(t *testing.T) {
	list := os.Getenv("TESTUTIL_CLAIM_PORTS")
	if list == "" {
		t.Skip("helper process of TestFreePorts")
	}
	held := 0
	for _, s := range strings.Split(list, ",") {
		p, _ := strconv.Atoi(s)
		f, err := claimPort(p)
		if err != nil {
			t.Fatal(err)
		}
		if f == nil {
			held++
		} else {
			f.Close()
		}
	}
	fmt.Printf("held %d\n", held)
}

// StartOnFreePorts tries other ports when the server reports one taken,
// and fails the test at once on any other error.
func TestStartOnFreePorts(t *testing.T) {
	var tried [][]int
	StartOnFreePorts(t, 2, func(ports []int) error {
		tried = append(tried, ports)
		if len(tried) == 1 {
			// Someone took the port after all: the bind fails.
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", ports[1]))
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			_, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", ports[1]))
			return fmt.Errorf("server: %w", err)
		}
		return nil
	})
	if len(tried) != 2 || slices.Equal(tried[0], tried[1]) {
		t.Errorf("tried %v, want a second try on other ports", tried)
	}
	if !AddrInUse(fmt.Errorf("pebble exited: %s", "listen tcp 127.0.0.1:1: bind: address already in use")) {
		t.Error("a child's log saying so is not recognized")
	}
	if AddrInUse(fmt.Errorf("connection refused")) || AddrInUse(nil) {
		t.Error("other errors taken for a taken port")
	}
}
