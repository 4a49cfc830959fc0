package loadgen

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"syscall"
	"time"
)

// Dovecot is Dovecot's IMAP server from Debian (dovecot-core,
// dovecot-imapd), started on loopback with a temporary configuration as a
// peer to measure against: implicit TLS on a given certificate, and the
// package's defaults otherwise. Those start a new imap-login process for
// every connection ("high-security mode"); with performance set, a few
// long-lived login processes take them all instead (service_count = 0,
// process_min_avail = one per CPU: Dovecot's "high-performance mode").
type Dovecot struct {
	// Addr is the implicit-TLS (imaps) address on 127.0.0.1.
	Addr string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartDovecot runs Dovecot in the foreground with its configuration, logs
// and state under dir (made world-readable: Dovecot's own processes run
// as its users), serving imaps with the PEM certificate chain and key.
func StartDovecot(dir string, certPEM, keyPEM []byte, performance bool) (*Dovecot, error) {
	exe, err := exec.LookPath("dovecot")
	if err != nil {
		return nil, errors.New("dovecot is not installed (Debian: apt-get install dovecot-imapd)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	for name, data := range map[string][]byte{"cert.pem": certPEM, "key.pem": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	// Dovecot serves no mail as uid 0: nobody owns it (none is read here).
	const nobody = 65534
	login := ""
	if performance {
		login = fmt.Sprintf("  service_count = 0\n  process_min_avail = %d\n", goruntime.NumCPU())
	}
	conf := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
instance_name = mailstack-loadgen-%[2]d
log_path = %[1]s/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <%[1]s/cert.pem
ssl_key = <%[1]s/key.pem
default_internal_user = dovecot
default_login_user = dovenull
mail_location = maildir:%[1]s/mail/%%u
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=%[4]d gid=%[4]d home=%[1]s/home/%%u
}
service imap-login {
%[5]s  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = %[3]s
    ssl = yes
  }
}
`, dir, os.Getpid(), port, nobody, login)
	confPath := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	out, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		return nil, err
	}
	defer out.Close()
	d := &Dovecot{Addr: addr, dir: dir, cmd: exec.Command(exe, "-F", "-c", confPath), done: make(chan struct{})}
	d.cmd.Stdout, d.cmd.Stderr = out, out
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return d, nil
		}
		select {
		case <-d.done:
			return nil, fmt.Errorf("dovecot exited at start; see %s", filepath.Join(dir, "dovecot.log"))
		default:
		}
		if time.Now().After(deadline) {
			d.Stop()
			return nil, fmt.Errorf("dovecot did not listen on %s within 10s; see %s", addr, filepath.Join(dir, "dovecot.log"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// PID is the Dovecot master process.
func (d *Dovecot) PID() int { return d.cmd.Process.Pid }

// Stop stops Dovecot and waits for it (and its processes) to exit.
func (d *Dovecot) Stop() error {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return nil
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
		return errors.New("dovecot did not stop within 10s of SIGTERM")
	}
}
