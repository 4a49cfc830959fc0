// Package postfixtest runs Debian's Postfix for tests: one instance per
// call with its own config_directory, queue_directory and log file in a
// fresh folder, listening on a loopback port, stopped when the test ends.
// It serves as a destination MX (mail for its domain lands in one Maildir,
// or is discarded for benchmarks) and as a relay to compare with. Postfix
// needs root to start; tests skip without it or without the package
// (.ci/run installs it). It is for tests and benchmarks only.
package postfixtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

// Binary is Debian's postfix command.
const Binary = "/usr/sbin/postfix"

// Options describe one instance. Addr is required.
type Options struct {
	// Addr is the ip:port smtpd listens on.
	Addr string
	// Hostname is myhostname (greeting, Received:); empty: "postfix.test".
	Hostname string
	// Domain, when set, is delivered to one Maildir (see Maildir), or
	// discarded with Discard.
	Domain string
	// Discard makes the instance a benchmark sink, shared by whatever it
	// compares: besides discarding, its daemons serve 100,000 requests
	// before they exit (max_use; Debian: 100, so cleanup and discard were
	// restarted every 100 messages) and cleanup never pauses a sender to
	// let the queue manager catch up (in_flow_delay = 0; Debian: 1s).
	Discard bool
	// Cert is smtpd's certificate; nil: a self-signed one for Hostname.
	Cert *testutil.Certificate
	// RelayHost, when set, makes this instance a relay: mail for other
	// domains from 127.0.0.0/8 goes to [host]:port with TLS required
	// (smtp_tls_security_level = encrypt), TLS connection reuse and
	// Debian's TLS session cache (tlsmgr).
	RelayHost string
}

// Instance is a running Postfix.
type Instance struct {
	Addr string
	Dir  string
	// Cert is the certificate smtpd serves.
	Cert *testutil.Certificate
	log  string
	conf string
}

// Available reports why Postfix cannot run here, or nil.
func Available() error {
	if _, err := os.Stat(Binary); err != nil {
		return fmt.Errorf("postfix is not installed (%s): apt-get install postfix", Binary)
	}
	if os.Geteuid() != 0 {
		return errors.New("postfix must be started as root")
	}
	if _, err := user.Lookup("postfix"); err != nil {
		return fmt.Errorf("no postfix user: %w", err)
	}
	return nil
}

// Start runs an instance until the test ends (or Stop), and returns once
// smtpd answers. The test is skipped where Postfix cannot run.
func Start(t testing.TB, o Options) *Instance {
	t.Helper()
	if err := Available(); err != nil {
		t.Skip(err)
	}
	inst, err := Run(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		inst.Stop()
		if t.Failed() {
			t.Logf("postfix log:\n%s", inst.Log())
		}
		os.RemoveAll(inst.Dir)
	})
	return inst
}

// Run is Start without a test: the caller stops the instance and removes
// its Dir. Benchmarks use it.
func Run(o Options) (*Instance, error) {
	if o.Hostname == "" {
		o.Hostname = "postfix.test"
	}
	dir, err := os.MkdirTemp("", "postfix-")
	if err != nil {
		return nil, err
	}
	// Postfix's daemons run as the postfix user: the folder must be
	// traversable, the data and mail folders theirs.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	pu, err := user.Lookup("postfix")
	if err != nil {
		return nil, err
	}
	inst := &Instance{Addr: o.Addr, Dir: dir, log: filepath.Join(dir, "postfix.log"), conf: filepath.Join(dir, "conf")}
	for _, d := range []string{"conf", "queue", "data", "vmail"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	var uid, gid int
	fmt.Sscan(pu.Uid, &uid)
	fmt.Sscan(pu.Gid, &gid)
	for _, d := range []string{"data", "vmail"} {
		if err := os.Chown(filepath.Join(dir, d), uid, gid); err != nil {
			return nil, err
		}
	}
	cert := o.Cert
	if cert == nil {
		if cert, err = testutil.NewSelfSigned(o.Hostname); err != nil {
			return nil, err
		}
	}
	inst.Cert = cert
	certFile, keyFile := filepath.Join(dir, "conf", "cert.pem"), filepath.Join(dir, "conf", "key.pem")
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.TLS.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(certFile, cert.PEM(), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	var main bytes.Buffer
	fmt.Fprintf(&main, `compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = %[2]s
mydomain = %[2]s
myorigin = %[2]s
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
maillog_file = %[3]s
maillog_file_prefixes = %[1]s
alias_maps =
alias_database =
smtpd_tls_security_level = may
smtpd_tls_cert_file = %[4]s
smtpd_tls_key_file = %[5]s
smtpd_tls_loglevel = 1
smtp_tls_loglevel = 1
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
default_process_limit = 200
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
`, dir, o.Hostname, inst.log, certFile, keyFile)
	if o.Domain != "" {
		transport := "virtual"
		if o.Discard {
			transport = "discard"
		}
		fmt.Fprintf(&main, `virtual_mailbox_domains = %s
virtual_mailbox_base = %s/vmail
virtual_mailbox_maps = static:box/
virtual_uid_maps = static:%d
virtual_gid_maps = static:%d
virtual_transport = %s
`, o.Domain, dir, uid, gid, transport)
		if o.Discard {
			main.WriteString("max_use = 100000\nin_flow_delay = 0\n")
		}
	}
	if o.RelayHost != "" {
		fmt.Fprintf(&main, `relayhost = [%s]:%s
smtp_tls_security_level = encrypt
smtp_tls_connection_reuse = yes
smtp_tls_session_cache_database = btree:${data_directory}/smtp_scache
default_destination_concurrency_limit = 20
`, hostOf(o.RelayHost), portOf(o.RelayHost))
	}
	master := fmt.Sprintf("%s inet n - n - - smtpd\n", o.Addr) + masterServices
	if err := os.WriteFile(filepath.Join(dir, "conf", "main.cf"), main.Bytes(), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "conf", "master.cf"), []byte(master), 0o644); err != nil {
		return nil, err
	}
	if out, err := exec.Command(Binary, "-c", inst.conf, "start").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("postfix start: %v\n%s\n%s", err, out, inst.Log())
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", o.Addr, time.Second); err == nil {
			c.Close()
			return inst, nil
		}
		if time.Now().After(deadline) {
			inst.Stop()
			return nil, fmt.Errorf("postfix did not listen on %s within 20s:\n%s", o.Addr, inst.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hostOf(hp string) string { h, _, _ := net.SplitHostPort(hp); return h }
func portOf(hp string) string { _, p, _ := net.SplitHostPort(hp); return p }

// masterServices are Debian's master.cf services, less the smtpd line.
const masterServices = `pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
tlsproxy  unix  -       -       n       -       0       tlsproxy
`

var stopMu sync.Mutex

// Stop stops the instance and waits for its master to exit.
func (p *Instance) Stop() {
	stopMu.Lock()
	defer stopMu.Unlock()
	pidFile := filepath.Join(p.Dir, "queue", "pid", "master.pid")
	b, _ := os.ReadFile(pidFile)
	var pid int
	fmt.Sscan(strings.TrimSpace(string(b)), &pid)
	exec.Command(Binary, "-c", p.conf, "stop").Run()
	if pid <= 0 {
		return
	}
	for range 200 {
		if err := syscallKill(pid); err != nil {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Log returns the instance's mail log.
func (p *Instance) Log() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// Maildir returns the messages delivered to Domain, oldest first.
func (p *Instance) Maildir() ([]string, error) {
	files, err := filepath.Glob(filepath.Join(p.Dir, "vmail", "box", "new", "*"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, string(b))
	}
	return out, nil
}

// Count returns how many times s occurs in the log (such as
// "status=sent"), reading the log file once.
func (p *Instance) Count(s string) int {
	return strings.Count(p.Log(), s)
}

// Counter counts the occurrences of a string in the log lines written
// after the Counter was made. Each Count reads only what the log gained
// since the last one, so polling a log that grows by megabytes (a
// benchmark's) costs what it grew by, not its whole size each time.
type Counter struct {
	path string
	s    []byte
	off  int64
	n    int
}

// NewCounter starts counting s from the log's current end.
func (p *Instance) NewCounter(s string) *Counter {
	c := &Counter{path: p.log, s: []byte(s)}
	if st, err := os.Stat(p.log); err == nil {
		c.off = st.Size()
	}
	return c
}

// Count returns how often the string occurs in the complete lines the log
// gained.
func (c *Counter) Count() int {
	f, err := os.Open(c.path)
	if err != nil {
		return c.n
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, c.off, 1<<62))
	if err != nil {
		return c.n
	}
	// A line still being written is counted once it is whole.
	end := bytes.LastIndexByte(b, '\n') + 1
	c.n += bytes.Count(b[:end], c.s)
	c.off += int64(end)
	return c.n
}
