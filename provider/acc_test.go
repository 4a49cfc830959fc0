package provider

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"

	mailruntime "github.com/mailstack/terraform-provider-mailstack/runtime"
	"github.com/mailstack/terraform-provider-mailstack/runtime/supervise"
)

// The acceptance-test harness that every resource's tests share:
//
//   - providerFactories serves this provider in-process to the real
//     terraform binary (TF_ACC=1, TF_ACC_TERRAFORM_PATH);
//   - TestMain builds the real provider executable once, since the runtime
//     the provider installs must be a real `runtime serve`, not the test
//     binary;
//   - newAccEnv gives each test its own state directory and free loopback
//     ports, and stops every runtime the test started, whatever happens.

var providerFactories = map[string]func() (tfprotov6.ProviderServer, error){
	"mailstack": providerserver.NewProtocol6WithError(New("test")()),
}

// runtimeExe is the provider executable TestMain built for the runtime.
var runtimeExe string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if os.Getenv("TF_ACC") == "" {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "mailstack-acc-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	runtimeExe = filepath.Join(dir, "terraform-provider-mailstack")
	build := exec.Command("go", "build", "-o", runtimeExe, "..")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the provider executable for the runtime:", err)
		return 1
	}
	os.Setenv(RuntimeExecutableEnv, runtimeExe)
	// Reattached providers get this namespace; the default ("-") is a
	// legacy one that OpenTofu refuses outside its own registry.
	if os.Getenv("TF_ACC_PROVIDER_NAMESPACE") == "" {
		os.Setenv("TF_ACC_PROVIDER_NAMESPACE", "mailstack")
	}
	return m.Run()
}

// accEnv is one acceptance test's world: a provider state directory and
// free ports on 127.0.0.1.
type accEnv struct {
	t        *testing.T
	StateDir string
}

func newAccEnv(t *testing.T) *accEnv {
	t.Helper()
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance test: set TF_ACC=1 (make test does)")
	}
	// Short path: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "msacc-")
	if err != nil {
		t.Fatal(err)
	}
	env := &accEnv{t: t, StateDir: dir}
	t.Cleanup(func() {
		env.stopRuntimes()
		os.RemoveAll(dir)
	})
	return env
}

// stopRuntimes stops every supervisor and then every runtime under the
// state directory, so no daemon outlives the test even when it failed
// half-way. Supervisors go first: a runtime stopped alone is restarted.
func (e *accEnv) stopRuntimes() {
	for _, name := range []string{supervise.PIDFile, mailruntime.PIDFile} {
		pids, _ := filepath.Glob(filepath.Join(e.StateDir, "*", name))
		for _, p := range pids {
			pid, err := hostLocal.ReadPID(p)
			if err != nil || pid == 0 {
				continue
			}
			if hostLocal.Runs(pid, "--state-dir", filepath.Dir(p)) {
				e.t.Logf("stopping pid %d left by the test (%s)", pid, p)
				_ = hostLocal.Stop(pid, 10*time.Second)
			}
		}
	}
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func (e *accEnv) FreePort() int {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// ProviderBlock configures the provider for this test's state directory.
func (e *accEnv) ProviderBlock() string {
	return fmt.Sprintf("provider \"mailstack\" {\n  state_dir = %q\n}\n", e.StateDir)
}

// Path returns a file path inside the test's folder.
func (e *accEnv) Path(name string) string { return filepath.Join(e.StateDir, name) }

// runTool runs an external tool and returns its combined output; the test
// is skipped when the tool is not installed.
func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not on PATH", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}
