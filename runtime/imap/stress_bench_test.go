package imap

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
)

// stressResult is what one imaptest stress run did.
type stressResult struct {
	commands   int64   // every command imaptest counted
	logins     int64   // LOGINs
	loginMS    float64 // mean LOGIN latency
	errors     int     // "Error:" lines
	perCommand map[string]int64
}

// runImaptestStress runs imaptest's default stress profile against addr
// over implicit TLS and reads its per-state results file.
func runImaptestStress(b testing.TB, bin, tests, addr, user, pass string, secs, clients int) stressResult {
	b.Helper()
	_, port, _ := net.SplitHostPort(addr)
	out := filepath.Join(b.TempDir(), "results.tsv")
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+60)*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "host=127.0.0.1", "port="+port, "ssl=any-cert", "user="+user, "pass="+pass,
		"mbox="+filepath.Join(tests, "default.mbox"), fmt.Sprintf("secs=%d", secs), fmt.Sprintf("clients=%d", clients), "output="+out)
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH=/usr/lib/dovecot")
	stdout, err := cmd.CombinedOutput()
	if err != nil && ctx.Err() != nil {
		b.Fatalf("imaptest stress: %v\n%s", err, stdout)
	}
	res := stressResult{perCommand: map[string]int64{}}
	for _, l := range strings.Split(string(stdout), "\n") {
		if strings.HasPrefix(l, "Error: ") {
			res.errors++
			if res.errors <= 5 {
				b.Logf("imaptest: %s", l)
			}
		}
	}
	f, err := os.Open(out)
	if err != nil {
		b.Fatalf("imaptest wrote no results: %v\n%s", err, stdout)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var names []string
	var loginTimerCount, loginMS int64
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if names == nil {
			for i := 0; i+1 < len(fields); i += 2 {
				names = append(names, strings.TrimSuffix(fields[i], " count"))
			}
			continue
		}
		for i, name := range names {
			if 3*i+2 >= len(fields) {
				break
			}
			count, _ := strconv.ParseInt(fields[3*i], 10, 64)
			timed, _ := strconv.ParseInt(fields[3*i+1], 10, 64)
			ms, _ := strconv.ParseInt(fields[3*i+2], 10, 64)
			res.perCommand[name] += count
			if name == "LOGIN" || name == "Logi" {
				loginTimerCount += timed
				loginMS += ms
			}
		}
	}
	for name, n := range res.perCommand {
		res.commands += n
		if name == "LOGIN" || name == "Logi" {
			res.logins = n
		}
	}
	if loginTimerCount > 0 {
		res.loginMS = float64(loginMS) / float64(loginTimerCount)
	}
	return res
}

// The one user of the stress runs.
const stressUser, stressPass = "stress@example.com", "stress test password"

// newStressEnv serves a fresh embedded store with the stress user, whose
// password has the store's default (production) hash cost.
func newStressEnv(tb testing.TB) *testEnv {
	dir := tb.TempDir()
	st, err := store.Open(filepath.Join(dir, "store"), store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	if err := st.PutUser(stressUser, stressPass, 0); err != nil {
		tb.Fatal(err)
	}
	return newEnvStore(tb, st, dir)
}

// TestImaptestStress runs imaptest's stress mode (default profile, 10
// clients, 10 s) against the server: ten sessions of one user logging in,
// appending, storing \Seen and \Deleted, expunging and copying in the
// same mailboxes at once, with no error. Races between sessions (a STORE
// renaming a file an EXPUNGE removes; logins in parallel from one address)
// show here first; BenchmarkImaptestStress measures the same load against
// Dovecot.
func TestImaptestStress(t *testing.T) {
	if testing.Short() {
		t.Skip("imaptest stress takes 10 s")
	}
	bin, tests := imaptestBinary(t)
	env := newStressEnv(t)
	res := runImaptestStress(t, bin, tests, env.tlsAddr, stressUser, stressPass, 10, 10)
	if res.errors != 0 || res.logins == 0 {
		t.Errorf("imaptest stress: %d errors (the first are logged above), %d commands, %d LOGINs", res.errors, res.commands, res.logins)
	}
}

// BenchmarkImaptestStress runs imaptest's stress mode (default profile,
// secs=IMAPTEST_SECS or 30, clients=10) against mailstack and then against
// Dovecot from Debian, started here on loopback with a temporary config
// and the same user, password hash (the store's argon2id PHC string,
// which Dovecot's ARGON2ID scheme verifies) and certificate, with
// Dovecot's auth_cache on as mailstack's login cache is. It reports the
// commands each ran and their mean LOGIN latency; docs/benchmarks.md
// records the figures. Run with -benchtime 1x.
func BenchmarkImaptestStress(b *testing.B) {
	dovecot, err := exec.LookPath("dovecot")
	if err != nil {
		b.Skip("dovecot (dovecot-core, dovecot-imapd) not installed")
	}
	bin, tests := imaptestBinary(b)
	secs := 30
	if v, err := strconv.Atoi(os.Getenv("IMAPTEST_SECS")); err == nil && v > 0 {
		secs = v
	}
	const user, pass = stressUser, stressPass
	// Dovecot gets a hash of the same cost as the store's: argon2id with
	// store.DefaultArgon2, in the PHC form both verify.
	phc := argon2PHC(pass, store.DefaultArgon2)
	env := newStressEnv(b)
	for i := 0; i < b.N; i++ {
		ours := runImaptestStress(b, bin, tests, env.tlsAddr, user, pass, secs, 10)
		dc := startDovecot(b, dovecot, env, user, phc)
		theirs := runImaptestStress(b, bin, tests, dc, user, pass, secs, 10)
		b.ReportMetric(float64(ours.commands), "mailstack-cmds")
		b.ReportMetric(float64(theirs.commands), "dovecot-cmds")
		b.ReportMetric(float64(ours.commands)/float64(max(theirs.commands, 1)), "cmds-ratio")
		b.ReportMetric(ours.loginMS, "mailstack-login-ms")
		b.ReportMetric(theirs.loginMS, "dovecot-login-ms")
		b.ReportMetric(float64(ours.errors), "mailstack-errors")
		b.Logf("per command (mailstack / dovecot), %ds, 10 clients:", secs)
		for _, name := range stressOrder(ours, theirs) {
			b.Logf("  %-5s %8d %8d", name, ours.perCommand[name], theirs.perCommand[name])
		}
		b.Logf("  total %8d %8d; LOGIN mean %.1f ms / %.1f ms; errors %d / %d",
			ours.commands, theirs.commands, ours.loginMS, theirs.loginMS, ours.errors, theirs.errors)
	}
}

func stressOrder(a, b stressResult) []string {
	var names []string
	seen := map[string]bool{}
	for _, m := range []map[string]int64{a.perCommand, b.perCommand} {
		for n := range m {
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	return names
}

// argon2PHC hashes password as the store does, in the PHC string format.
func argon2PHC(password string, p store.Argon2Params) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, 32)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// startDovecot runs Dovecot's IMAP server on a free loopback port with
// implicit TLS on env's certificate, one user with the PHC hash phc, its
// auth_cache on, and Maildir under a temporary directory. It returns the
// address and stops Dovecot when the test or benchmark ends.
func startDovecot(b testing.TB, dovecot string, env *testEnv, user, phc string) string {
	b.Helper()
	// Dovecot's auth process runs as the dovecot user: the directory
	// with its passwd file must be reachable, which b.TempDir's parent
	// (mode 0700) is not.
	dir, err := os.MkdirTemp("", "mailstack-dovecot-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	certFile, keyFile := env.tls.WriteFiles(b, dir)
	// Dovecot delivers to no user with uid 0: the mail belongs to nobody.
	const nobody = 65534
	for _, d := range []string{"mail", "home"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.Chown(filepath.Join(dir, d), nobody, nobody); err != nil {
			b.Fatal(err)
		}
	}
	if err := os.Chmod(writeFile(b, dir, "passwd", []byte(user+":{ARGON2ID}"+phc+"\n")), 0o644); err != nil {
		b.Fatal(err)
	}
	conf := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
instance_name = mailstack-bench-%[2]d
log_path = %[1]s/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <%[3]s
ssl_key = <%[4]s
default_internal_user = dovecot
default_login_user = dovenull
mail_location = maildir:%[1]s/mail/%%u
auth_mechanisms = plain
auth_cache_size = 10M
auth_cache_ttl = 1 hour
passdb {
  driver = passwd-file
  args = %[1]s/passwd
}
userdb {
  driver = static
  args = uid=%[6]d gid=%[6]d home=%[1]s/home/%%u
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = %[5]s
    ssl = yes
  }
}
`, dir, os.Getpid(), certFile, keyFile, port, nobody)
	confPath := writeFile(b, dir, "dovecot.conf", []byte(conf))
	cmd := exec.Command(dovecot, "-F", "-c", confPath)
	out, _ := os.Create(filepath.Join(dir, "stdout"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if b.Failed() || os.Getenv("DOVECOT_LOG") != "" {
			log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			b.Logf("dovecot.log:\n%s", log)
		}
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		out.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			so, _ := os.ReadFile(filepath.Join(dir, "stdout"))
			b.Fatalf("dovecot did not listen on %s: %v\n%s\n%s", addr, err, log, so)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
