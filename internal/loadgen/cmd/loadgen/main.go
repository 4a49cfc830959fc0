// Command loadgen benchmarks the mail runtime the way it is deployed: it
// starts the real executable (`runtime serve`) on a temporary state
// directory, configures it over the control socket, and measures SMTP
// deliveries (fsync before 250), TLS handshakes against a bare crypto/tls
// server on the same certificate, IMAP FETCH, and the memory of 1,000 idle
// IMAP sessions. It prints Markdown tables for docs/benchmarks.md.
//
//	go run ./internal/loadgen/cmd/loadgen -bin bin/terraform-provider-mailstack
//
// The load generator shares the machine with the runtime; the tables give
// the runtime's own CPU time per operation too, which does not depend on
// that.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/internal/loadgen"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
)

const (
	hostname         = "mail.example.com"
	keystorePassword = "loadgen-keystore"
	userPassword     = "loadgen-password"
	smtpRecipients   = 32
	fetchMessages    = 2000
)

type options struct {
	bin          string
	duration     time.Duration
	key          string
	sections     string
	idle         int
	idleParallel int
	reps         int
	settle       time.Duration
	kinds        string
	hsClients    string
	sideBySide   bool
	stores       string
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "", "the runtime executable (terraform-provider-mailstack); empty: go build it")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "how long each measurement runs")
	flag.StringVar(&o.key, "key", "RSA", "the certificate's key: RSA (2048 bits) or ECDSA (P-256)")
	flag.StringVar(&o.sections, "sections", "smtp,handshake,dovecot,fetch,idle", "what to measure: smtp, handshake, dovecot (full handshakes against Dovecot from Debian), fetch, idle, outbound (relaying against Postfix; needs root and postfix)")
	flag.IntVar(&o.idle, "idle", 1000, "idle IMAP sessions for the memory measurement")
	flag.IntVar(&o.idleParallel, "idle-parallel", 2, "idle sessions logging in at a time (each argon2id check takes store.DefaultArgon2.MemoryKiB)")
	flag.DurationVar(&o.settle, "idle-settle", 150*time.Second, "how long the idle sessions stay before the runtime's memory is read again (Go collects at least every 2 minutes, then returns memory; 0: skip)")
	flag.StringVar(&o.kinds, "handshakes", "full,resumed", "which handshakes to measure")
	flag.StringVar(&o.hsClients, "handshake-clients", "8,32", "concurrent clients of the handshake measurements, comma-separated")
	flag.BoolVar(&o.sideBySide, "side-by-side", true, "load the runtime and the bare crypto/tls server at the same time (false: one after the other)")
	flag.StringVar(&o.stores, "stores", "embedded,postgres", "the mail stores the smtp and fetch sections measure side by side: embedded, postgres (a cluster of its own, from Debian's postgresql)")
	flag.IntVar(&o.reps, "reps", 3, "alternating repetitions of each handshake measurement (the median counts)")
	bare := flag.String("bare-tls-server", "", "internal: serve bare crypto/tls with this keystore and print the address")
	flag.Parse()
	if *bare != "" {
		if err := serveBare(*bare); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "mailstack-loadgen-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if o.bin == "" {
		o.bin = filepath.Join(work, "terraform-provider-mailstack")
		cmd := exec.Command("go", "build", "-o", o.bin, "github.com/mailstack/terraform-provider-mailstack")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building the runtime: %w", err)
		}
	}
	ks, err := makeKeystore(work, o.key)
	if err != nil {
		return err
	}
	printMachine(o)

	rt, err := startRuntime(o.bin, filepath.Join(work, "state"))
	if err != nil {
		return err
	}
	defer rt.stop()
	if err := rt.configure(ctx, ks, allUsers()); err != nil {
		return err
	}
	want := func(s string) bool { return slices.Contains(strings.Split(o.sections, ","), s) }
	var stores []*storeRuntime
	if want("smtp") || want("fetch") {
		var cleanup func()
		stores, cleanup, err = startStores(ctx, o, work, ks, rt)
		defer cleanup()
		if err != nil {
			return err
		}
	}

	if want("smtp") {
		if err := benchSMTP(ctx, o, stores, ks); err != nil {
			return err
		}
	}
	if want("handshake") {
		if err := benchHandshakes(ctx, o, rt, ks); err != nil {
			return err
		}
	}
	if want("dovecot") {
		if err := benchDovecot(ctx, o, rt, work); err != nil {
			return err
		}
	}
	if want("fetch") {
		if err := benchFetch(ctx, o, stores, ks); err != nil {
			return err
		}
	}
	if want("outbound") {
		if err := benchOutbound(ctx, o, work, ks); err != nil {
			return err
		}
	}
	if want("idle") {
		// Each session is a socket on both sides: the limit is raised
		// here, for this process and the runtime it starts, not in the
		// product.
		if err := loadgen.RaiseFileLimit(uint64(o.idle) + 1024); err != nil {
			return err
		}
		// A fresh process on a fresh state directory, so that its memory
		// is this measurement's alone.
		if err := rt.stop(); err != nil {
			return err
		}
		if rt, err = startRuntime(o.bin, filepath.Join(work, "idle-state")); err != nil {
			return err
		}
		defer rt.stop()
		if err := rt.configure(ctx, ks, []string{idleUser}); err != nil {
			return err
		}
		// Room for every idle session on the listener.
		srv, err := rt.client.Server(ctx)
		if err != nil {
			return err
		}
		srv.MaxConnections = max(srv.MaxConnections, o.idle+100)
		if _, err := rt.client.SetServer(ctx, srv); err != nil {
			return err
		}
		if err := benchIdle(ctx, o, rt, ks); err != nil {
			return err
		}
	}
	fmt.Printf("\nload average at the end: %s\n", loadAverage())
	return nil
}

// testKeystore is the benchmark's certificate, in a PKCS#12 keystore.
type testKeystore struct {
	path   string
	cert   tls.Certificate
	client *tls.Config
	desc   string
}

func makeKeystore(dir, alg string) (*testKeystore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	spec := keystore.KeySpec{Algorithm: alg}
	key, err := keystore.GenerateKey(spec)
	if err != nil {
		return nil, err
	}
	cert, err := keystore.SelfSign(key, keystore.CertificateRequest{
		Subject:     keystore.Subject{CommonName: hostname},
		DNSNames:    []string{hostname},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	})
	if err != nil {
		return nil, err
	}
	ks := &testKeystore{path: filepath.Join(dir, "mail.p12")}
	err = keystore.Update(context.Background(), host.LocalFile(ks.path), []byte(keystorePassword), keystore.PKCS12, func(k *keystore.Keystore) error {
		return k.SetPrivateKeyEntry("mail", key, []*x509.Certificate{cert}, nil)
	})
	if err != nil {
		return nil, err
	}
	if ks.cert, err = keystore.LoadCertificate(context.Background(), host.LocalFile(ks.path), []byte(keystorePassword), nil, ""); err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	ks.client = &tls.Config{RootCAs: pool, ServerName: hostname}
	ks.desc = map[bool]string{true: "RSA 2048", false: "ECDSA P-256"}[strings.EqualFold(alg, "RSA") || alg == ""]
	return ks, nil
}

// serveBare is the -bare-tls-server mode: a separate process, like the
// runtime, so that both compete for the machine the same way.
func serveBare(path string) error {
	cert, err := keystore.LoadCertificate(context.Background(), host.LocalFile(path), []byte(keystorePassword), nil, "")
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr())
	go func() {
		io.Copy(io.Discard, os.Stdin) // the parent closes stdin to stop us
		ln.Close()
	}()
	return loadgen.ServeBareTLS(ln, cert)
}

// process is a child process: the runtime or the bare TLS server.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// mailRuntime is the runtime executable serving a state directory.
type mailRuntime struct {
	process
	dir       string
	client    *control.Client
	listeners map[string]config.Listener
	stopOnce  sync.Once
	stopErr   error
}

func startRuntime(bin, dir string) (*mailRuntime, error) {
	if _, err := os.Stat(filepath.Join(dir, statedir.ConfigFile)); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		doc := &config.Document{Server: config.Server{Hostname: hostname, Domains: []string{"example.com"}}}
		if err := statedir.Local(dir).Create(context.Background(), doc); err != nil {
			return nil, err
		}
	}
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(dir), "runtime.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	rt := &mailRuntime{dir: dir, client: statedir.Local(dir).Client()}
	rt.cmd = exec.Command(bin, "runtime", "serve", "--state-dir", dir)
	rt.cmd.Stdout, rt.cmd.Stderr = logf, logf
	if err := rt.cmd.Start(); err != nil {
		return nil, err
	}
	rt.exited = make(chan struct{})
	go func() { rt.cmd.Wait(); close(rt.exited) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := rt.client.Status(context.Background())
		if err == nil && st.PID == rt.pid() {
			return rt, nil
		}
		select {
		case <-rt.exited:
			return nil, fmt.Errorf("the runtime exited during start-up; see %s", logf.Name())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			rt.cmd.Process.Kill()
			return nil, errors.New("the runtime did not answer within 15s")
		}
	}
}

// stop sends SIGTERM and waits.
func (rt *mailRuntime) stop() error {
	rt.stopOnce.Do(func() {
		rt.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-rt.exited:
		case <-time.After(60 * time.Second):
			rt.cmd.Process.Kill()
			<-rt.exited
			rt.stopErr = errors.New("the runtime did not stop within 60s of SIGTERM")
		}
	})
	return rt.stopErr
}

func recipient(i int) string { return fmt.Sprintf("rcpt%02d@example.com", i) }

const (
	fetchUser = "fetch@example.com"
	idleUser  = "idle@example.com"
)

// allUsers are the users the SMTP and FETCH measurements use.
func allUsers() []string {
	users := []string{fetchUser}
	for i := range smtpRecipients {
		users = append(users, recipient(i))
	}
	return users
}

// configure creates users and the smtp (STARTTLS), smtps (and the same
// without session tickets) and imaps listeners.
func (rt *mailRuntime) configure(ctx context.Context, ks *testKeystore, users []string) error {
	for _, u := range users {
		if _, err := rt.client.PutUser(ctx, u, control.UserRequest{Password: userPassword}); err != nil {
			return err
		}
	}
	tlsFor := func(mode string) config.TLS {
		return config.TLS{Mode: mode, KeystorePath: ks.path, KeystorePassword: keystorePassword}
	}
	// smtps is an MX port, where tickets are off unless set: on here, as
	// on the other protocols, so that resumption can be measured; and off
	// on a second port, to see what they save.
	on, off := true, false
	withTickets, noTickets := tlsFor(config.TLSImplicit), tlsFor(config.TLSImplicit)
	withTickets.SessionTickets, noTickets.SessionTickets = &on, &off
	rt.listeners = map[string]config.Listener{
		"smtp":            {Protocol: config.ProtocolSMTP, TLS: tlsFor(config.TLSStartTLS)},
		"smtps":           {Protocol: config.ProtocolSMTP, TLS: withTickets},
		"smtps-notickets": {Protocol: config.ProtocolSMTP, TLS: noTickets},
		"imaps":           {Protocol: config.ProtocolIMAP, TLS: tlsFor(config.TLSImplicit)},
	}
	for id, l := range rt.listeners {
		if err := rt.addListener(ctx, id, l); err != nil {
			return err
		}
	}
	return nil
}

func (rt *mailRuntime) addr(id string) string {
	l := rt.listeners[id]
	if l.Port == 0 { // a restarted runtime: read them back
		obj, err := rt.client.Listener(context.Background(), id)
		if err == nil {
			l = obj.Config
		}
	}
	return l.Addr()
}

// cpuMeter measures the CPU time a process and the load generator spend.
type cpuMeter struct {
	pid          int
	server, self time.Duration
}

func meter(pid int) *cpuMeter {
	c, _ := loadgen.ProcessCPU(pid)
	return &cpuMeter{pid: pid, server: c, self: loadgen.SelfCPU()}
}

// perOp returns µs of server and load generator CPU per op.
func (m *cpuMeter) perOp(ops int64) (server, self float64) {
	if ops == 0 {
		return 0, 0
	}
	c, _ := loadgen.ProcessCPU(m.pid)
	return float64((c - m.server).Microseconds()) / float64(ops), float64((loadgen.SelfCPU() - m.self).Microseconds()) / float64(ops)
}

func benchSMTP(ctx context.Context, o options, stores []*storeRuntime, ks *testKeystore) error {
	fmt.Printf("\n### SMTP deliveries (durable before 250: fsync in the embedded store, a synchronous commit in PostgreSQL; each client one connection, many messages)\n\n")
	storeHeader(stores, "TLS | size | clients")
	rcpts := make([]string, smtpRecipients)
	for i := range rcpts {
		rcpts[i] = recipient(i)
	}
	for _, mode := range []string{"starttls", "implicit"} {
		id := map[string]string{"starttls": "smtp", "implicit": "smtps"}[mode]
		for _, size := range []int{1 << 10, 100 << 10} {
			for _, clients := range []int{1, 32} {
				var row storeRow
				for _, st := range stores {
					m := meterStore(st)
					r, err := loadgen.RunSMTP(ctx, loadgen.SMTPLoad{
						Addr: st.rt.addr(id), TLS: ks.client, Implicit: mode == "implicit",
						Size: size, Clients: clients, Recipients: rcpts, Duration: o.duration,
					})
					if err != nil {
						return fmt.Errorf("SMTP %s %d KiB %d clients (%s store): %w", mode, size>>10, clients, st.name, err)
					}
					row.add(m, r)
				}
				row.print(stores, fmt.Sprintf("%s | %d KiB | %d", mode, size>>10, clients))
			}
		}
	}
	return nil
}

func benchHandshakes(ctx context.Context, o options, rt *mailRuntime, ks *testKeystore) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	bare := exec.Command(exe, "-bare-tls-server", ks.path)
	stdin, _ := bare.StdinPipe()
	stdout, _ := bare.StdoutPipe()
	bare.Stderr = os.Stderr
	if err := bare.Start(); err != nil {
		return err
	}
	defer func() { stdin.Close(); bare.Wait() }()
	var bareAddr string
	if _, err := fmt.Fscanln(stdout, &bareAddr); err != nil {
		return fmt.Errorf("starting the bare TLS server: %w", err)
	}

	counts, err := parseCounts(o.hsClients)
	if err != nil {
		return err
	}
	type cell struct {
		target, kind string
		clients      int
	}
	rates := map[cell][]float64{}
	cpus := map[cell][]float64{}
	resumedShare := map[cell]float64{}
	type target struct {
		name, addr string
		pid        int
		kinds      []string // the kinds it is measured for; nil: all
	}
	targets := []target{
		{"runtime listener (smtps)", rt.addr("smtps"), rt.pid(), nil},
		{"bare crypto/tls", bareAddr, bare.Process.Pid, nil},
		// Clients that would resume, against a listener with
		// session_tickets = false: full handshakes, and what tickets save.
		{"runtime listener, session_tickets = false", rt.addr("smtps-notickets"), rt.pid(), []string{"resumed"}},
	}
	kinds := strings.Split(o.kinds, ",")
	// measure runs the loads against tgs at the same time, so that each
	// sees the machine as the others do: the ratios then hold even while
	// other work shares the CPUs.
	measure := func(kind string, clients int, tgs ...target) error {
		var wg sync.WaitGroup
		errs := make([]error, len(tgs))
		results := make([]loadgen.Result, len(tgs))
		meters := make([]*cpuMeter, len(tgs))
		for i, tg := range tgs {
			cfg := ks.client.Clone()
			if kind == "resumed" {
				cfg.ClientSessionCache = tls.NewLRUClientSessionCache(clients)
			}
			meters[i] = meter(tg.pid)
			wg.Go(func() {
				results[i], errs[i] = loadgen.RunHandshakes(ctx, loadgen.HandshakeLoad{Addr: tg.addr, TLS: cfg, Clients: clients, Duration: o.duration})
			})
		}
		wg.Wait()
		for i, tg := range tgs {
			if errs[i] != nil {
				return fmt.Errorf("handshakes with %s: %w", tg.name, errs[i])
			}
			c := cell{tg.name, kind, clients}
			srv, _ := meters[i].perOp(results[i].Ops)
			rates[c] = append(rates[c], results[i].PerSecond())
			cpus[c] = append(cpus[c], srv)
			resumedShare[c] = float64(results[i].Resumed) / float64(max(results[i].Ops, 1))
		}
		return nil
	}
	for range o.reps {
		for _, clients := range counts {
			for _, kind := range kinds {
				for _, tg := range []target{targets[0], targets[2]} {
					if tg.kinds != nil && !slices.Contains(tg.kinds, kind) {
						continue
					}
					pair := []target{tg, targets[1]}
					if !o.sideBySide {
						if err := measure(kind, clients, pair[0]); err != nil {
							return err
						}
						pair = pair[1:]
					}
					if err := measure(kind, clients, pair...); err != nil {
						return err
					}
				}
			}
		}
	}
	how := "each run side by side with bare crypto/tls (both loaded at once)"
	if !o.sideBySide {
		how = "alternating runs"
	}
	fmt.Printf("\n### TLS handshakes (%s, TLS 1.3, median of %d runs of %s, %s; load average now %s)\n\n", ks.desc, o.reps, o.duration, how, loadAverage())
	fmt.Println("| handshake | clients | server | handshakes/s | vs bare | server CPU µs/handshake | CPU vs bare | resumed |")
	fmt.Println("|---|---:|---|---:|---:|---:|---:|---:|")
	for _, kind := range kinds {
		for _, clients := range counts {
			base := cell{targets[1].name, kind, clients}
			for _, tg := range targets {
				c := cell{tg.name, kind, clients}
				if len(rates[c]) == 0 {
					continue
				}
				rate, cpu := median(rates[c]), median(cpus[c])
				fmt.Printf("| %s | %d | %s | %.0f | %+.1f %% | %.0f | %+.1f %% | %.0f %% |\n", kind, clients, tg.name, rate,
					100*(rate/median(rates[base])-1), cpu, 100*(cpu/median(cpus[base])-1), 100*resumedShare[c])
			}
		}
	}
	return nil
}

// parseCounts reads a comma-separated list of positive numbers.
func parseCounts(list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q: want positive numbers separated by commas", list)
		}
		out = append(out, n)
	}
	return out, nil
}

// benchDovecot compares full handshakes on one mailstack port that holds
// an RSA 2048 and an ECDSA P-256 certificate for the same name with
// Dovecot serving the RSA one, the way Dovecot is usually set up (in its
// high-performance mode, the stronger peer, and with Debian's defaults): an
// ECDSA-capable client (TLS 1.3) and an RSA-only one (TLS 1.2, ECDHE-RSA)
// against mailstack, the ECDSA-capable one against Dovecot. Every client
// offers only X25519, which Dovecot's OpenSSL 3.0 and crypto/tls share,
// so that the key exchange costs the same and the signature makes the
// difference. Dovecot's CPU is its whole process tree's (a login process
// per connection).
func benchDovecot(ctx context.Context, o options, rt *mailRuntime, work string) error {
	if _, err := exec.LookPath("dovecot"); err != nil {
		fmt.Println("\n### Full handshakes against Dovecot: skipped, dovecot is not installed (Debian: apt-get install dovecot-imapd)")
		return nil
	}
	counts, err := parseCounts(o.hsClients)
	if err != nil {
		return err
	}
	rsa, err := makeKeystore(filepath.Join(work, "dual-rsa"), "RSA")
	if err != nil {
		return err
	}
	ec, err := makeKeystore(filepath.Join(work, "dual-ec"), "ECDSA")
	if err != nil {
		return err
	}
	dual := config.Listener{Protocol: config.ProtocolIMAP, Address: "127.0.0.1", TLS: config.TLS{
		Mode: config.TLSImplicit, KeystorePath: rsa.path, KeystorePassword: keystorePassword,
		Certificates: []config.Certificate{{KeystorePath: ec.path, KeystorePassword: keystorePassword}},
	}}
	if err := rt.addListener(ctx, "imaps-dual", dual); err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(rsa.cert.PrivateKey)
	if err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rsa.cert.Certificate[0]})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	dcDefault, err := loadgen.StartDovecot(filepath.Join(work, "dovecot"), certPEM, keyPEM, false)
	if err != nil {
		return err
	}
	defer dcDefault.Stop()
	dcFast, err := loadgen.StartDovecot(filepath.Join(work, "dovecot-fast"), certPEM, keyPEM, true)
	if err != nil {
		return err
	}
	defer dcFast.Stop()

	pool := x509.NewCertPool()
	pool.AddCert(rsa.cert.Leaf)
	pool.AddCert(ec.cert.Leaf)
	modern := &tls.Config{RootCAs: pool, ServerName: hostname, CurvePreferences: []tls.CurveID{tls.X25519}}
	rsaOnly := &tls.Config{RootCAs: pool, ServerName: hostname, CurvePreferences: []tls.CurveID{tls.X25519},
		MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}
	type target struct {
		name, client, addr string
		cfg                *tls.Config
		cpu                func() (time.Duration, error)
		leaf               *x509.Certificate
	}
	procCPU := func() (time.Duration, error) { return loadgen.ProcessCPU(rt.pid()) }
	treeCPU := func(d *loadgen.Dovecot) func() (time.Duration, error) {
		return func() (time.Duration, error) { return loadgen.TreeCPU(d.PID()) }
	}
	targets := []target{
		{"Dovecot 2.3, high-performance mode (RSA 2048)", "TLS 1.3", dcFast.Addr, modern, treeCPU(dcFast), rsa.cert.Leaf},
		{"Dovecot 2.3, Debian's defaults (RSA 2048)", "TLS 1.3", dcDefault.Addr, modern, treeCPU(dcDefault), rsa.cert.Leaf},
		{"mailstack (RSA + ECDSA)", "TLS 1.3, ECDSA-capable", rt.addr("imaps-dual"), modern, procCPU, ec.cert.Leaf},
		{"mailstack (RSA + ECDSA)", "TLS 1.2, RSA only", rt.addr("imaps-dual"), rsaOnly, procCPU, rsa.cert.Leaf},
	}
	for _, tg := range targets {
		// Each client gets the certificate it should.
		if err := checkServed(ctx, tg.addr, tg.cfg, tg.leaf); err != nil {
			return fmt.Errorf("%s, %s client: %w", tg.name, tg.client, err)
		}
	}
	type cell struct {
		i, clients int
	}
	rates, cpus, ratios := map[cell][]float64{}, map[cell][]float64{}, map[cell][]float64{}
	// Each of the others runs side by side with Dovecot's high-performance
	// mode, so that both see the same machine; its ratio is taken from
	// that run.
	run := func(clients int, idx ...int) error {
		var wg sync.WaitGroup
		res := make([]loadgen.Result, len(idx))
		errs := make([]error, len(idx))
		before := make([]time.Duration, len(idx))
		for k, i := range idx {
			tg := targets[i]
			if before[k], errs[k] = tg.cpu(); errs[k] != nil {
				return errs[k]
			}
			wg.Go(func() {
				res[k], errs[k] = loadgen.RunHandshakes(ctx, loadgen.HandshakeLoad{Addr: tg.addr, TLS: tg.cfg, Clients: clients, Duration: o.duration})
			})
		}
		wg.Wait()
		for k, i := range idx {
			tg := targets[i]
			if errs[k] != nil {
				return fmt.Errorf("handshakes with %s: %w", tg.name, errs[k])
			}
			after, _ := tg.cpu()
			c := cell{i, clients}
			rates[c] = append(rates[c], res[k].PerSecond())
			cpus[c] = append(cpus[c], float64((after-before[k]).Microseconds())/float64(max(res[k].Ops, 1)))
			ratios[c] = append(ratios[c], res[k].PerSecond()/max(res[0].PerSecond(), 1))
		}
		return nil
	}
	for range o.reps {
		for _, clients := range counts {
			for i := 1; i < len(targets); i++ {
				if err := run(clients, 0, i); err != nil {
					return err
				}
			}
		}
	}
	fmt.Printf("\n### Full handshakes against Dovecot (X25519, median of %d runs of %s, each side by side with Dovecot's high-performance mode; load average now %s)\n\n", o.reps, o.duration, loadAverage())
	fmt.Println("| clients | server | client | certificate served | handshakes/s | vs Dovecot (high-performance), same run | server CPU µs/handshake |")
	fmt.Println("|---:|---|---|---|---:|---:|---:|")
	for _, clients := range counts {
		for i, tg := range targets {
			c := cell{i, clients}
			fmt.Printf("| %d | %s | %s | %s | %.0f | %.2fx | %.0f |\n", clients, tg.name, tg.client, keyName(tg.leaf), median(rates[c]), median(ratios[c]), median(cpus[c]))
		}
	}
	return nil
}

// checkServed handshakes once and checks the certificate the server sent.
func checkServed(ctx context.Context, addr string, cfg *tls.Config, want *x509.Certificate) error {
	c, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if got := c.(*tls.Conn).ConnectionState().PeerCertificates[0]; !got.Equal(want) {
		return fmt.Errorf("served the %s certificate, not the %s one", keyName(got), keyName(want))
	}
	return nil
}

func keyName(c *x509.Certificate) string {
	if c.PublicKeyAlgorithm == x509.ECDSA {
		return "ECDSA P-256"
	}
	return "RSA 2048"
}

// addListener adds listener id on a free loopback port.
func (rt *mailRuntime) addListener(ctx context.Context, id string, l config.Listener) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	l.Address, l.Port = "127.0.0.1", ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if _, err := rt.client.PutListener(ctx, id, l); err != nil {
		return err
	}
	rt.listeners[id] = l
	return nil
}

func benchFetch(ctx context.Context, o options, stores []*storeRuntime, ks *testKeystore) error {
	for _, st := range stores {
		_, err := loadgen.RunSMTP(ctx, loadgen.SMTPLoad{
			Addr: st.rt.addr("smtps"), TLS: ks.client, Implicit: true, Size: 1 << 10,
			Clients: 8, Recipients: []string{fetchUser}, Messages: fetchMessages,
		})
		if err != nil {
			return fmt.Errorf("filling the FETCH mailbox (%s store): %w", st.name, err)
		}
	}
	fmt.Printf("\n### IMAP FETCH over implicit TLS (INBOX of %d messages of 1 KiB; UID FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[]))\n\n", fetchMessages)
	storeHeader(stores, "sessions")
	for _, clients := range []int{1, 4} {
		var row storeRow
		for _, st := range stores {
			m := meterStore(st)
			r, err := loadgen.RunFetch(ctx, loadgen.FetchLoad{Addr: st.rt.addr("imaps"), TLS: ks.client, User: fetchUser, Password: userPassword, Clients: clients, Duration: o.duration})
			if err != nil {
				return fmt.Errorf("FETCH (%s store): %w", st.name, err)
			}
			row.add(m, r)
		}
		row.print(stores, fmt.Sprint(clients))
	}
	return nil
}

func benchIdle(ctx context.Context, o options, rt *mailRuntime, ks *testKeystore) error {
	before, err := loadgen.ProcessMemory(rt.pid())
	if err != nil {
		return err
	}
	sessions := make([]*loadgen.IMAPSession, o.idle)
	defer func() {
		for _, s := range sessions {
			if s != nil {
				s.Close()
			}
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, o.idle)
	next := make(chan int)
	for range max(o.idleParallel, 1) {
		wg.Go(func() {
			for i := range next {
				s, err := loadgen.LoginIMAP(ctx, rt.addr("imaps"), ks.client, idleUser, userPassword)
				if err == nil {
					err = s.Idle()
				}
				if err != nil {
					errs <- fmt.Errorf("idle session %d: %w", i, err)
					continue
				}
				sessions[i] = s
			}
		})
	}
	for i := range sessions {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	setup := time.Since(start)
	time.Sleep(5 * time.Second)
	soon, err := loadgen.ProcessMemory(rt.pid())
	if err != nil {
		return err
	}
	// Every login ran an argon2id check (store.DefaultArgon2); its memory
	// is garbage now but stays resident until a collection and the
	// scavenger return it, which an idle process does after Go's forced
	// collection (every 2 minutes).
	later := soon
	if o.settle > 0 {
		time.Sleep(o.settle)
		if later, err = loadgen.ProcessMemory(rt.pid()); err != nil {
			return err
		}
	}
	st, err := rt.client.Status(ctx)
	if err != nil {
		return err
	}
	mib := func(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }
	fmt.Printf("\n### %d idle IMAP sessions over implicit TLS (logged in, INBOX selected, IDLE; logins %d at a time took %s)\n\n",
		o.idle, o.idleParallel, setup.Round(100*time.Millisecond))
	fmt.Println("| RSS (anonymous) | before | 5 s after the logins | after " + o.settle.String() + " idle | per session (idle) | peak (VmHWM) | open connections |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|")
	fmt.Printf("| total | %s | %s | %s | %.1f KiB | %s | %d |\n", mib(before.RSS), mib(soon.RSS), mib(later.RSS),
		float64(later.RSS-before.RSS)/float64(o.idle), mib(later.Peak), st.Listeners["imaps"].OpenConnections)
	fmt.Printf("| anonymous (heap, stacks) | %s | %s | %s | %.1f KiB | | |\n", mib(before.Anon), mib(soon.Anon), mib(later.Anon),
		float64(later.Anon-before.Anon)/float64(o.idle))
	fmt.Printf("| PSS (smaps_rollup) | %s | %s | %s | %.1f KiB | | |\n", mib(before.PSS), mib(soon.PSS), mib(later.PSS),
		float64(later.PSS-before.PSS)/float64(o.idle))
	return nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func printMachine(o options) {
	model := "unknown"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	var uts syscall.Utsname
	syscall.Uname(&uts)
	kernel := strings.TrimRight(string(int8sToBytes(uts.Release[:])), "\x00")
	fmt.Printf("machine: %d CPUs (%s), Linux %s, %s, load average at the start: %s\n",
		goruntime.NumCPU(), model, kernel, goruntime.Version(), loadAverage())
	fmt.Printf("certificate: %s; each measurement %s; runtime and load generator on the same machine\n", map[bool]string{true: "RSA 2048", false: "ECDSA P-256"}[strings.EqualFold(o.key, "RSA")], o.duration)
}

func int8sToBytes(s []int8) []byte {
	b := make([]byte, len(s))
	for i, c := range s {
		b[i] = byte(c)
	}
	return b
}

func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
