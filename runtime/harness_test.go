package runtime_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
)

// Secrets of the test setup. The log test looks for each of them.
const (
	keystorePassword = "ks-secret-4711"
	alicePassword    = "alice-secret-0815"
	bobPassword      = "bob-secret-1234"
	carolPassword    = "carol-secret-9876"
)

// testServer's resolver is a closed port on loopback: mail queued for
// other domains stays queued and no query leaves the machine.
var testServer = config.Server{Hostname: "mail.example.com", Domains: []string{"example.com"}, DNSResolvers: []string{"127.0.0.1:9"}}

// harness is a runtime served in-process from a state directory.
type harness struct {
	t      testing.TB
	dir    string
	logs   *testutil.SyncBuffer
	client *control.Client
	cancel context.CancelFunc
	done   chan error
}

// start serves dir (writing a config.json with testServer first if there
// is none) and returns once the control API answers. The runtime stops
// when the test ends; its log is shown if the test failed.
func start(t testing.TB, dir string, drain time.Duration) *harness {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, statedir.ConfigFile)); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := statedir.Local(dir).Create(context.Background(), &config.Document{Server: testServer}); err != nil {
			t.Fatal(err)
		}
	}
	h := &harness{t: t, dir: dir, logs: &testutil.SyncBuffer{}, client: statedir.Local(dir).Client(), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	logger := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() {
		h.done <- runtime.Serve(ctx, runtime.Options{StateDir: dir, Version: "e2e-test", Logger: logger, DrainTimeout: drain})
	}()
	t.Cleanup(func() {
		h.stop()
		if t.Failed() {
			t.Logf("runtime log:\n%s", h.logs.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := h.client.Status(context.Background()); err == nil {
			return h
		}
		select {
		case err := <-h.done:
			h.done <- err
			t.Fatalf("runtime exited during start-up: %v\n%s", err, h.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("runtime did not answer within 10s\n%s", h.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop cancels the runtime (as SIGTERM does) and waits for Serve to return.
func (h *harness) stop() error {
	h.cancel()
	select {
	case err, ok := <-h.done:
		if ok {
			close(h.done)
		}
		return err
	case <-time.After(60 * time.Second):
		h.t.Fatal("the runtime did not stop within 60s")
		return nil
	}
}

func (h *harness) status() control.Status {
	h.t.Helper()
	st, err := h.client.Status(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

func (h *harness) putListener(id string, l config.Listener) {
	h.t.Helper()
	if _, err := h.client.PutListener(context.Background(), id, l); err != nil {
		h.t.Fatalf("PUT listener %s: %v", id, err)
	}
}

func (h *harness) putUser(address, password string) {
	h.t.Helper()
	if _, err := h.client.PutUser(context.Background(), address, control.UserRequest{Password: password}); err != nil {
		h.t.Fatalf("PUT user %s: %v", address, err)
	}
}

// testKeystore is a JKS keystore with one key pair for mail.example.com
// and 127.0.0.1, and its certificate as a PEM file for external clients.
type testKeystore struct {
	path, caFile, fingerprint string
	cert                      *testutil.Certificate
}

func newKeystore(t testing.TB, dir string) *testKeystore {
	t.Helper()
	ks := &testKeystore{path: filepath.Join(dir, "mail.jks")}
	ks.cert = testutil.WriteKeystore(t, testutil.Keystore{
		Path: ks.path, Password: keystorePassword, Format: keystore.JKS, Alias: "james",
		Hosts: []string{"mail.example.com", "127.0.0.1"},
	})
	ks.caFile = ks.cert.WriteCAFile(t, dir)
	ks.fingerprint = keystore.Fingerprint(ks.cert.TLS.Leaf)
	return ks
}

func (ks *testKeystore) tls(mode string) config.TLS {
	return config.TLS{Mode: mode, KeystorePath: ks.path, KeystorePassword: keystorePassword}
}

func (ks *testKeystore) clientConfig() *tls.Config {
	return ks.cert.ClientConfig("mail.example.com")
}

// stack is the listener set of a complete mail server: each protocol over
// STARTTLS and over implicit TLS.
var stack = []struct {
	id, protocol, mode string
}{
	{"smtp", config.ProtocolSMTP, config.TLSStartTLS},
	{"smtps", config.ProtocolSMTP, config.TLSImplicit},
	{"submission", config.ProtocolSubmission, config.TLSStartTLS},
	{"submissions", config.ProtocolSubmission, config.TLSImplicit},
	{"imap", config.ProtocolIMAP, config.TLSStartTLS},
	{"imaps", config.ProtocolIMAP, config.TLSImplicit},
	{"pop3", config.ProtocolPOP3, config.TLSStartTLS},
	{"pop3s", config.ProtocolPOP3, config.TLSImplicit},
}

// configure PUTs the server, alice, bob and carol, and the whole stack on
// free ports, and returns the listeners by id.
func configure(t testing.TB, h *harness, ks *testKeystore) map[string]config.Listener {
	t.Helper()
	if _, err := h.client.SetServer(context.Background(), testServer); err != nil {
		t.Fatal(err)
	}
	h.putUser("alice@example.com", alicePassword)
	h.putUser("bob@example.com", bobPassword)
	h.putUser("carol@example.com", carolPassword)
	ports := testutil.FreePorts(t, len(stack))
	out := map[string]config.Listener{}
	for i, s := range stack {
		l := config.Listener{Protocol: s.protocol, Address: "127.0.0.1", Port: ports[i], TLS: ks.tls(s.mode)}
		h.putListener(s.id, l)
		out[s.id] = l
	}
	return out
}

// textConn is a raw line-protocol client.
type textConn struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func dialText(t testing.TB, addr string, tlsCfg *tls.Config) *textConn {
	t.Helper()
	nc := testutil.Dial(t, addr, tlsCfg)
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &textConn{t: t, nc: nc, r: bufio.NewReader(nc)}
}

func (c *textConn) line() string {
	c.t.Helper()
	s, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, s)
	}
	return strings.TrimRight(s, "\r\n")
}

func (c *textConn) send(format string, args ...any) {
	c.t.Helper()
	if _, err := fmt.Fprintf(c.nc, format+"\r\n", args...); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// smtpReply reads a (multi-line) SMTP reply and returns its last line.
func (c *textConn) smtpReply() string {
	c.t.Helper()
	for {
		l := c.line()
		if len(l) < 4 || l[3] != '-' {
			return l
		}
	}
}

// expect sends a command and checks the reply starts with prefix.
func (c *textConn) smtp(prefix, format string, args ...any) {
	c.t.Helper()
	c.send(format, args...)
	if got := c.smtpReply(); !strings.HasPrefix(got, prefix) {
		c.t.Fatalf("%s: got %q, want %s", fmt.Sprintf(format, args...), got, prefix)
	}
}

// imapTagged reads until the tagged reply of tag and returns it.
func (c *textConn) imapTagged(tag string) string {
	c.t.Helper()
	for {
		l := c.line()
		if strings.HasPrefix(l, tag+" ") {
			return l
		}
	}
}

func (c *textConn) imap(tag, cmd string) string {
	c.t.Helper()
	c.send("%s %s", tag, cmd)
	return c.imapTagged(tag)
}

// lookTool returns the path of an external client, or skips the test.
func lookTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not on PATH", name)
	}
	return path
}

// runTool runs an external client and returns its combined output.
func runTool(t testing.TB, stdin string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func mustRun(t testing.TB, stdin string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runTool(t, stdin, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return out
}

// readAllQuiet drains a connection until it closes or the deadline.
func readAllQuiet(c net.Conn) string {
	b, _ := io.ReadAll(c)
	return string(b)
}
