package host_test

import (
	"net"
	"path/filepath"
	"testing"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/host/hosttest"
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
