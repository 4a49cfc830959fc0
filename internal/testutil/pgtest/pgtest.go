// Package pgtest runs PostgreSQL for tests and benchmarks: a cluster of its
// own (initdb) in a fresh temporary folder, listening on a free loopback
// port only, started and stopped with pg_ctl, with a password-protected
// superuser and optionally TLS. Tests make one database per case on it
// (NewDatabase), can stop and start it under a running client, and the
// cluster is stopped and its folder removed when they end.
//
// PostgreSQL refuses to run as root, and CI runs as root: there the server
// runs as the unprivileged user "nobody", which owns the data folder. The
// binaries come from Debian's postgresql package (.ci/run installs it):
// the newest /usr/lib/postgresql/<version>/bin, else initdb and pg_ctl on
// PATH. Without them the tests that need a cluster are skipped.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

// Options describe a cluster. The zero value is a plain-TCP cluster on
// 127.0.0.1.
type Options struct {
	// TLS, when set, is the server's certificate: ssl is on, and clients
	// can check it with sslmode=verify-full against CAFile.
	TLS *testutil.Certificate
	// RequireTLS refuses connections that do not use TLS (hostssl only).
	RequireTLS bool
	// Settings are extra postgresql.conf settings, such as
	// "shared_buffers": "256MB". They override the test defaults.
	Settings map[string]string
}

// Cluster is a running PostgreSQL server.
type Cluster struct {
	// Dir holds the data folder, the log and the certificate files.
	Dir string
	// Port is the TCP port on 127.0.0.1.
	Port int
	// User and Password are the superuser's.
	User, Password string
	// CAFile is the PEM file that verifies the server's certificate, when
	// it serves TLS.
	CAFile string

	bin  string
	data string
	log  string
	cred *syscall.Credential
	mu   sync.Mutex
	seq  int
}

// Host is the address the cluster listens on.
const Host = "127.0.0.1"

// Available reports why a cluster cannot run here, or nil.
func Available() error {
	_, err := binDir()
	return err
}

// binDir finds the folder of initdb, pg_ctl and postgres.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			d := filepath.Dir(real)
			if isExec(filepath.Join(d, "initdb")) {
				return d, nil
			}
		}
	}
	return "", errors.New("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb, no pg_ctl on PATH): apt-get install postgresql")
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode()&0o111 != 0
}

// Start runs a cluster until the test ends, and returns once it accepts
// connections. The test is skipped where PostgreSQL is not installed.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	if err := Available(); err != nil {
		t.Skip(err)
	}
	c, err := Run(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("postgres log (tail):\n%s", c.LogTail(4000))
		}
		c.Close()
	})
	return c
}

// Run is Start without a test: the caller must Close the cluster.
// Benchmarks and the load generator use it.
func Run(o Options) (*Cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, User: "mailstack", Password: randomHex(12), bin: bin,
		data: filepath.Join(dir, "data"), log: filepath.Join(dir, "postgres.log")}
	if err := c.init(o); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// A free port can be taken between choosing and binding it: retry.
	for attempt := 0; ; attempt++ {
		c.Port, err = freePort()
		if err == nil {
			err = c.Start()
		}
		if err == nil || attempt == 4 {
			break
		}
	}
	if err != nil {
		err = fmt.Errorf("%w\n%s", err, c.LogTail(2000))
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

func (c *Cluster) init(o Options) error {
	// The folder must be reachable by the server's user.
	if err := os.Chmod(c.Dir, 0o755); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			return fmt.Errorf("running PostgreSQL as root is refused, and there is no user nobody: %w", err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	pwfile := filepath.Join(c.Dir, "pwfile")
	if err := c.writeOwned(pwfile, []byte(c.Password+"\n"), 0o600); err != nil {
		return err
	}
	defer os.Remove(pwfile)
	if err := c.mkdirOwned(c.data); err != nil {
		return err
	}
	if err := c.writeOwned(c.log, nil, 0o600); err != nil {
		return err
	}
	out, err := c.command("initdb", "-D", c.data, "-U", c.User, "--pwfile", pwfile, "--auth", "scram-sha-256",
		"-E", "UTF8", "--locale", "C", "--no-instructions").CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	settings := map[string]string{
		"listen_addresses":        "'" + Host + "'",
		"unix_socket_directories": "''",
		"shared_buffers":          "'32MB'",
		"max_connections":         "200",
		"fsync":                   "on",
		"synchronous_commit":      "on",
		"logging_collector":       "off",
		"log_min_messages":        "warning",
	}
	hba := "host all all 127.0.0.1/32 scram-sha-256\n"
	if o.TLS != nil {
		certFile, keyFile := filepath.Join(c.data, "server.crt"), filepath.Join(c.data, "server.key")
		der, err := x509.MarshalPKCS8PrivateKey(o.TLS.TLS.PrivateKey)
		if err != nil {
			return err
		}
		if err := c.writeOwned(certFile, o.TLS.PEM(), 0o600); err != nil {
			return err
		}
		if err := c.writeOwned(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return err
		}
		c.CAFile = filepath.Join(c.Dir, "ca.pem")
		if err := os.WriteFile(c.CAFile, o.TLS.PEM(), 0o644); err != nil {
			return err
		}
		settings["ssl"] = "on"
		settings["ssl_cert_file"] = "'server.crt'"
		settings["ssl_key_file"] = "'server.key'"
		if o.RequireTLS {
			hba = "hostssl all all 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 reject\n"
		}
	}
	for k, v := range o.Settings {
		settings[k] = v
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var conf strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&conf, "%s = %s\n", k, settings[k])
	}
	// Later lines of postgresql.conf override initdb's.
	f, err := os.OpenFile(filepath.Join(c.data, "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString("\n# pgtest\n" + conf.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return c.writeOwned(filepath.Join(c.data, "pg_hba.conf"), []byte(hba), 0o600)
}

// Start starts the server (again, after Stop or Kill) and returns once it
// accepts connections.
func (c *Cluster) Start() error {
	out, err := c.command("pg_ctl", "start", "-w", "-t", "60", "-D", c.data, "-l", c.log,
		"-o", "-p "+strconv.Itoa(c.Port)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl start: %w\n%s", err, out)
	}
	return nil
}

// Stop shuts the server down cleanly (pg_ctl stop -m fast: sessions are
// ended, committed work is on disk).
func (c *Cluster) Stop() error { return c.stop("fast") }

// Kill stops the server the way a crash would (pg_ctl stop -m immediate):
// no checkpoint; the next Start recovers from the WAL.
func (c *Cluster) Kill() error { return c.stop("immediate") }

func (c *Cluster) stop(mode string) error {
	out, err := c.command("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", c.data).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl stop -m %s: %w\n%s", mode, err, out)
	}
	return nil
}

// Close stops the server if it runs and removes its folder.
func (c *Cluster) Close() {
	if _, err := os.Stat(filepath.Join(c.data, "postmaster.pid")); err == nil {
		_ = c.stop("immediate")
	}
	os.RemoveAll(c.Dir)
}

// DSN returns a connection string (libpq keyword/value form) for database
// db as the superuser; extra keywords ("sslmode=disable", ...) are
// appended. Without one naming sslmode it is "verify-full" against CAFile
// when the cluster serves TLS, else "disable".
func (c *Cluster) DSN(db string, extra ...string) string {
	parts := []string{"host=" + Host, "port=" + strconv.Itoa(c.Port), "user=" + c.User,
		"password=" + c.Password, "dbname=" + db, "connect_timeout=5"}
	switch {
	case slices.ContainsFunc(extra, func(s string) bool { return strings.HasPrefix(s, "sslmode=") }):
	case c.CAFile != "":
		parts = append(parts, "sslmode=verify-full", "sslrootcert="+c.CAFile)
	default:
		parts = append(parts, "sslmode=disable")
	}
	return strings.Join(append(parts, extra...), " ")
}

// CreateDatabase makes a new, empty database.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	return c.exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
}

// DropDatabase removes a database, ending its sessions.
func (c *Cluster) DropDatabase(ctx context.Context, name string) error {
	return c.exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

func (c *Cluster) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// NewDatabase makes a database of its own for the test, dropped when it
// ends, and returns its DSN with extra appended (see DSN).
func (c *Cluster) NewDatabase(t testing.TB, extra ...string) string {
	t.Helper()
	c.mu.Lock()
	c.seq++
	name := fmt.Sprintf("test_%d", c.seq)
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.CreateDatabase(ctx, name); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.DropDatabase(ctx, name); err != nil {
			t.Logf("dropping database %s: %v", name, err)
		}
	})
	return c.DSN(name, extra...)
}

// LogTail returns the last n bytes of the server's log.
func (c *Cluster) LogTail(n int) string {
	b, _ := os.ReadFile(c.log)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// command runs a PostgreSQL binary as the server's user.
func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd
}

func (c *Cluster) mkdirOwned(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	return c.chown(dir)
}

func (c *Cluster) writeOwned(path string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	return c.chown(path)
}

func (c *Cluster) chown(path string) error {
	if c.cred == nil {
		return nil
	}
	return os.Chown(path, int(c.cred.Uid), int(c.cred.Gid))
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", Host+":0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

var (
	sharedOnce sync.Once
	shared     *Cluster
	sharedErr  error
)

// Shared returns one cluster for the whole test binary, started on first
// use, so that a package's tests share its start-up cost; each test still
// makes its own database (NewDatabase). The package's TestMain must call
// Main so that the cluster stops when the tests end. The test is skipped
// where PostgreSQL is not installed.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	if err := Available(); err != nil {
		t.Skip(err)
	}
	sharedOnce.Do(func() { shared, sharedErr = Run(Options{}) })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// Main runs the tests and then stops the shared cluster, if one was
// started: func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		shared.Close()
	}
	return code
}

// PID returns the postmaster's process id, for measuring the server's CPU
// time (all its backends are its children).
func (c *Cluster) PID() (int, error) {
	b, err := os.ReadFile(filepath.Join(c.data, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(line))
}
