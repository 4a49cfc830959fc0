// Package pebbletest runs Pebble, Let's Encrypt's ACME test CA, for tests:
// with pebble-challtestsrv as its DNS resolver answering 127.0.0.1 for
// every name, on free 127.0.0.1 ports, with real challenge validation (no
// PEBBLE_VA_ALWAYS_VALID). Both programs are the go.mod tool dependencies
// (go tool pebble, go tool pebble-challtestsrv), so tests need no network
// beyond the Go module cache. Each Start runs a fresh CA that is killed
// when the test ends.
//
// Point an ACME keystore at it with DirectoryURL, CACertificatesPEM =
// HTTPSRootPEM and challenge_address 127.0.0.1:HTTPPort (http-01) or
// 127.0.0.1:TLSPort (tls-alpn-01): Pebble validates every domain there.
package pebbletest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

var tools struct {
	once                 sync.Once
	pebble, challtestsrv string
	err                  error
}

// binaries returns the paths of the pebble and pebble-challtestsrv tool
// executables, built (once, into the Go build cache) by go tool -n.
func binaries() (pebble, challtestsrv string, err error) {
	tools.once.Do(func() {
		for _, tool := range []struct {
			name string
			path *string
		}{{"pebble", &tools.pebble}, {"pebble-challtestsrv", &tools.challtestsrv}} {
			out, err := exec.Command("go", "tool", "-n", tool.name).Output()
			if err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					err = fmt.Errorf("%w: %s", err, ee.Stderr)
				}
				tools.err = fmt.Errorf("go tool -n %s (a go.mod tool dependency): %w", tool.name, err)
				return
			}
			*tool.path = strings.TrimSpace(string(out))
		}
	})
	return tools.pebble, tools.challtestsrv, tools.err
}

// Options configure one Pebble. The zero value is Pebble as Let's
// Encrypt runs it: 90-day certificates, no blocked names, no EAB.
type Options struct {
	// Validity is the certificates' lifetime, whole seconds; zero means
	// Pebble's 90 days.
	Validity time.Duration
	// Blocklist is Pebble's domainBlocklist: names (and their subdomains)
	// it refuses with urn:ietf:params:acme:error:rejectedIdentifier.
	Blocklist []string
	// EAB makes external account binding required, with these key ids and
	// their base64url MAC keys.
	EAB map[string]string
}

// Pebble is one running Pebble.
type Pebble struct {
	// DirectoryURL is the ACME directory.
	DirectoryURL string
	// HTTPSRootPEM is the root of Pebble's own HTTPS certificate: what
	// ca_certificates_pem must hold.
	HTTPSRootPEM string
	// HTTPPort and TLSPort are where Pebble validates http-01 and
	// tls-alpn-01 challenges on 127.0.0.1.
	HTTPPort, TLSPort int

	mgmt   string
	client *http.Client
	// Stop kills Pebble before the test ends.
	Stop func()
}

// Start starts challtestsrv and Pebble and waits until Pebble answers;
// both are killed when the test ends.
func Start(t testing.TB, opts Options) *Pebble {
	t.Helper()
	pebbleBin, challtestsrvBin, err := binaries()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rootPEM, certPEM, keyPEM := httpsCertificates(t)
	writeFile(t, filepath.Join(dir, "cert.pem"), certPEM)
	writeFile(t, filepath.Join(dir, "key.pem"), keyPEM)

	ports := testutil.FreePorts(t, 5)
	listen, mgmt, dns := ports[0], ports[1], ports[2]
	p := &Pebble{
		DirectoryURL: fmt.Sprintf("https://127.0.0.1:%d/dir", listen),
		HTTPSRootPEM: string(rootPEM),
		HTTPPort:     ports[3],
		TLSPort:      ports[4],
		mgmt:         fmt.Sprintf("127.0.0.1:%d", mgmt),
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(rootPEM)
	p.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	cfg := map[string]any{
		"listenAddress":           fmt.Sprintf("127.0.0.1:%d", listen),
		"managementListenAddress": p.mgmt,
		"certificate":             filepath.Join(dir, "cert.pem"),
		"privateKey":              filepath.Join(dir, "key.pem"),
		"httpPort":                p.HTTPPort,
		"tlsPort":                 p.TLSPort,
		"keyAlgorithm":            "ecdsa",
		"domainBlocklist":         opts.Blocklist,
	}
	if opts.Validity > 0 {
		cfg["profiles"] = map[string]any{"default": map[string]any{
			"description": "short-lived, for renewal tests", "validityPeriod": int(opts.Validity / time.Second),
		}}
	}
	if opts.EAB != nil {
		cfg["externalAccountBindingRequired"] = true
		cfg["externalAccountMACKeys"] = opts.EAB
	}
	data, err := json.Marshal(map[string]any{"pebble": cfg})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "pebble.json"), data)

	dnsAddr := fmt.Sprintf("127.0.0.1:%d", dns)
	start(t, dir, "challtestsrv", nil, challtestsrvBin,
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "",
		"-dnsserver", dnsAddr, "-management", fmt.Sprintf("127.0.0.1:%d", testutil.FreePorts(t, 1)[0]),
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	// Pebble resolves every challenge's name over TCP at dnsAddr and fails
	// the validation for good if nothing answers there; challtestsrv binds
	// it some time after it starts (long after Pebble answers, on a busy
	// machine).
	waitReady(t, "challtestsrv's DNS server at "+dnsAddr, func() error {
		c, err := net.DialTimeout("tcp", dnsAddr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	p.Stop = start(t, dir, "pebble", []string{
		"PEBBLE_VA_NOSLEEP=1",      // validate at once
		"PEBBLE_WFE_NONCEREJECT=0", // no random badNonce answers
		"PEBBLE_AUTHZREUSE=0",      // every order validates for real
	}, pebbleBin, "-config", filepath.Join(dir, "pebble.json"), "-dnsserver", dnsAddr)

	waitReady(t, "pebble at "+p.DirectoryURL, func() error {
		resp, err := p.client.Get(p.DirectoryURL)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s", resp.Status)
		}
		return nil
	})
	return p
}

// readyTimeout is how long a started program may take to answer: generous,
// for a machine busy with other tests.
const readyTimeout = time.Minute

// waitReady polls ready until it returns nil, and fails the test with its
// last error if that takes longer than readyTimeout.
func waitReady(t testing.TB, what string, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		err := ready()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// IssuerRoots returns the root Pebble issues under, as a pool and as PEM,
// for verifying served chains.
func (p *Pebble) IssuerRoots(t testing.TB) (*x509.CertPool, []byte) {
	t.Helper()
	resp, err := p.client.Get("https://" + p.mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pebble root: %s %v", resp.Status, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatalf("pebble root is not PEM: %q", data)
	}
	return pool, data
}

// start runs bin in its own process group, logging to dir/name.log; the
// group is killed when the test ends (or when the returned stop is
// called), and the log shown if the test failed.
func start(t testing.TB, dir, name string, env []string, bin string, args ...string) (stop func()) {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		})
	}
	t.Cleanup(func() {
		stop()
		logFile.Close()
		if t.Failed() {
			if data, err := os.ReadFile(logPath); err == nil {
				t.Logf("%s log:\n%s", name, tail(string(data), 40))
			}
		}
	})
	return stop
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Addr is 127.0.0.1:port.
func Addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// httpsCertificates makes a root and a certificate for 127.0.0.1 and
// localhost signed by it: Pebble's own HTTPS identity.
func httpsCertificates(t testing.TB) (rootPEM, certPEM, keyPEM []byte) {
	t.Helper()
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	root := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mailstack test ACME HTTPS root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, rootKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ = x509.ParseCertificate(rootDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, root, key.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
