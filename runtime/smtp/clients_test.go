package smtp

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Tests with real clients that no one here wrote: Python's smtplib, curl
// and openssl s_client. Each is skipped only when the tool is missing.

func lookTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not on PATH", name)
	}
	return path
}

// runTool runs name with args and stdin, failing the test on error.
func runTool(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	// A guard against a client that hangs, not a speed check: on a loaded
	// machine Python alone takes seconds to start.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

func portOf(t *testing.T, addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func TestPythonSmtplib(t *testing.T) {
	python := lookTool(t, "python3")
	script, err := filepath.Abs("testdata/smtplib_client.py")
	if err != nil {
		t.Fatal(err)
	}
	ca := certFile(t)
	tests := []struct {
		scenario   string
		mode       tlsMode
		submission bool
		deliveries int
	}{
		{"implicit-send", modeImplicit, false, 1},
		{"starttls-send", modeStartTLS, false, 1},
		{"refusals", modeStartTLS, false, 0},
		{"submission-starttls", modeStartTLS, true, 1},
		{"submission-implicit", modeImplicit, true, 2},
		{"submission-wrong-sender", modeImplicit, true, 0},
		{"submission-bad-password", modeImplicit, true, 0},
		{"login-before-tls", modeStartTLS, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.scenario, func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, tc.mode, Options{Submission: tc.submission})
			runTool(t, "", python, script, tc.scenario, "127.0.0.1", portOf(t, ts.addr), ca)
			if got := len(ts.backend.delivered()); got != tc.deliveries {
				t.Errorf("%d messages delivered, want %d", got, tc.deliveries)
			}
		})
	}
}

func TestCurl(t *testing.T) {
	curl := lookTool(t, "curl")
	ca := certFile(t)
	msg := filepath.Join(t.TempDir(), "msg.eml")
	if err := os.WriteFile(msg, []byte("From: alice@example.com\r\nSubject: curl\r\n\r\nHello from curl.\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		mode       tlsMode
		submission bool
		scheme     string
		args       []string
	}{
		{"MX smtps", modeImplicit, false, "smtps", []string{"--mail-from", "someone@elsewhere.example"}},
		{"MX smtp --ssl-reqd", modeStartTLS, false, "smtp", []string{"--ssl-reqd", "--mail-from", "someone@elsewhere.example"}},
		{"submission smtps --user", modeImplicit, true, "smtps", []string{"--user", "alice@example.com:" + testPassword, "--mail-from", "alice@example.com"}},
		{"submission smtp --ssl-reqd AUTH=LOGIN", modeStartTLS, true, "smtp", []string{"--ssl-reqd", "--login-options", "AUTH=LOGIN", "--user", "alice@example.com:" + testPassword, "--mail-from", "alice@example.com"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, tc.mode, Options{Submission: tc.submission})
			args := append([]string{"-sS", "--url", tc.scheme + "://127.0.0.1:" + portOf(t, ts.addr),
				"--cacert", ca, "--mail-rcpt", "bob@example.com", "--upload-file", msg}, tc.args...)
			runTool(t, "", curl, args...)
			got := ts.backend.delivered()
			if len(got) != 1 || !strings.HasSuffix(got[0].body, "Hello from curl.\r\n") {
				t.Fatalf("delivered %q", got)
			}
		})
	}

	t.Run("MX refuses relay", func(t *testing.T) {
		ts := startServer(t, modeImplicit, Options{})
		cmd := exec.Command(curl, "-sS", "--url", "smtps://127.0.0.1:"+portOf(t, ts.addr), "--cacert", ca,
			"--mail-from", "a@elsewhere.example", "--mail-rcpt", "friend@other.example", "--upload-file", msg)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "550") {
			t.Fatalf("curl: %v\n%s", err, out)
		}
	})
}

func TestOpenSSLStartTLS(t *testing.T) {
	openssl := lookTool(t, "openssl")
	ca := certFile(t)
	for _, submission := range []bool{false, true} {
		ts := startServer(t, modeStartTLS, Options{Submission: submission})
		out := runTool(t, "EHLO openssl.example\r\nQUIT\r\n", openssl, "s_client", "-starttls", "smtp",
			"-connect", ts.addr, "-CAfile", ca, "-verify_return_error", "-quiet", "-crlf")
		if !strings.Contains(out, "250-Hello openssl.example") || !strings.Contains(out, "221 2.0.0 Bye") {
			t.Fatalf("submission=%v: openssl s_client output:\n%s", submission, out)
		}
		if strings.Contains(out, "STARTTLS") {
			t.Errorf("STARTTLS offered again after TLS:\n%s", out)
		}
		if hasAuth := strings.Contains(out, "AUTH PLAIN LOGIN"); hasAuth != submission {
			t.Errorf("submission=%v: AUTH offered after STARTTLS = %v:\n%s", submission, hasAuth, out)
		}
	}
}
