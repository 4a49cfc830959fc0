package netns

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Client keys and an SSH agent made by OpenSSH's own tools (openssh-client),
// for the login paths a key made in Go would not prove: keys encrypted by
// ssh-keygen, and keys held by a real ssh-agent.

// Key formats ssh-keygen writes.
const (
	// KeyOpenSSH is ssh-keygen's default format (an Ed25519 key).
	KeyOpenSSH = "openssh"
	// KeyPEM is the legacy PEM format of an RSA key (-m PEM), encrypted
	// with AES-128-CBC as in OpenSSL's "Proc-Type: 4,ENCRYPTED".
	KeyPEM = "pem"
)

// KeyWithPassphrase makes a client key with ssh-keygen -N passphrase in
// format (KeyOpenSSH or KeyPEM), lets it log in to the host, and returns
// the content of its private key file.
func (h *Host) KeyWithPassphrase(format, passphrase string) []byte {
	h.t.Helper()
	args := []string{"-q", "-C", "mailstack-test", "-N", passphrase}
	switch format {
	case KeyOpenSSH:
		args = append(args, "-t", "ed25519")
	case KeyPEM:
		args = append(args, "-t", "rsa", "-b", "2048", "-m", "PEM")
	default:
		h.t.Fatalf("unknown key format %q", format)
	}
	file := filepath.Join(h.t.TempDir(), "id")
	h.must("ssh-keygen", append(args, "-f", file)...)
	priv, err := os.ReadFile(file)
	if err != nil {
		h.t.Fatal(err)
	}
	pub, err := os.ReadFile(file + ".pub")
	if err != nil {
		h.t.Fatal(err)
	}
	h.Authorize(pub)
	return priv
}

// Authorize adds a public key (authorized_keys form) to those that may
// log in; sshd reads the file at every login.
func (h *Host) Authorize(authorizedKey []byte) {
	h.t.Helper()
	f, err := os.OpenFile(h.keys, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(append([]byte(strings.TrimSpace(string(authorizedKey))), '\n')); err != nil {
		h.t.Fatal(err)
	}
}

// Agent is a real ssh-agent on a socket of its own, running for one test.
type Agent struct {
	t testing.TB
	// Sock is the agent's socket, for SSH_AUTH_SOCK.
	Sock string
	cmd  *exec.Cmd
}

// StartAgent starts ssh-agent (in the foreground, so that the test owns
// its process) and adds keys, unencrypted private key files' contents,
// with ssh-add. Cleanup stops it. The test is skipped without
// openssh-client's ssh-agent and ssh-add.
func StartAgent(t testing.TB, keys ...[]byte) *Agent {
	t.Helper()
	for _, tool := range []string{"ssh-agent", "ssh-add"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found (the SSH agent tests need openssh-client)", tool)
		}
	}
	// Short path: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "msagent-")
	if err != nil {
		t.Fatal(err)
	}
	a := &Agent{t: t, Sock: filepath.Join(dir, "agent.sock")}
	a.cmd = exec.Command("ssh-agent", "-D", "-a", a.Sock)
	if err := a.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = a.cmd.Process.Kill()
		_ = a.cmd.Wait()
		os.RemoveAll(dir)
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(a.Sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssh-agent did not create %s", a.Sock)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i, k := range keys {
		file := filepath.Join(dir, "key"+strconv.Itoa(i))
		if err := os.WriteFile(file, k, 0o600); err != nil {
			t.Fatal(err)
		}
		a.sshAdd(file)
		os.Remove(file)
	}
	// ssh-add has exited, but the agent may not have seen its connection
	// close yet: wait until it holds only its listening socket, so that a
	// test's first count is the idle one.
	for a.Sockets() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("ssh-agent still holds %d sockets after ssh-add exited", a.Sockets())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return a
}

// RemoveAll deletes every key the agent holds (ssh-add -D).
func (a *Agent) RemoveAll() { a.t.Helper(); a.sshAdd("-D") }

func (a *Agent) sshAdd(args ...string) {
	a.t.Helper()
	cmd := exec.Command("ssh-add", args...)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+a.Sock)
	if out, err := cmd.CombinedOutput(); err != nil {
		a.t.Fatalf("ssh-add %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Sockets counts the sockets the agent process holds: its listening
// socket and one per client connection open now.
func (a *Agent) Sockets() int {
	fds, _ := os.ReadDir("/proc/" + strconv.Itoa(a.cmd.Process.Pid) + "/fd")
	n := 0
	for _, fd := range fds {
		l, err := os.Readlink("/proc/" + strconv.Itoa(a.cmd.Process.Pid) + "/fd/" + fd.Name())
		if err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}
