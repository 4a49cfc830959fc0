package host_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/host/hosttest"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

func TestLocal(t *testing.T) {
	hosttest.Run(t, hosttest.Target{Host: host.Local{}, Dir: t.TempDir(), ListenUnix: listenUnix})
}

// listenUnix opens a unix socket in a fresh temporary folder, which every
// host under test shares with the test process.
func listenUnix(t *testing.T) (net.Listener, string) {
	p := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	return ln, p
}

// A process that has exited but is not reaped yet (a zombie) is gone for
// Signal as it is for Process: a signal to it gives ErrNoProcess, as one
// to a reaped process does.
func TestLocalSignalZombie(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer cmd.Wait()
	ctx := context.Background()
	stat := fmt.Sprintf("/proc/%d/stat", pid)
	testutil.Eventually(t, "the child to exit unreaped", func() bool {
		b, err := os.ReadFile(stat)
		return err == nil && strings.Contains(string(b), ") Z ")
	})
	if p, err := (host.Local{}).Process(ctx, pid); err != nil || p.Alive {
		t.Fatalf("Process of a zombie = %+v, %v; want not alive", p, err)
	}
	if err := (host.Local{}).Signal(ctx, pid, syscall.SIGTERM); !errors.Is(err, host.ErrNoProcess) {
		t.Errorf("Signal to a zombie: %v, want ErrNoProcess", err)
	}
	cmd.Wait()
	if err := (host.Local{}).Signal(ctx, pid, syscall.SIGTERM); !errors.Is(err, host.ErrNoProcess) {
		t.Errorf("Signal to a reaped process: %v, want ErrNoProcess", err)
	}
}
