package pop3

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

// Real clients that no one here wrote, against the server on loopback.

// runTool runs an external client with a time limit, skipping the test
// when the tool is not installed.
func runTool(t *testing.T, stdin string, name string, args ...string) (stdout, stderr string) {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed", name)
	}
	// A guard against a client that hangs, not a speed check: on a loaded
	// machine Python alone takes seconds to start.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	var out, errOut bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %q: %v\nstdout:\n%s\nstderr:\n%s", name, args, err, out.String(), errOut.String())
	}
	return out.String(), errOut.String()
}

func port(t *testing.T, addr string) string {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	if _, err := strconv.Atoi(addr[i+1:]); err != nil {
		t.Fatalf("address %q has no port", addr)
	}
	return addr[i+1:]
}

func TestPythonPoplib(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"implicit", "stls"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			kind := implicitTLS
			if mode == "stls" {
				kind = starttls
			}
			ts := startServer(t, kind)
			stdout, _ := runTool(t, "", "python3", "testdata/poplib_client.py", mode, "127.0.0.1", port(t, ts.addr), caFile(t))

			var got map[string]any
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatalf("poplib output %q: %v", stdout, err)
			}
			want := map[string]any{
				"capa":    []any{"AUTH-RESP-CODE", "IMPLEMENTATION", "PIPELINING", "RESP-CODES", "SASL", "TOP", "UIDL", "USER"},
				"stat":    []any{3.0, 101.0},
				"list":    []any{"1 23", "2 62", "3 16"},
				"uidl":    []any{"1 uid-1", "2 uid-2", "3 uid-3"},
				"uidl_2":  "+OK 2 uid-2",
				"retr_2":  []any{"Subject: two", "From: a@example.com", "", ".dotted", "line 2", "..", "last"},
				"top_2_1": []any{"Subject: two", "From: a@example.com", "", ".dotted"},
				"dele_1":  "+OK message 1 deleted",
				"quit":    "+OK mail.test POP3 server signing off (2 messages left)",
			}
			if mode == "stls" {
				want["capa_before_tls"] = []any{"AUTH-RESP-CODE", "IMPLEMENTATION", "PIPELINING", "RESP-CODES", "STLS", "TOP", "UIDL"}
			}
			for k, w := range want {
				if !reflect.DeepEqual(got[k], w) {
					t.Errorf("poplib %s = %#v, want %#v", k, got[k], w)
				}
			}
			testutil.Eventually(t, "maildrop release", func() bool { _, closes, _ := ts.backend.stats(); return closes == 1 })
			if _, _, commits := ts.backend.stats(); !slices.Equal(commits, []string{"uid-1"}) {
				t.Errorf("after QUIT the backend removed %q, want uid-1", commits)
			}
		})
	}
}

func TestCurl(t *testing.T) {
	t.Parallel()
	implicit := startServer(t, implicitTLS)
	stls := startServer(t, starttls)
	ca := caFile(t)
	cases := []struct {
		name   string
		args   []string
		want   string
		stderr string // must appear in curl's verbose log
	}{
		{
			name:   "pop3s list",
			args:   []string{"pop3s://127.0.0.1:" + port(t, implicit.addr) + "/"},
			want:   "1 23\r\n2 62\r\n3 16\r\n",
			stderr: "> AUTH PLAIN\r\n",
		},
		{
			name: "pop3s retrieve with initial response",
			args: []string{"--sasl-ir", "pop3s://127.0.0.1:" + port(t, implicit.addr) + "/2"},
			// curl un-stuffs the dots; the server ended the last line.
			want:   "Subject: two\r\nFrom: a@example.com\r\n\r\n.dotted\r\nline 2\r\n..\r\nlast\r\n",
			stderr: "> AUTH PLAIN AGFsaWNlAHNlY3JldA==",
		},
		{
			name:   "stls retrieve",
			args:   []string{"--ssl-reqd", "pop3://127.0.0.1:" + port(t, stls.addr) + "/1"},
			want:   "Subject: one\r\n\r\nHello\r\n",
			stderr: "> STLS",
		},
		{
			name:   "stls custom command",
			args:   []string{"--ssl-reqd", "pop3://127.0.0.1:" + port(t, stls.addr) + "/", "-X", "UIDL"},
			want:   "1 uid-1\r\n2 uid-2\r\n3 uid-3\r\n",
			stderr: "> UIDL",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-sS", "-v", "--max-time", "15", "--cacert", ca, "-u", "alice:secret"}, tc.args...)
			stdout, stderr := runTool(t, "", "curl", args...)
			if stdout != tc.want {
				t.Errorf("curl printed %q, want %q", stdout, tc.want)
			}
			if !strings.Contains(stderr, tc.stderr) {
				t.Errorf("curl log lacks %q:\n%s", tc.stderr, stderr)
			}
		})
	}
}

func TestOpenSSLStartTLS(t *testing.T) {
	t.Parallel()
	ts := startServer(t, starttls)
	// s_client reads stdin only after STLS and the handshake, so these
	// commands travel over TLS; -quiet keeps reading until QUIT closes.
	stdout, stderr := runTool(t, "CAPA\nUSER alice\nPASS secret\nSTAT\nQUIT\n", "openssl", "s_client",
		"-starttls", "pop3", "-connect", ts.addr, "-CAfile", caFile(t),
		"-verify_return_error", "-crlf", "-quiet")
	for _, want := range []string{"SASL PLAIN\r\n", "+OK maildrop has 3 messages (101 octets)\r\n", "+OK 3 101\r\n", "signing off"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("s_client output lacks %q:\n%s\nstderr:\n%s", want, stdout, stderr)
		}
	}
}
