// Package netns gives a test remote hosts of its own on this machine: each
// Host is a network namespace the test creates (a veth pair to the test's
// namespace, its own 10.x address) with a private mount namespace whose
// work folder is a tmpfs the test process cannot see, and a real OpenSSH
// sshd (Debian's openssh-server) listening there. What a test finds on such
// a host got there over SSH. Cleanup stops every process in the host's
// namespaces and removes the namespaces, links and mounts; a marker file
// in TMPDIR lets scripts/reap.sh do that for a test binary that was killed.
//
// It needs root, ip(8), unshare(1), nsenter(1) and /usr/sbin/sshd; New
// skips the test without them.
package netns

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// SSHD is where Debian's openssh-server installs the daemon.
const SSHD = "/usr/sbin/sshd"

// Host is one remote host for a test.
type Host struct {
	t testing.TB
	// Name is the network namespace's name.
	Name string
	// IP is the host's address; Addr is IP:22, where sshd listens.
	IP, Addr string
	// LocalIP is the address of the veth end in the test's namespace: a
	// server the test runs there on LocalIP is reached by the host's
	// clients from IP, an address that is not loopback.
	LocalIP string
	// User logs in with ClientKey (an OpenSSH private key, PEM).
	User      string
	ClientKey []byte
	// HostKey is sshd's public host key, in authorized_keys form.
	HostKey string
	// Root is the host's private work folder (a tmpfs): the test process
	// sees an empty folder at this path. The login's home is Path("root").
	// Only Root is the host's own: any other path (/var/lib, the test's
	// TMPDIR) is this machine's folder, and the PID namespace is shared
	// too, so a test names every remote path with Path; a remote
	// state_dir outside Root would share the local one's folder.
	Root string

	conf, log string
	keys      string    // sshd's authorized_keys file
	link      string    // the veth end in the test's namespace
	nsLink    string    // the veth end in the host's namespace
	holder    *exec.Cmd // keeps the mount namespace alive
	marker    string    // names the namespace for scripts/reap.sh

	mu   sync.Mutex
	sshd *exec.Cmd
}

var seq atomic.Int64

// New starts a remote host; cleanup stops it.
func New(t testing.TB) *Host {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("remote hosts in network namespaces need root")
	}
	for _, tool := range []string{"ip", "tc", "unshare", "nsenter", SSHD} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found (the remote-host tests need iproute2, util-linux and openssh-server)", tool)
		}
	}
	n := seq.Add(1)
	idx := (os.Getpid()*64 + int(n)) & (1<<22 - 1)
	base := 10<<24 | idx*4
	ip := func(off int) string {
		v := base + off
		return fmt.Sprintf("%d.%d.%d.%d", v>>24&255, v>>16&255, v>>8&255, v&255)
	}
	tag := fmt.Sprintf("%06x", idx)
	h := &Host{
		t:       t,
		Name:    "mailstack-" + tag,
		IP:      ip(2),
		LocalIP: ip(1),
		User:    "root",
	}
	h.Addr = h.IP + ":22"
	work := t.TempDir()
	h.Root = "/tmp/mailstack-host-" + tag
	h.conf, h.log = filepath.Join(work, "sshd_config"), filepath.Join(work, "sshd.log")
	// A test binary killed by its -timeout runs no cleanup: the marker,
	// in the run's TMPDIR, names what to remove for scripts/reap.sh.
	h.marker = filepath.Join(os.TempDir(), "mailstack-netns-"+tag)
	if err := os.WriteFile(h.marker, []byte(h.Name+" "+h.Root+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.close)

	hostSide, nsSide := "ms"+tag+"h", "ms"+tag+"n"
	h.link, h.nsLink = hostSide, nsSide
	h.must("ip", "netns", "add", h.Name)
	h.must("ip", "link", "add", hostSide, "type", "veth", "peer", "name", nsSide)
	h.must("ip", "link", "set", nsSide, "netns", h.Name)
	h.must("ip", "addr", "add", ip(1)+"/30", "dev", hostSide)
	h.must("ip", "link", "set", hostSide, "up")
	h.must("ip", "netns", "exec", h.Name, "ip", "addr", "add", ip(2)+"/30", "dev", nsSide)
	h.must("ip", "netns", "exec", h.Name, "ip", "link", "set", nsSide, "up")
	h.must("ip", "netns", "exec", h.Name, "ip", "link", "set", "lo", "up")

	if err := os.MkdirAll(h.Root, 0o700); err != nil {
		t.Fatal(err)
	}
	// The host's own /etc/passwd gives root a home in the private folder
	// and /bin/sh as shell, so that nothing of this machine's root login
	// (its ~/.bashrc, its ~/.local/state) is part of the remote host.
	passwd := filepath.Join(work, "passwd")
	h.writePasswd(passwd)
	h.holder = exec.Command("ip", "netns", "exec", h.Name, "unshare", "--mount", "--propagation", "private", "--",
		"sh", "-c", "mount -t tmpfs -o mode=0700,size=512m mailstack-host "+h.Root+" && mkdir -m 0700 "+h.Path("root")+
			" && mount --bind "+passwd+" /etc/passwd && echo mounted && exec sleep 86400")
	var holderOut bytes.Buffer
	h.holder.Stdout, h.holder.Stderr = &holderOut, &holderOut
	if err := h.holder.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(holderOut.String(), "mounted") {
		if time.Now().After(deadline) || h.holder.ProcessState != nil {
			t.Fatalf("mount namespace for %s: %s", h.Name, holderOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	hostPriv := h.writeKeys(work)
	h.writeConfig(work, hostPriv)
	h.StartSSHD()
	return h
}

func (h *Host) must(name string, args ...string) {
	h.t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		h.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// writePasswd writes this machine's /etc/passwd with root's home and
// shell replaced.
func (h *Host) writePasswd(p string) {
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		h.t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if f := strings.Split(l, ":"); len(f) == 7 && f[0] == "root" {
			f[5], f[6] = h.Path("root"), "/bin/sh"
			lines[i] = strings.Join(f, ":")
		}
	}
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// writeKeys makes sshd's host key and the client's key; it returns the
// host key file.
func (h *Host) writeKeys(dir string) string {
	hostPub, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	clientPub, clientPriv, _ := ed25519.GenerateKey(rand.Reader)
	hk, err := ssh.NewPublicKey(hostPub)
	if err != nil {
		h.t.Fatal(err)
	}
	h.HostKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hk)))
	block, err := ssh.MarshalPrivateKey(hostPriv, "")
	if err != nil {
		h.t.Fatal(err)
	}
	hostFile := filepath.Join(dir, "ssh_host_ed25519_key")
	if err := os.WriteFile(hostFile, pem.EncodeToMemory(block), 0o600); err != nil {
		h.t.Fatal(err)
	}
	block, err = ssh.MarshalPrivateKey(clientPriv, "")
	if err != nil {
		h.t.Fatal(err)
	}
	h.ClientKey = pem.EncodeToMemory(block)
	ck, _ := ssh.NewPublicKey(clientPub)
	h.keys = filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(h.keys, ssh.MarshalAuthorizedKey(ck), 0o600); err != nil {
		h.t.Fatal(err)
	}
	return hostFile
}

func (h *Host) writeConfig(dir, hostKey string) {
	conf := fmt.Sprintf(`ListenAddress %s:22
HostKey %s
PidFile none
UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile %s
StrictModes no
Subsystem sftp internal-sftp
AllowStreamLocalForwarding yes
X11Forwarding no
MaxStartups 100
MaxSessions 10
LogLevel INFO
`, h.IP, hostKey, h.keys)
	if err := os.WriteFile(h.conf, []byte(conf), 0o600); err != nil {
		h.t.Fatal(err)
	}
	// Debian's sshd wants its privilege separation folder.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		h.t.Fatal(err)
	}
}

// StartSSHD starts sshd in the host's namespaces and waits until it
// accepts connections.
func (h *Host) StartSSHD() {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	cmd := exec.Command("nsenter", "-t", strconv.Itoa(h.holder.Process.Pid), "-m", "-n", "--",
		SSHD, "-D", "-f", h.conf, "-E", h.log)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.sshd = cmd
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", h.Addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(h.log)
			h.t.Fatalf("sshd in %s exited: %s%s", h.Name, out.String(), log)
		default:
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("sshd in %s does not accept connections on %s: %v", h.Name, h.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SetUnreachable takes the host off the wire (its end of the veth pair
// down), or puts it back: packets to it are lost on the veth, and never
// leave this machine.
func (h *Host) SetUnreachable(down bool) {
	h.t.Helper()
	state := "up"
	if down {
		state = "down"
	}
	h.must("ip", "netns", "exec", h.Name, "ip", "link", "set", h.nsLink, state)
}

// SetRate limits the bandwidth from this machine to the host (a token
// bucket on this side of the veth pair), so that a large copy takes
// seconds; an empty rate lifts the limit.
func (h *Host) SetRate(rate string) {
	h.t.Helper()
	if rate == "" {
		h.must("tc", "qdisc", "del", "dev", h.link, "root")
		return
	}
	h.must("tc", "qdisc", "replace", "dev", h.link, "root", "tbf", "rate", rate, "burst", "64kb", "latency", "100ms")
}

// KillSSHD kills sshd and every session it serves (kill -9, as a crash
// would), leaving the processes started through it running.
//
// The listener goes first: killed after its sessions, it could still fork
// one for a client that reconnects the moment its session dies, and that
// session, forked after any list of its children was taken, would live on
// and serve the client as if nothing had happened. Then every sshd left
// in the host's namespaces goes, whoever its parent is by now.
func (h *Host) KillSSHD() {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sshd == nil {
		return
	}
	_ = h.sshd.Process.Kill()
	h.sshd = nil
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := h.live("sshd")
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("sshd processes %v in %s survive SIGKILL", pids, h.Name)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(time.Millisecond)
	}
}

// Logins counts the SSH logins sshd accepted so far.
func (h *Host) Logins() int {
	b, _ := os.ReadFile(h.log)
	return bytes.Count(b, []byte("Accepted publickey for "))
}

// Path is a path inside the host's private work folder.
func (h *Host) Path(name ...string) string {
	return filepath.Join(append([]string{h.Root}, name...)...)
}

// ReadFile reads a file as the host sees it, behind its back (through
// /proc/<pid>/root of a process in its mount namespace).
func (h *Host) ReadFile(p string) ([]byte, error) {
	return os.ReadFile(filepath.Join("/proc", strconv.Itoa(h.holder.Process.Pid), "root", p))
}

// ReadDir lists a folder as the host sees it, behind its back.
func (h *Host) ReadDir(p string) ([]os.DirEntry, error) {
	return os.ReadDir(filepath.Join("/proc", strconv.Itoa(h.holder.Process.Pid), "root", p))
}

// Exec runs a command in the host's namespaces and returns its output.
func (h *Host) Exec(name string, args ...string) (string, error) {
	a := append([]string{"-t", strconv.Itoa(h.holder.Process.Pid), "-m", "-n", "--", name}, args...)
	out, err := exec.Command("nsenter", a...).CombinedOutput()
	return string(out), err
}

// SetReadOnly remounts the host's work folder read-only (or back).
func (h *Host) SetReadOnly(ro bool) {
	h.t.Helper()
	opt := "remount,rw"
	if ro {
		opt = "remount,ro"
	}
	if out, err := h.Exec("mount", "-o", opt, h.Root); err != nil {
		h.t.Fatalf("mount -o %s %s: %v\n%s", opt, h.Root, err, out)
	}
}

// Processes lists the pids of the processes in the host's mount
// namespace (sshd, its sessions and whatever they started), but not the
// namespace's keeper.
func (h *Host) Processes() []int {
	want, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", h.holder.Process.Pid))
	if err != nil {
		return nil
	}
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == h.holder.Process.Pid {
			continue
		}
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid)); err == nil && ns == want {
			pids = append(pids, pid)
		}
	}
	return pids
}

func (h *Host) close() {
	if h.holder != nil && h.holder.Process != nil {
		// Everything in the namespace, then its keeper.
		for range 3 {
			pids := h.Processes()
			if len(pids) == 0 {
				break
			}
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = h.holder.Process.Kill()
		_ = h.holder.Wait()
	}
	_ = exec.Command("ip", "netns", "del", h.Name).Run()
	_ = exec.Command("ip", "link", "del", h.link).Run()
	if h.Root != "" {
		_ = os.Remove(h.Root)
	}
	_ = os.Remove(h.marker)
	if h.t.Failed() {
		if b, err := os.ReadFile(h.log); err == nil {
			h.t.Logf("sshd log of %s:\n%s", h.Name, b)
		}
	}
}

// live lists the processes in the host's namespaces that run comm and
// have not exited (a zombie waits only for its parent to collect it).
func (h *Host) live(comm string) []int {
	var out []int
	for _, pid := range h.Processes() {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ...; comm may hold spaces and parentheses.
		s := string(stat)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing+2 >= len(s) {
			continue
		}
		if s[open+1:closing] == comm && s[closing+2] != 'Z' && s[closing+2] != 'X' {
			out = append(out, pid)
		}
	}
	return out
}
