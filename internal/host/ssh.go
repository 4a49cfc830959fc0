package host

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// SSH is a host reached over SSH: files through SFTP, commands and
// processes through exec sessions, the control socket through the
// connection's direct-streamlocal channel (no TCP port is opened for it).
// One connection serves every caller (methods are safe for concurrent
// use); a connection that is lost is replaced on the next call.
type SSH struct {
	cfg    SSHConfig
	addr   string // host:port
	client *ssh.ClientConfig

	mu   sync.Mutex // guards conn and serializes connecting
	conn *sshConn

	// sessions bounds the exec sessions open at once below sshd's
	// MaxSessions (10 by default, one of them SFTP).
	sessions chan struct{}
	dials    atomic.Int64
}

// SSHConfig says how to reach and log in to a host.
type SSHConfig struct {
	// Address is host[:port]; the port defaults to 22.
	Address string
	User    string
	// PrivateKey is a PEM or OpenSSH private key, encrypted with
	// Passphrase when that is set.
	PrivateKey []byte
	Passphrase []byte
	// Agent logs in with the keys of the SSH agent at $SSH_AUTH_SOCK.
	Agent bool
	// HostKeys are pinned host keys in authorized_keys form
	// ("ssh-ed25519 AAAA..."); KnownHosts are known_hosts files. A host
	// key is accepted when it is pinned or known_hosts knows it for the
	// host; with neither set, ~/.ssh/known_hosts is used. There is no way
	// to skip the check.
	HostKeys   []string
	KnownHosts []string
	// Timeout bounds connecting and logging in; zero means 10 seconds.
	Timeout time.Duration
}

// Bounds of an SSH host's waits.
const (
	defaultSSHTimeout = 10 * time.Second
	// keepaliveInterval: a connection whose peer does not answer a
	// keepalive within it is closed, so calls fail instead of hanging.
	keepaliveInterval = 10 * time.Second
	maxSessions       = 8
)

type sshConn struct {
	client *ssh.Client
	sftp   *sftp.Client
	home   string
	dead   atomic.Bool
	closed chan struct{}
}

var (
	sharedMu  sync.Mutex
	sharedSSH = map[string]*SSH{}
)

// SharedSSH returns the SSH host for cfg, one per identical configuration
// in this process, so that every resource of a provider run shares one
// connection. It checks the configuration (keys, host keys) without
// connecting.
func SharedSSH(cfg SSHConfig) (*SSH, error) {
	key := fmt.Sprintf("%q", []any{cfg.Address, cfg.User, string(cfg.PrivateKey), string(cfg.Passphrase), cfg.Agent, cfg.HostKeys, cfg.KnownHosts, cfg.Timeout})
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if h, ok := sharedSSH[key]; ok {
		return h, nil
	}
	h, err := NewSSH(cfg)
	if err != nil {
		return nil, err
	}
	sharedSSH[key] = h
	return h, nil
}

// CloseShared closes the connection of every host SharedSSH handed out
// for address (host:port) and forgets those hosts. A provider process
// exits after each Terraform command and its connections go with it; a
// process that serves several commands with in-process providers (a test
// binary) calls it so that no SSH session of its own stays open on the
// host. A host still in use connects again on its next call.
func CloseShared(address string) {
	sharedMu.Lock()
	var hosts []*SSH
	for k, h := range sharedSSH {
		if h.addr == address {
			hosts = append(hosts, h)
			delete(sharedSSH, k)
		}
	}
	sharedMu.Unlock()
	for _, h := range hosts {
		h.mu.Lock()
		if h.conn != nil {
			h.conn.dead.Store(true)
			h.conn.client.Close()
			h.conn = nil
		}
		h.mu.Unlock()
	}
}

// NewSSH checks cfg and returns the host; it connects on first use.
func NewSSH(cfg SSHConfig) (*SSH, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultSSHTimeout
	}
	addr, err := SSHAddress(cfg.Address)
	if err != nil {
		return nil, err
	}
	if cfg.User == "" {
		return nil, fmt.Errorf("ssh %s: no user", addr)
	}
	var auth []ssh.AuthMethod
	if len(cfg.PrivateKey) > 0 {
		signer, err := parsePrivateKey(cfg.PrivateKey, cfg.Passphrase)
		if err != nil {
			return nil, fmt.Errorf("ssh %s: private key: %w", addr, err)
		}
		auth = append(auth, ssh.PublicKeys(signer))
	}
	// The agent's keys are added per login (connect), which closes the
	// agent connection when the handshake is over.
	if len(auth) == 0 && !cfg.Agent {
		return nil, fmt.Errorf("ssh %s: no way to log in: set a private key or use the SSH agent", addr)
	}
	verify, algorithms, err := hostKeyCheck(addr, cfg.HostKeys, cfg.KnownHosts)
	if err != nil {
		return nil, err
	}
	return &SSH{
		cfg:  cfg,
		addr: addr,
		client: &ssh.ClientConfig{
			User:              cfg.User,
			Auth:              auth,
			HostKeyCallback:   verify,
			HostKeyAlgorithms: algorithms,
			Timeout:           cfg.Timeout,
		},
		sessions: make(chan struct{}, maxSessions),
	}, nil
}

// SSHAddress is host[:port] with the default port 22 added.
func SSHAddress(a string) (string, error) {
	if a == "" {
		return "", errors.New("ssh: no address")
	}
	if _, _, err := net.SplitHostPort(a); err == nil {
		return a, nil
	}
	if strings.Count(a, ":") > 1 && !strings.HasPrefix(a, "[") {
		return net.JoinHostPort(a, "22"), nil // a bare IPv6 address
	}
	return net.JoinHostPort(strings.Trim(a, "[]"), "22"), nil
}

func parsePrivateKey(pemBytes, passphrase []byte) (ssh.Signer, error) {
	if len(passphrase) > 0 {
		s, err := ssh.ParsePrivateKeyWithPassphrase(pemBytes, passphrase)
		if errors.Is(err, x509.IncorrectPasswordError) {
			return nil, errors.New("the passphrase does not decrypt the key (wrong private_key_passphrase)")
		}
		return s, err
	}
	s, err := ssh.ParsePrivateKey(pemBytes)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return nil, errors.New("the key is encrypted: set its passphrase (private_key_passphrase)")
	}
	return s, err
}

// agentAuth logs in with the keys of the SSH agent at $SSH_AUTH_SOCK,
// over one agent connection that done closes (after the handshake).
func agentAuth() (method ssh.AuthMethod, done func()) {
	var c net.Conn
	method = ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
		if c == nil {
			sock := os.Getenv("SSH_AUTH_SOCK")
			if sock == "" {
				return nil, errors.New("no SSH agent: SSH_AUTH_SOCK is not set")
			}
			var err error
			if c, err = net.DialTimeout("unix", sock, 5*time.Second); err != nil {
				return nil, fmt.Errorf("SSH agent %s: %w", sock, err)
			}
		}
		return agent.NewClient(c).Signers()
	})
	return method, func() {
		if c != nil {
			c.Close()
		}
	}
}

// String names the host: its address with the port.
func (h *SSH) String() string { return h.addr }

// Address is the host:port the host is reached at.
func (h *SSH) Address() string { return h.addr }

// Dials counts the SSH connections made so far (logins).
func (h *SSH) Dials() int64 { return h.dials.Load() }

// get returns the live connection, connecting when there is none.
func (h *SSH) get(ctx context.Context) (*sshConn, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn != nil && !h.conn.dead.Load() {
		return h.conn, nil
	}
	c, err := h.connect(ctx)
	if err != nil {
		return nil, err
	}
	h.conn = c
	return c, nil
}

func (h *SSH) connect(ctx context.Context) (*sshConn, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	d := net.Dialer{Timeout: h.cfg.Timeout}
	raw, err := d.DialContext(ctx, "tcp", h.addr)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: cannot connect (waited at most %s): %w", h.addr, h.cfg.Timeout, err)
	}
	// The handshake has the same bound.
	deadline, _ := ctx.Deadline()
	_ = raw.SetDeadline(deadline)
	conf := h.client
	if h.cfg.Agent {
		withAgent := *h.client
		method, done := agentAuth()
		defer done()
		withAgent.Auth = append(slices.Clip(withAgent.Auth), method)
		conf = &withAgent
	}
	sc, chans, reqs, err := ssh.NewClientConn(raw, h.addr, conf)
	if err != nil {
		raw.Close()
		return nil, h.loginError(err)
	}
	_ = raw.SetDeadline(time.Time{})
	h.dials.Add(1)
	client := ssh.NewClient(sc, chans, reqs)
	fc, err := sftp.NewClient(client, sftp.UseConcurrentWrites(true), sftp.UseConcurrentReads(true))
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("ssh %s: starting SFTP (is the sftp subsystem enabled in sshd_config?): %w", h.addr, err)
	}
	home, err := fc.RealPath(".")
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("ssh %s: finding the home folder: %w", h.addr, err)
	}
	c := &sshConn{client: client, sftp: fc, home: home, closed: make(chan struct{})}
	go func() {
		_ = client.Wait()
		c.dead.Store(true)
		close(c.closed)
	}()
	go c.keepalive()
	return c, nil
}

// keepalive closes a connection whose peer stopped answering, so that
// calls on it fail within keepaliveInterval instead of hanging.
func (c *sshConn) keepalive() {
	t := time.NewTicker(keepaliveInterval)
	defer t.Stop()
	for {
		select {
		case <-c.closed:
			return
		case <-t.C:
		}
		answered := make(chan struct{})
		go func() {
			_, _, _ = c.client.SendRequest("keepalive@openssh.com", true, nil)
			close(answered)
		}()
		select {
		case <-answered:
		case <-c.closed:
			return
		case <-time.After(keepaliveInterval):
			c.dead.Store(true)
			c.client.Close()
			return
		}
	}
}

// loginError explains a failed handshake, naming the host.
func (h *SSH) loginError(err error) error {
	var hk *hostKeyError
	if errors.As(err, &hk) {
		return hk
	}
	msg := err.Error()
	if strings.Contains(msg, "unable to authenticate") {
		return fmt.Errorf("ssh %s: logging in as %q was refused (check user, private_key or the agent's keys, and the user's authorized_keys on the host): %w", h.addr, h.cfg.User, err)
	}
	return fmt.Errorf("ssh %s: %w", h.addr, err)
}

// do runs fn on the live connection. A failure that lost the connection
// marks it dead and, for idempotent operations, tries once more on a new
// one.
func (h *SSH) do(ctx context.Context, idempotent bool, fn func(*sshConn) error) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, err := h.get(ctx)
		if err != nil {
			return err
		}
		err = fn(c)
		if err == nil || !c.lost(err) {
			return err
		}
		c.dead.Store(true)
		c.client.Close()
		if !idempotent || attempt > 0 {
			return fmt.Errorf("ssh %s: connection lost: %w", h.addr, err)
		}
	}
}

// lost reports whether err means the connection is gone.
func (c *sshConn) lost(err error) bool {
	if c.dead.Load() {
		return true
	}
	return errors.Is(err, sftp.ErrSSHFxConnectionLost) || errors.Is(err, io.EOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (h *SSH) Abs(p string) (string, error) {
	if path.IsAbs(p) {
		return path.Clean(p), nil
	}
	c, err := h.get(context.Background())
	if err != nil {
		return "", err
	}
	return path.Join(c.home, p), nil
}

// where names a path on this host in errors.
func (h *SSH) where(p string) string { return p + " on " + h.addr }

func (h *SSH) ReadFile(ctx context.Context, p string) ([]byte, error) {
	var data []byte
	err := h.do(ctx, true, func(c *sshConn) error {
		f, err := c.sftp.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		var buf bytes.Buffer
		if _, err := f.WriteTo(&buf); err != nil {
			return err
		}
		data = buf.Bytes()
		return nil
	})
	if err != nil {
		return nil, fileError("reading", h.where(p), err)
	}
	return data, nil
}

// fileError wraps an SFTP error so that a missing file still wraps
// fs.ErrNotExist and the message names the file and host.
func fileError(op, what string, err error) error {
	var se *sftp.StatusError
	if errors.As(err, &se) {
		switch se.FxCode() {
		case sftp.ErrSSHFxNoSuchFile:
			err = fs.ErrNotExist
		case sftp.ErrSSHFxPermissionDenied:
			err = fs.ErrPermission
		}
	}
	return fmt.Errorf("%s %s: %w", op, what, err)
}

func (h *SSH) WriteFile(ctx context.Context, p string, data []byte, opts WriteOptions) error {
	err := h.do(ctx, true, func(c *sshConn) error { return c.explain(p, c.writeAtomic(p, data, opts)) })
	if err != nil {
		return fileError("writing", h.where(p), err)
	}
	return nil
}

// writeAtomic writes through a temporary file renamed over p. An
// executable written so can be started at once, even while other files
// are being written: the only write descriptor of the temporary file is
// the SFTP server's, which forks no process that could inherit it, and it
// is closed before the rename (no "text file busy", unlike Local, which
// guards its own forks in internal/atomicfile).
func (c *sshConn) writeAtomic(p string, data []byte, opts WriteOptions) (err error) {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := path.Join(path.Dir(p), "."+path.Base(p)+".tmp-"+hex.EncodeToString(rnd[:]))
	f, err := c.sftp.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			_ = c.sftp.Remove(tmp)
		}
	}()
	if err = f.Chmod(opts.mode()); err != nil {
		return err
	}
	if opts.Owner != nil {
		if err = f.Chown(opts.Owner.UID, opts.Owner.GID); err != nil {
			return err
		}
	}
	if _, err = f.ReadFrom(bytes.NewReader(data)); err != nil {
		return err
	}
	// fsync@openssh.com; servers without it still get an atomic rename.
	if err = f.Sync(); err != nil && !isUnsupported(err) {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return c.sftp.PosixRename(tmp, p)
}

func isUnsupported(err error) bool {
	var se *sftp.StatusError
	return errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxOpUnsupported
}

func (h *SSH) Stat(ctx context.Context, p string) (FileInfo, error) {
	var fi FileInfo
	err := h.do(ctx, true, func(c *sshConn) error {
		st, err := c.sftp.Stat(p)
		if err != nil {
			return err
		}
		fi = FileInfo{Size: st.Size(), Mode: st.Mode(), ModTime: st.ModTime(), UID: -1, GID: -1}
		if fs, ok := st.Sys().(*sftp.FileStat); ok {
			fi.UID, fi.GID = int(fs.UID), int(fs.GID)
		}
		return nil
	})
	if err != nil {
		return FileInfo{}, fileError("stat", h.where(p), err)
	}
	return fi, nil
}

func (h *SSH) MkdirAll(ctx context.Context, p string, perm fs.FileMode) error {
	err := h.do(ctx, true, func(c *sshConn) error {
		// Create the missing folders from the top, each with perm.
		var missing []string
		for d := path.Clean(p); d != "/" && d != "."; d = path.Dir(d) {
			st, err := c.sftp.Stat(d)
			if err == nil {
				if !st.IsDir() {
					return fmt.Errorf("%s is not a folder", d)
				}
				break
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			missing = append(missing, d)
		}
		for i := len(missing) - 1; i >= 0; i-- {
			if err := c.sftp.Mkdir(missing[i]); err != nil {
				if st, serr := c.sftp.Stat(missing[i]); serr != nil || !st.IsDir() {
					return c.explain(missing[i], err)
				}
				continue // made meanwhile by someone else
			}
			if err := c.sftp.Chmod(missing[i], perm); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fileError("creating folder", h.where(p), err)
	}
	return nil
}

// explain adds what SFTP's generic failure does not say: that the file
// system is mounted read-only (statvfs@openssh.com).
func (c *sshConn) explain(p string, err error) error {
	var se *sftp.StatusError
	if err == nil || !errors.As(err, &se) || se.FxCode() != sftp.ErrSSHFxFailure {
		return err
	}
	for d := path.Dir(p); ; d = path.Dir(d) {
		if st, serr := c.sftp.StatVFS(d); serr == nil {
			if st.Flag&sshFxeStatVFSReadOnly != 0 {
				return fmt.Errorf("%w (%v)", syscall.EROFS, err)
			}
			return err
		}
		if d == "/" || d == "." {
			return err
		}
	}
}

// sshFxeStatVFSReadOnly is statvfs@openssh.com's ST_RDONLY flag.
const sshFxeStatVFSReadOnly = 0x1

func (h *SSH) Remove(ctx context.Context, p string) error {
	err := h.do(ctx, true, func(c *sshConn) error {
		err := c.sftp.Remove(p)
		if errors.Is(err, fs.ErrNotExist) || isNoSuchFile(err) {
			return nil
		}
		return err
	})
	if err != nil {
		return fileError("removing", h.where(p), err)
	}
	return nil
}

func isNoSuchFile(err error) bool {
	var se *sftp.StatusError
	return errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxNoSuchFile
}

func (h *SSH) RemoveAll(ctx context.Context, p string) error {
	if _, err := h.Run(ctx, "rm", "-rf", "--", p); err != nil {
		return fmt.Errorf("removing %s: %w", h.where(p), err)
	}
	return nil
}

func (h *SSH) SHA256(ctx context.Context, p string) (string, error) {
	out, err := h.Run(ctx, "sha256sum", "--", p)
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", h.where(p), err)
	}
	sum, _, _ := strings.Cut(string(out), " ")
	if len(sum) != 64 {
		return "", fmt.Errorf("hashing %s: unexpected sha256sum output %q", h.where(p), out)
	}
	return sum, nil
}

// lockBusy is the exit code flock(1) is told to give when the lock is held.
const lockBusy = 75

// Lock holds a flock(1) on the host for as long as one exec session runs;
// unlock ends the session. A connection that dies releases the lock with
// it.
func (h *SSH) Lock(ctx context.Context, p string, wait bool) (func(), error) {
	flags := "-x"
	if !wait {
		flags += " -n -E " + strconv.Itoa(lockBusy)
	}
	cmd := "umask 077 && exec flock " + flags + " " + shellQuote(p) + " sh -c 'echo locked && exec cat >/dev/null'"
	c, err := h.get(ctx)
	if err != nil {
		return nil, err
	}
	release, err := h.session(ctx)
	if err != nil {
		return nil, err
	}
	s, err := c.client.NewSession()
	if err != nil {
		release()
		return nil, fmt.Errorf("locking %s: %w", h.where(p), err)
	}
	stdin, _ := s.StdinPipe()
	stdout, _ := s.StdoutPipe()
	var stderr bytes.Buffer
	s.Stderr = &stderr
	if err := s.Start(cmd); err != nil {
		s.Close()
		release()
		return nil, fmt.Errorf("locking %s: %w", h.where(p), err)
	}
	got := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && line != "locked\n" {
			err = fmt.Errorf("unexpected answer %q", line)
		}
		got <- err
	}()
	end := func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = s.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(h.cfg.Timeout):
		}
		s.Close()
		release()
	}
	select {
	case err := <-got:
		if err != nil {
			werr := s.Wait()
			s.Close()
			release()
			var exit *ssh.ExitError
			if errors.As(werr, &exit) && exit.ExitStatus() == lockBusy {
				return nil, fmt.Errorf("locking %s: %w", h.where(p), ErrLocked)
			}
			return nil, fmt.Errorf("locking %s: %v %s", h.where(p), werr, strings.TrimSpace(stderr.String()))
		}
		return end, nil
	case <-ctx.Done():
		_ = s.Signal(ssh.SIGTERM)
		s.Close()
		release()
		return nil, fmt.Errorf("locking %s: %w", h.where(p), ctx.Err())
	}
}

// session takes one of the exec session slots.
func (h *SSH) session(ctx context.Context) (func(), error) {
	select {
	case h.sessions <- struct{}{}:
		return func() { <-h.sessions }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (h *SSH) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	line := shellQuote(name)
	for _, a := range args {
		line += " " + shellQuote(a)
	}
	var out []byte
	err := h.do(ctx, true, func(c *sshConn) error {
		var err error
		out, err = h.run(ctx, c, line)
		return err
	})
	var exit *ssh.ExitError
	if errors.As(err, &exit) {
		return out, commandError(name, args, fmt.Errorf("on %s: exit status %d", h.addr, exit.ExitStatus()), exitStderr(err))
	}
	if err != nil {
		return out, fmt.Errorf("running %s on %s: %w", name, h.addr, err)
	}
	return out, nil
}

// runError carries a failed command's standard error.
type runError struct {
	*ssh.ExitError
	stderr string
}

func (e *runError) Unwrap() error { return e.ExitError }

func exitStderr(err error) string {
	var re *runError
	if errors.As(err, &re) {
		return re.stderr
	}
	return ""
}

// run runs one command line in an exec session.
func (h *SSH) run(ctx context.Context, c *sshConn, line string) ([]byte, error) {
	release, err := h.session(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	s, err := c.client.NewSession()
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var stdout, stderr bytes.Buffer
	s.Stdout, s.Stderr = &stdout, &stderr
	if err := s.Start(line); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = s.Signal(ssh.SIGKILL)
		return nil, ctx.Err()
	}
	var exit *ssh.ExitError
	if errors.As(err, &exit) {
		return stdout.Bytes(), &runError{ExitError: exit, stderr: stderr.String()}
	}
	return stdout.Bytes(), err
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (h *SSH) Start(ctx context.Context, cmd Command) (int, error) {
	line := "cd " + shellQuote(cmd.Dir) + " && (umask 077 && : >>" + shellQuote(cmd.LogFile) + ") && { setsid " + shellQuote(cmd.Path)
	for _, a := range cmd.Args {
		line += " " + shellQuote(a)
	}
	line += " >>" + shellQuote(cmd.LogFile) + " 2>&1 </dev/null & } && echo $!"
	c, err := h.get(ctx)
	if err != nil {
		return 0, err
	}
	out, err := h.run(ctx, c, line)
	if err != nil {
		return 0, fmt.Errorf("starting %s on %s: %w %s", cmd.Path, h.addr, err, strings.TrimSpace(exitStderr(err)))
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return 0, fmt.Errorf("starting %s on %s: unexpected answer %q", cmd.Path, h.addr, out)
	}
	return pid, nil
}

func (h *SSH) Signal(ctx context.Context, pid int, sig syscall.Signal) error {
	// A zombie (whose parent, init, has not reaped it yet) takes signals
	// without error; it is gone all the same.
	if p, err := h.Process(ctx, pid); pid <= 0 || (err == nil && !p.Alive) {
		return fmt.Errorf("signal to pid %d on %s: %w", pid, h.addr, ErrNoProcess)
	}
	_, err := h.Run(ctx, "kill", "-"+strconv.Itoa(int(sig)), strconv.Itoa(pid))
	if err != nil {
		if strings.Contains(err.Error(), "No such process") {
			return fmt.Errorf("signal to pid %d on %s: %w", pid, h.addr, ErrNoProcess)
		}
		return err
	}
	return nil
}

// Process reads procfs over SFTP; without procfs it asks kill -0.
func (h *SSH) Process(ctx context.Context, pid int) (Process, error) {
	if pid <= 0 {
		return Process{}, nil
	}
	proc := "/proc/" + strconv.Itoa(pid)
	stat, err := h.ReadFile(ctx, proc+"/stat")
	if errors.Is(err, fs.ErrNotExist) {
		if _, perr := h.Stat(ctx, "/proc/self"); perr == nil {
			return Process{}, nil // procfs, and no such process
		}
		if _, kerr := h.Run(ctx, "kill", "-0", strconv.Itoa(pid)); kerr != nil {
			return Process{}, nil
		}
		return Process{Alive: true}, nil
	}
	if err != nil {
		return Process{}, err
	}
	p := Process{Alive: parseProcStat(stat)}
	if !p.Alive {
		return Process{}, nil
	}
	if cmdline, err := h.ReadFile(ctx, proc+"/cmdline"); err == nil {
		p.Args = parseCmdline(cmdline)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Process{}, err
	}
	return p, nil
}

func (h *SSH) DialUnix(ctx context.Context, p string) (net.Conn, error) {
	var conn net.Conn
	err := h.do(ctx, true, func(c *sshConn) error {
		var err error
		conn, err = c.client.DialContext(ctx, "unix", p)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dialing unix socket %s: %w", h.where(p), err)
	}
	return conn, nil
}
