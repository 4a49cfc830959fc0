package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil/pgtest"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
)

// binary is the runtime executable, built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "mailstack-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "terraform-provider-mailstack")
		cmd := exec.Command("go", "build", "-o", binary, "github.com/mailstack/terraform-provider-mailstack")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building the runtime:", err)
			return 1
		}
		return pgtest.Main(m)
	}())
}

const (
	keystorePassword = "ks-secret"
	userPassword     = "alice-secret"
	user             = "alice@example.com"
)

// process is one run of `runtime serve` on a state directory.
type process struct {
	t      testing.TB
	dir    string
	cmd    *exec.Cmd
	log    *testutil.SyncBuffer
	exited chan struct{}
	err    error // Wait's result, once exited is closed
	client *control.Client
}

// serve starts the runtime on dir and waits until its control API answers.
// It is killed when the test ends if it still runs; its log is shown when
// the test failed.
func serve(t testing.TB, dir string) *process {
	t.Helper()
	p := &process{t: t, dir: dir, log: &testutil.SyncBuffer{}, exited: make(chan struct{}), client: statedir.Local(dir).Client()}
	p.cmd = exec.Command(binary, "runtime", "serve", "--state-dir", dir)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("runtime log (pid %d):\n%s", p.cmd.Process.Pid, p.log.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if st, err := p.client.Status(context.Background()); err == nil && st.PID == p.cmd.Process.Pid {
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("the runtime exited during start-up: %v\n%s", p.err, p.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the runtime did not answer within 15s\n%s", p.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *process) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// wait waits up to d for the process to exit by itself.
func (p *process) wait(d time.Duration) error {
	select {
	case <-p.exited:
		return p.err
	case <-time.After(d):
		return errors.New("still running")
	}
}

// setup writes a config.json for a fresh state directory and a keystore,
// and returns the client TLS config that trusts it. opts change the server
// settings written.
func setup(t testing.TB, opts ...func(*config.Server)) (dir string, ks config.TLS, clientTLS *tls.Config) {
	t.Helper()
	dir = t.TempDir()
	srv := config.Server{Hostname: "mail.example.com", Domains: []string{"example.com"}}
	for _, o := range opts {
		o(&srv)
	}
	if err := statedir.Local(dir).Create(context.Background(), &config.Document{Server: srv}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "mail.p12")
	cert := testutil.WriteKeystore(t, testutil.Keystore{
		Path: path, Password: keystorePassword, Format: keystore.PKCS12, Alias: "mail",
		Hosts: []string{"mail.example.com"},
	})
	return dir, config.TLS{Mode: config.TLSImplicit, KeystorePath: path, KeystorePassword: keystorePassword},
		cert.ClientConfig("mail.example.com")
}
