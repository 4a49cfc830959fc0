package host_test

import (
	"context"
	"os/exec"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/host/hosttest"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil/netns"
)

// sshTo logs in to a test host as its sshd expects.
func sshTo(t *testing.T, rh *netns.Host) *host.SSH {
	t.Helper()
	h, err := host.NewSSH(host.SSHConfig{Address: rh.Addr, User: rh.User, PrivateKey: rh.ClientKey, HostKeys: []string{rh.HostKey}})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestSSH runs the Host table against a real sshd in a network namespace;
// the folder it writes in is a tmpfs only the remote host sees.
func TestSSH(t *testing.T) {
	rh := netns.New(t)
	h := sshTo(t, rh)
	hosttest.Run(t, hosttest.Target{Host: h, Dir: rh.Path("table"), ListenUnix: listenUnix})
	if _, err := (host.Local{}).Stat(context.Background(), path.Join(rh.Path("table"), "sha256", "f")); err == nil {
		t.Error("a file the SSH host wrote is visible to the test process: the table did not go over SSH")
	}
	if got, err := rh.ReadFile(path.Join(rh.Path("table"), "sha256", "f")); err != nil || string(got) != "hash me\n" {
		t.Errorf("file on the remote host: %q, %v", got, err)
	}
	if n := h.Dials(); n != 1 {
		t.Errorf("the table made %d SSH connections, want 1 shared by every call", n)
	}
}

func TestSSHReconnects(t *testing.T) {
	rh := netns.New(t)
	h := sshTo(t, rh)
	ctx := context.Background()
	if _, err := h.Run(ctx, "true"); err != nil {
		t.Fatal(err)
	}
	rh.KillSSHD()
	if _, err := h.Run(ctx, "true"); err == nil || !strings.Contains(err.Error(), rh.Addr) {
		t.Errorf("Run with sshd gone: %v, want an error naming %s", err, rh.Addr)
	}
	rh.StartSSHD()
	if _, err := h.Run(ctx, "true"); err != nil {
		t.Errorf("Run after sshd came back: %v", err)
	}
	if n := h.Dials(); n != 2 {
		t.Errorf("%d connections, want 2 (one lost, one new)", n)
	}
}

func TestSSHHostKeyErrors(t *testing.T) {
	rh := netns.New(t)
	other := netns.New(t)
	ctx := context.Background()
	// The key of another host, pinned: refused with the key seen.
	h, err := host.NewSSH(host.SSHConfig{Address: rh.Addr, User: rh.User, PrivateKey: rh.ClientKey, HostKeys: []string{other.HostKey}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.Run(ctx, "true")
	fp := fingerprint(t, rh.HostKey)
	if err == nil || !strings.Contains(err.Error(), rh.Addr) || !strings.Contains(err.Error(), fp) || !strings.Contains(err.Error(), "verification failed") {
		t.Errorf("wrong pinned key: %v; want the host %s and the fingerprint %s", err, rh.Addr, fp)
	}
	// Unknown to an empty known_hosts file.
	kh := path.Join(t.TempDir(), "known_hosts")
	writeFile(t, kh, "")
	h, err = host.NewSSH(host.SSHConfig{Address: rh.Addr, User: rh.User, PrivateKey: rh.ClientKey, KnownHosts: []string{kh}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = h.Run(ctx, "true"); err == nil || !strings.Contains(err.Error(), fp) || !strings.Contains(err.Error(), "not listed") {
		t.Errorf("unknown host: %v", err)
	}
	// Changed: known_hosts has another key for the address.
	writeFile(t, kh, rh.IP+" "+other.HostKey+"\n")
	h, _ = host.NewSSH(host.SSHConfig{Address: rh.Addr, User: rh.User, PrivateKey: rh.ClientKey, KnownHosts: []string{kh}})
	if _, err = h.Run(ctx, "true"); err == nil || !strings.Contains(err.Error(), "differs") || !strings.Contains(err.Error(), fp) {
		t.Errorf("changed host key: %v", err)
	}
	// Known: accepted.
	writeFile(t, kh, rh.IP+" "+rh.HostKey+"\n")
	h, _ = host.NewSSH(host.SSHConfig{Address: rh.Addr, User: rh.User, PrivateKey: rh.ClientKey, KnownHosts: []string{kh}})
	if _, err = h.Run(ctx, "true"); err != nil {
		t.Errorf("known host: %v", err)
	}
}

func TestSSHLoginErrors(t *testing.T) {
	rh := netns.New(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name, user string
		key        []byte
	}{
		{"wrong user", "nobody-here", rh.ClientKey},
		{"wrong key", rh.User, netns.New(t).ClientKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := host.NewSSH(host.SSHConfig{Address: rh.Addr, User: tc.user, PrivateKey: tc.key, HostKeys: []string{rh.HostKey}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = h.Run(ctx, "true")
			if err == nil || !strings.Contains(err.Error(), rh.Addr) || !strings.Contains(err.Error(), "refused") {
				t.Errorf("%v; want a refused login naming %s", err, rh.Addr)
			}
		})
	}
}

func TestSSHUnreachable(t *testing.T) {
	rh := netns.New(t)
	rh.SetUnreachable(true)
	h, err := host.NewSSH(host.SSHConfig{Address: rh.Addr, User: "root", PrivateKey: rh.ClientKey, HostKeys: []string{rh.HostKey}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = h.Run(context.Background(), "true")
	if err == nil || !strings.Contains(err.Error(), rh.Addr) || !strings.Contains(err.Error(), "cannot connect") {
		t.Errorf("unreachable host: %v; want an error naming %s", err, rh.Addr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("giving up took %s, want about the 2s timeout", d)
	}
}

// TestSSHAgent logs in with a key held by a real ssh-agent (agent = true):
// each login's agent connection is closed once the handshake is over, an
// agent without the host's key is a refused login, and no agent at all is
// an error that says so; each error names the host.
func TestSSHAgent(t *testing.T) {
	rh := netns.New(t)
	agent := netns.StartAgent(t, rh.ClientKey)
	t.Setenv("SSH_AUTH_SOCK", agent.Sock)
	idle := agent.Sockets()
	ctx := context.Background()

	h, err := host.NewSSH(host.SSHConfig{Address: rh.Addr, User: rh.User, Agent: true, HostKeys: []string{rh.HostKey}})
	if err != nil {
		t.Fatal(err)
	}
	const logins = 3
	for i := range logins {
		if i > 0 { // lose the connection, so that the next Run logs in again
			rh.KillSSHD()
			_, _ = h.Run(ctx, "true")
			rh.StartSSHD()
		}
		if out, err := h.Run(ctx, "echo", "agent"); err != nil || string(out) != "agent\n" {
			t.Fatalf("Run with the agent's key: %q, %v", out, err)
		}
	}
	if n := h.Dials(); n != logins {
		t.Errorf("%d logins, want %d", n, logins)
	}
	deadline := time.Now().Add(testutil.HangGuard)
	for agent.Sockets() != idle && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := agent.Sockets(); n != idle {
		t.Errorf("after %d logins the agent holds %d sockets, want %d: agent connections are left open", logins, n, idle)
	}

	agent.RemoveAll()
	h, _ = host.NewSSH(host.SSHConfig{Address: rh.Addr, User: rh.User, Agent: true, HostKeys: []string{rh.HostKey}})
	if _, err := h.Run(ctx, "true"); err == nil || !strings.Contains(err.Error(), rh.Addr) || !strings.Contains(err.Error(), "refused") {
		t.Errorf("an agent without the key: %v; want a refused login naming %s", err, rh.Addr)
	}

	t.Setenv("SSH_AUTH_SOCK", "")
	h, _ = host.NewSSH(host.SSHConfig{Address: rh.Addr, User: rh.User, Agent: true, HostKeys: []string{rh.HostKey}})
	if _, err := h.Run(ctx, "true"); err == nil || !strings.Contains(err.Error(), rh.Addr) || !strings.Contains(err.Error(), "SSH_AUTH_SOCK") {
		t.Errorf("no agent: %v; want an error naming %s and SSH_AUTH_SOCK", err, rh.Addr)
	}
}

// TestSSHPassphrase logs in with private keys ssh-keygen encrypted (-N),
// in OpenSSH's format and in the legacy PEM one; a wrong or missing
// passphrase is refused before any connection, naming the host.
func TestSSHPassphrase(t *testing.T) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen not found (openssh-client)")
	}
	rh := netns.New(t)
	const passphrase = "correct horse battery staple"
	for _, format := range []string{netns.KeyOpenSSH, netns.KeyPEM} {
		t.Run(format, func(t *testing.T) {
			key := rh.KeyWithPassphrase(format, passphrase)
			cfg := host.SSHConfig{Address: rh.Addr, User: rh.User, PrivateKey: key, Passphrase: []byte(passphrase), HostKeys: []string{rh.HostKey}}
			h, err := host.NewSSH(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if out, err := h.Run(context.Background(), "echo", "unlocked"); err != nil || string(out) != "unlocked\n" {
				t.Fatalf("Run with the decrypted key: %q, %v", out, err)
			}
			for _, tc := range []struct{ name, passphrase, want string }{
				{"wrong passphrase", "wrong horse", "passphrase does not decrypt"},
				{"no passphrase", "", "encrypted: set its passphrase"},
			} {
				cfg.Passphrase = []byte(tc.passphrase)
				_, err := host.NewSSH(cfg)
				if err == nil || !strings.Contains(err.Error(), rh.Addr) || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: %v; want an error naming %s that says %q", tc.name, err, rh.Addr, tc.want)
				}
			}
		})
	}
	if n := rh.Logins(); n != 2 {
		t.Errorf("sshd accepted %d logins, want 2 (none for a key that could not be decrypted)", n)
	}
}
