package provider

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
	"github.com/mailstack/terraform-provider-mailstack/runtime/supervise"
)

// The acceptance-test harness that every resource's tests share:
//
//   - providerFactories serves this provider in-process to the real
//     terraform binary (TF_ACC=1, TF_ACC_TERRAFORM_PATH), a new provider
//     for each terraform command, as a plugin process is. A provider
//     serves one provider configuration and refuses a second
//     (mailstackProvider.claim): a configuration with several (aliases,
//     hosts) runs real plugin processes (externalProvider);
//   - TestMain builds the real provider executable once, since the runtime
//     the provider installs must be a real `runtime serve`, not the test
//     binary;
//   - newAccEnv gives each test its own state directory and free loopback
//     ports, and stops every runtime the test started, whatever happens.

var providerFactories = testFactories(nil, nil)

// testClock is a provider clock a test moves forward, instead of sleeping
// until a certificate is due (hashicorp/tls's overridableTimeFunc).
type testClock struct{ offset atomic.Int64 }

func (c *testClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// advance moves the clock forward by d.
func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// factories serves a provider whose resources see this clock.
func (c *testClock) factories() map[string]func() (tfprotov6.ProviderServer, error) {
	return testFactories(c, nil)
}

// testEnv is environment variables for one test's provider, read before
// the process's: a test sets them here instead of with t.Setenv, which
// rules out t.Parallel, or os.Setenv, which every other test would see.
type testEnv struct {
	mu   sync.Mutex
	vars map[string]string
}

// Set sets k for this test's provider, from its next request on.
func (e *testEnv) Set(k, v string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.vars == nil {
		e.vars = map[string]string{}
	}
	e.vars[k] = v
}

func (e *testEnv) getenv(k string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if v, ok := e.vars[k]; ok {
		return v
	}
	return os.Getenv(k)
}

// factories serves a provider that reads this environment.
func (e *testEnv) factories() map[string]func() (tfprotov6.ProviderServer, error) {
	return testFactories(nil, e)
}

// testFactories serves providers whose resources see clock and read env;
// nil for either means the real one. Each call of the factory (each
// terraform command) gets a new provider.
func testFactories(clock *testClock, env *testEnv) map[string]func() (tfprotov6.ProviderServer, error) {
	return map[string]func() (tfprotov6.ProviderServer, error){
		"mailstack": func() (tfprotov6.ProviderServer, error) {
			p := &mailstackProvider{version: "test"}
			if clock != nil {
				p.clock = clock.now
			}
			if env != nil {
				p.getenv = env.getenv
			}
			return providerserver.NewProtocol6WithError(p)()
		},
	}
}

// hostLocal is the host the local acceptance tests check behind the
// provider's back.
var hostLocal host.Local

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
	for _, name := range []string{supervise.PIDFile, statedir.PIDFile} {
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

// FreePort returns a port on 127.0.0.1 for a listener the configuration
// declares: free now, distinct from every other FreePort's, and reserved
// against the other tests (this package's run in parallel) until the test
// ends.
func (e *accEnv) FreePort() int {
	e.t.Helper()
	return testutil.FreePort(e.t)
}

// ProviderBlock configures the provider for this test's state directory.
func (e *accEnv) ProviderBlock() string {
	return fmt.Sprintf("provider \"mailstack\" {\n  state_dir = %q\n}\n", e.StateDir)
}

// SourcedProviderBlock is ProviderBlock with a terraform block naming the
// provider's source, for configurations that import steps use as written
// (without the harness's required_providers).
func (e *accEnv) SourcedProviderBlock() string {
	source := "registry.terraform.io/" + os.Getenv("TF_ACC_PROVIDER_NAMESPACE") + "/mailstack"
	return fmt.Sprintf("terraform {\n  required_providers {\n    mailstack = { source = %q }\n  }\n}\n\n", source) + e.ProviderBlock()
}

// Path returns a file path inside the test's folder.
func (e *accEnv) Path(name string) string { return filepath.Join(e.StateDir, name) }

// runTool runs an external tool and returns its combined output; the test
// is skipped when the tool is not installed.
func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	return runToolInput(t, "", name, args...)
}

// runToolInput is runTool with input on the tool's standard input.
func runToolInput(t *testing.T, input, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not on PATH", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(input), &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// pythonMail is a mail client on Python's standard library: "send" delivers
// a message over SMTP with STARTTLS (no AUTH: the recipient is local),
// "imap" and "pop3" log in after STARTTLS/STLS and print the message that
// carries the token. TLS verifies the chain against a CA file, not the
// host name (the clients connect to 127.0.0.1).
const pythonMail = `
import imaplib, poplib, smtplib, ssl, sys
cmd, host, port, cafile, user, password, token = sys.argv[1:8]
port = int(port)
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False
if cmd == "send":
    msg = "From: bob@remote.test\r\nTo: %s\r\nSubject: %s\r\n\r\nhello from smtplib %s\r\n" % (user, token, token)
    with smtplib.SMTP(host, port, timeout=60) as s:
        s.ehlo("client.test")
        s.starttls(context=ctx)
        s.ehlo("client.test")
        s.sendmail("bob@remote.test", [user], msg)
    print("sent")
elif cmd == "imap":
    m = imaplib.IMAP4(host, port, timeout=60)
    m.starttls(ssl_context=ctx)
    m.login(user, password)
    m.select("INBOX")
    typ, data = m.search(None, "SUBJECT", token)
    ids = data[0].split()
    if not ids:
        sys.exit("imap: no message with subject " + token)
    typ, msg = m.fetch(ids[-1], "(RFC822)")
    print(msg[0][1].decode())
    m.logout()
elif cmd == "pop3":
    p = poplib.POP3(host, port, timeout=60)
    p.stls(context=ctx)
    p.user(user)
    p.pass_(password)
    n, _ = p.stat()
    bodies = [b"\n".join(p.retr(i)[1]).decode() for i in range(1, n + 1)]
    p.quit()
    hits = [b for b in bodies if token in b]
    if not hits:
        sys.exit("pop3: no message with %s among %d" % (token, n))
    print(hits[-1])
`

// mailClient runs pythonMail with cmd against 127.0.0.1:port and returns
// its output; the test is skipped without python3.
func (e *accEnv) mailClient(cmd string, port int, caPEM, user, password, token string) (string, error) {
	return e.mailClientAt(cmd, "127.0.0.1", port, caPEM, user, password, token)
}

// mailClientAt is mailClient against ip:port.
func (e *accEnv) mailClientAt(cmd, ip string, port int, caPEM, user, password, token string) (string, error) {
	if _, err := exec.LookPath("python3"); err != nil {
		e.t.Skip("python3 not on PATH")
	}
	script := e.Path("mail.py")
	if err := os.WriteFile(script, []byte(pythonMail), 0o600); err != nil {
		return "", err
	}
	ca := e.Path("ca.pem")
	if err := os.WriteFile(ca, []byte(caPEM), 0o600); err != nil {
		return "", err
	}
	// A safety net, not a measure: a session takes well under a second on
	// a quiet machine, and 30 s ran out on one running two CI runs beside
	// other suites (load 15-27).
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "python3", script, cmd, ip, fmt.Sprint(port), ca, user, password, token).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("python %s on %s port %d: %v\n%s", cmd, ip, port, err, out)
	}
	return string(out), nil
}

// processesUnder lists live processes whose command line names dir, the
// way every supervisor and runtime of a test's state directory does.
func processesUnder(dir string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		proc, err := hostLocal.Process(context.Background(), pid)
		if err != nil || !proc.Alive {
			continue
		}
		for _, a := range proc.Args {
			if a == dir || strings.HasPrefix(a, dir+"/") {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// waitFor polls cond every 50ms until it returns nil or d has passed.
func waitFor(d time.Duration, cond func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// portsClosed reports an error for any port on 127.0.0.1 that still
// accepts connections.
func portsClosed(ports ...int) error {
	for _, p := range ports {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p), time.Second); err == nil {
			c.Close()
			return fmt.Errorf("127.0.0.1:%d still accepts connections", p)
		}
	}
	return nil
}

// mailTestKeystoreHCL is the keystore "ks" of the tests with several
// servers: a self-signed ECDSA P-256 certificate for mail.test in path,
// password "changeit".
func mailTestKeystoreHCL(path string) string {
	return fmt.Sprintf(`resource "mailstack_keystore" "ks" {
  path     = %q
  password = "changeit"
  key {
    algorithm   = "ECDSA"
    ecdsa_curve = "P256"
  }
  self_signed {
    subject { common_name = "mail.test" }
    dns_names     = ["mail.test"]
    validity_days = 90
  }
}
`, path)
}

// ksListenerHCL is a listener of server (a mailstack_server's resource
// name) on 127.0.0.1:port serving keystore "ks" (mailTestKeystoreHCL) with
// TLS mode mode.
func ksListenerHCL(name, server, protocol string, port int, mode string) string {
	return fmt.Sprintf(`resource "mailstack_listener" %q {
  server_id = mailstack_server.%s.id
  protocol  = %q
  address   = "127.0.0.1"
  port      = %d
  tls {
    mode              = %q
    keystore_path     = mailstack_keystore.ks.path
    keystore_password = "changeit"
  }
}
`, name, server, protocol, port, mode)
}
