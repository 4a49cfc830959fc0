package host_test

import (
	"context"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/host/hosttest"
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
