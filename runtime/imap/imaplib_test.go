package imap

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPythonImaplib drives the server with Python's imaplib over implicit
// TLS and STARTTLS, and checks that it refuses LOGIN before STARTTLS.
func TestPythonImaplib(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	env := newEnv(t, "")
	ca := env.tls.WriteCAFile(t, t.TempDir())
	script, _ := filepath.Abs("testdata/imaplib_client.py")
	tests := []struct {
		name, mode, addr string
	}{
		{"implicit TLS with IDLE", "implicit", env.tlsAddr},
		{"STARTTLS", "starttls", env.addr},
		{"LOGIN refused before STARTTLS", "plain-login", env.addr},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			host, port, _ := strings.Cut(tc.addr, ":")
			cmd := exec.Command(python, script, tc.mode, host, port, ca, testUser, testPass)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
			defer timer.Stop()
			var out []string
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				out = append(out, sc.Text())
				if sc.Text() == "IDLING" {
					deliver(t, env, "wakes the idler")
				}
			}
			err = cmd.Wait()
			if err != nil || len(out) == 0 || out[len(out)-1] != "PASS" {
				t.Fatalf("imaplib %s: %v\nstdout: %s\nstderr: %s", tc.mode, err, strings.Join(out, "\n"), stderr.String())
			}
		})
	}
}
