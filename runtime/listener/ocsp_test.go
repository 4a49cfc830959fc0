package listener

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

// responder is an OCSP responder on 127.0.0.1 for a testCA: it answers
// every request with status (good, revoked, unknown) valid for validity,
// fails with 503 while down, or holds the request while hang is set.
type responder struct {
	t        *testing.T
	ca       *testCA
	url      string
	requests atomic.Int64

	mu       sync.Mutex
	status   int
	validity time.Duration
	down     bool
	hang     chan struct{} // closed to let hung requests go
}

func newResponder(t *testing.T, ca *testCA) *responder {
	t.Helper()
	r := &responder{t: t, ca: ca, status: ocsp.Good, validity: time.Hour}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.url = "http://" + ln.Addr().String() + "/ocsp"
	srv := &http.Server{Handler: r}
	go srv.Serve(ln)
	t.Cleanup(func() {
		r.set(func(r *responder) {
			if r.hang != nil {
				close(r.hang)
				r.hang = nil
			}
		})
		srv.Close()
	})
	return r
}

func (r *responder) set(f func(*responder)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r)
}

func (r *responder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.requests.Add(1)
	r.mu.Lock()
	status, validity, down, hang := r.status, r.validity, r.down, r.hang
	r.mu.Unlock()
	if hang != nil {
		<-hang
	}
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	body, _ := io.ReadAll(req.Body)
	q, err := ocsp.ParseRequest(body)
	if err != nil {
		w.Write(ocsp.MalformedRequestErrorResponse)
		return
	}
	now := time.Now()
	tmpl := ocsp.Response{Status: status, SerialNumber: q.SerialNumber, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(validity)}
	if status == ocsp.Revoked {
		tmpl.RevokedAt, tmpl.RevocationReason = now.Add(-time.Hour), ocsp.KeyCompromise
	}
	der, err := ocsp.CreateResponse(r.ca.cert, r.ca.cert, tmpl, r.ca.key.(crypto.Signer))
	if err != nil {
		r.t.Errorf("responder: %v", err)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Write(der)
}

// stapled connects with a client that asks for OCSP stapling and returns
// the response it got (nil for none), or the handshake error.
func stapled(t *testing.T, addr string) (*ocsp.Response, error) {
	t.Helper()
	cfg := &tls.Config{ServerName: "mail.example.com", InsecureSkipVerify: true}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: testutil.HangGuard}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	raw := c.ConnectionState().OCSPResponse
	if raw == nil {
		return nil, nil
	}
	resp, err := ocsp.ParseResponse(raw, nil)
	if err != nil {
		t.Fatalf("stapled response does not parse: %v", err)
	}
	return resp, nil
}

// ocspListener serves cert (from a keystore in dir) on a free port, with
// the OCSP cache in dir/ocsp.
func ocspListener(t *testing.T, m *Manager, dir string, cert tls.Certificate) (string, config.Listener) {
	t.Helper()
	file := filepath.Join(dir, "mx.p12")
	writeKeystoreEntry(t, file, "mx", cert)
	port := testutil.FreePort(t)
	l := config.Listener{Protocol: config.ProtocolIMAP, Address: "127.0.0.1", Port: port,
		TLS: config.TLS{Mode: config.TLSImplicit, KeystorePath: file, KeystorePassword: testPassword}}
	apply(t, m, "ocsp", l)
	return fmt.Sprintf("127.0.0.1:%d", port), l
}

func waitStapled(t *testing.T, addr string, status int) *ocsp.Response {
	t.Helper()
	var resp *ocsp.Response
	testutil.Eventually(t, "a stapled "+statusName(status)+" response", func() bool {
		var err error
		resp, err = stapled(t, addr)
		return err == nil && resp != nil && resp.Status == status
	})
	return resp
}

// A certificate that names a responder gets its response stapled, kept on
// disk for the next start (which staples at once, responder down or not),
// and refreshed before it expires.
func TestOCSPStapling(t *testing.T) {
	old := ocspRefreshAt
	t.Cleanup(func() { ocspRefreshAt = old })
	dir := t.TempDir()
	ca := newCA(t, "OCSP Test CA")
	r := newResponder(t, ca)
	cert := ca.issue(t, leafSpec{names: []string{"mail.example.com"}, key: ecdsaKey, ocspURL: r.url})
	opts := Options{OCSPCacheDir: filepath.Join(dir, "ocsp")}
	m, _ := newManager(t, opts)
	addr, l := ocspListener(t, m, dir, cert)
	first := waitStapled(t, addr, ocsp.Good)
	if first.SerialNumber.Cmp(cert.Leaf.SerialNumber) != 0 {
		t.Errorf("stapled the response for serial %s", first.SerialNumber)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "ocsp", "*.ocsp"))
	if len(files) != 1 {
		t.Fatalf("OCSP cache: %v; want one file", files)
	}
	st, _ := m.Status("ocsp")
	if !strings.HasPrefix(st.Certificates[0].OCSP, "good (stapled), valid until ") {
		t.Errorf("status: %q", st.Certificates[0].OCSP)
	}

	// Refreshed before it expires: here, at once.
	ocspRefreshAt = func(*ocsp.Response, time.Time) time.Time { return time.Now().Add(200 * time.Millisecond) }
	m.Remove("ocsp")
	apply(t, m, "ocsp", l)
	before := r.requests.Load()
	testutil.Eventually(t, "a refreshed staple", func() bool {
		resp, err := stapled(t, addr)
		return err == nil && resp != nil && resp.ThisUpdate.After(first.ThisUpdate) && r.requests.Load() > before+1
	})

	// A new runtime with the responder down staples the response on disk
	// from its first handshake on.
	ocspRefreshAt = old
	r.set(func(r *responder) { r.down = true })
	m2, _ := newManager(t, opts)
	port := testutil.FreePort(t)
	l.Port = port
	apply(t, m2, "ocsp", l)
	addr2 := fmt.Sprintf("127.0.0.1:%d", port)
	if resp, err := stapled(t, addr2); err != nil || resp == nil || resp.Status != ocsp.Good {
		t.Errorf("first handshake after a restart with the responder down: %v, %v", resp, err)
	}
}

// A responder that does not answer never holds up a handshake: the
// certificate is served without a staple meanwhile. The responder hangs
// until the test lets it go, after the handshake, so the only end of the
// fetch meanwhile is its own timeout, which the status would report: a
// handshake that waited for the fetch would find the status past "asking
// the responder". No time is measured.
func TestOCSPNeverBlocksHandshakes(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "OCSP Test CA")
	r := newResponder(t, ca)
	hang := make(chan struct{})
	r.set(func(r *responder) { r.hang = hang })
	cert := ca.issue(t, leafSpec{names: []string{"mail.example.com"}, key: ecdsaKey, ocspURL: r.url})
	m, _ := newManager(t, Options{})
	addr, _ := ocspListener(t, m, dir, cert)
	testutil.Eventually(t, "the responder asked", func() bool { return r.requests.Load() > 0 })
	resp, err := stapled(t, addr)
	if err != nil || resp != nil {
		t.Fatalf("while the responder hangs: %v, %v; want a handshake without staple", resp, err)
	}
	st, _ := m.Status("ocsp")
	if st.Certificates[0].OCSP != "no staple yet: asking the responder" {
		t.Errorf("status while asking: %q", st.Certificates[0].OCSP)
	}
	r.set(func(r *responder) { close(r.hang); r.hang = nil })
	waitStapled(t, addr, ocsp.Good)
}

// A must-staple certificate is served only with a good staple: not while
// the responder is down, not when it says revoked; an ordinary
// certificate is served either way, with the revoked response stapled.
func TestOCSPMustStaple(t *testing.T) {
	shortOCSPTimers(t, 100*time.Millisecond)
	dir := t.TempDir()
	ca := newCA(t, "OCSP Test CA")
	r := newResponder(t, ca)
	r.set(func(r *responder) { r.down = true })
	must := ca.issue(t, leafSpec{names: []string{"mail.example.com"}, key: ecdsaKey, ocspURL: r.url, mustStaple: true})
	m, _ := newManager(t, Options{})
	addr, l := ocspListener(t, m, dir, must)
	testutil.Eventually(t, "a failed fetch", func() bool { return r.requests.Load() > 0 })
	if _, err := stapled(t, addr); err == nil {
		t.Fatal("a must-staple certificate was served without a staple")
	}
	st, _ := m.Status("ocsp")
	if st.Certificates[0].Served || st.CertificateFingerprint != "" || !strings.Contains(st.LastError, "must be stapled, so it is not served") {
		t.Errorf("status while unstapled: %+v", st)
	}
	r.set(func(r *responder) { r.down = false })
	waitStapled(t, addr, ocsp.Good)

	r.set(func(r *responder) { r.status = ocsp.Revoked })
	testutil.Eventually(t, "the revoked must-staple certificate withdrawn", func() bool {
		_, err := stapled(t, addr)
		return err != nil
	})

	ordinary := newCA(t, "CA 2")
	r2 := newResponder(t, ordinary)
	r2.set(func(r *responder) { r.status = ocsp.Revoked })
	cert := ordinary.issue(t, leafSpec{names: []string{"mail.example.com"}, key: ecdsaKey, ocspURL: r2.url})
	writeKeystoreEntry(t, l.TLS.KeystorePath, "mx", cert)
	waitStapled(t, addr, ocsp.Revoked)
}

func TestMustStapleExtension(t *testing.T) {
	ca := newCA(t, "CA")
	if mustStaple(ca.issue(t, leafSpec{names: []string{"a"}, key: ecdsaKey}).Leaf) {
		t.Error("an ordinary certificate reads as must-staple")
	}
	if !mustStaple(ca.issue(t, leafSpec{names: []string{"a"}, key: ecdsaKey, mustStaple: true}).Leaf) {
		t.Error("a must-staple certificate reads as ordinary")
	}
}

// shortOCSPTimers makes staples refresh after d and failed fetches retry
// after d, for the test.
func shortOCSPTimers(t *testing.T, d time.Duration) {
	refresh, retry := ocspRefreshAt, ocspRetryAfter
	t.Cleanup(func() { ocspRefreshAt, ocspRetryAfter = refresh, retry })
	ocspRefreshAt = func(*ocsp.Response, time.Time) time.Time { return time.Now().Add(d) }
	ocspRetryAfter = func(int) time.Duration { return d }
}

// The real thing: OpenSSL's OCSP responder (openssl ocsp -index) answers
// for the certificate from its CA database, and openssl s_client -status
// sees the staple; revoked in the database, a must-staple certificate
// stops being served. OpenSSL 3.0's "openssl ocsp -port" binds every
// interface and tests bind loopback only, so a small HTTP server on
// 127.0.0.1 hands each request to "openssl ocsp -index ... -reqin" and
// returns what OpenSSL answers.
func TestOCSPWithOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not on PATH")
	}
	shortOCSPTimers(t, 300*time.Millisecond)
	dir := t.TempDir()
	ca := newCA(t, "OpenSSL OCSP CA")
	caFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	writeAtomically(t, caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}))
	keyDER, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		t.Fatal(err)
	}
	writeAtomically(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	index := filepath.Join(dir, "index.txt")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var served atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, resp := filepath.Join(dir, fmt.Sprintf("req-%d.der", served.Add(1))), filepath.Join(dir, "resp.der")
		if err := os.WriteFile(req, body, 0o600); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		out, err := exec.Command("openssl", "ocsp", "-index", index, "-CA", caFile, "-rsigner", caFile, "-rkey", keyFile,
			"-reqin", req, "-respout", resp, "-nmin", "5").CombinedOutput()
		der, rerr := os.ReadFile(resp)
		if err != nil || rerr != nil {
			t.Logf("openssl ocsp: %v %v\n%s", err, rerr, out)
			http.Error(w, "openssl ocsp failed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(der)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	cert := ca.issue(t, leafSpec{names: []string{"mail.example.com"}, key: ecdsaKey,
		ocspURL: "http://" + ln.Addr().String(), mustStaple: true})
	writeIndex := func(state string) {
		// OpenSSL's CA database: status, expiry, revocation date, serial, file, subject.
		revoked := ""
		if state == "R" {
			revoked = time.Now().Add(-time.Hour).UTC().Format("060102150405Z")
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%X\tunknown\t/CN=mail.example.com\n", state,
			cert.Leaf.NotAfter.UTC().Format("060102150405Z"), revoked, cert.Leaf.SerialNumber)
		writeAtomically(t, index, []byte(line))
	}
	writeIndex("V")

	m, _ := newManager(t, Options{OCSPCacheDir: filepath.Join(dir, "cache")})
	addr, _ := ocspListener(t, m, dir, cert)
	sClient := func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "openssl", "s_client", "-status", "-servername", "mail.example.com", "-connect", addr)
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	var out string
	testutil.Eventually(t, "openssl s_client -status to see a good staple", func() bool {
		out, _ = sClient()
		return strings.Contains(out, "OCSP Response Status: successful") && strings.Contains(out, "Cert Status: good")
	})
	if !strings.Contains(out, fmt.Sprintf("Serial Number: %X", cert.Leaf.SerialNumber)) {
		t.Errorf("the staple is not for the served certificate:\n%s", out)
	}

	writeIndex("R")
	testutil.Eventually(t, "the revoked must-staple certificate withdrawn", func() bool {
		out, err := sClient()
		return err != nil || !strings.Contains(out, "BEGIN CERTIFICATE")
	})
	st, _ := m.Status("ocsp")
	if !strings.Contains(st.LastError, "revoked") || !strings.Contains(st.LastError, "must be stapled") {
		t.Errorf("status after revocation: %q", st.LastError)
	}
}
