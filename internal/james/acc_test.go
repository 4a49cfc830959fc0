package james

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	tfjson "github.com/hashicorp/terraform-json"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

// The acceptance tests run the command as a James operator would: the
// real provider executable (built once by TestMain) reads a James conf
// directory with keystores made by keytool, and the real terraform binary
// (TF_ACC=1; TF_ACC_TERRAFORM_PATH or terraform/tofu on PATH) plans and
// applies what it wrote, from a local provider mirror. openssl s_client
// then checks every port, keytool every keystore.

// accBin is the provider executable; accCLIConfig the terraform CLI
// configuration that installs it from a local mirror.
var accBin, accCLIConfig string

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	if os.Getenv("TF_ACC") == "" {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "mailstack-james-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	accBin = filepath.Join(dir, "terraform-provider-mailstack")
	build := exec.Command("go", "build", "-o", accBin, "../..")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the provider executable:", err)
		return 1
	}
	// "mailstack/mailstack" is registry.terraform.io's to terraform and
	// registry.opentofu.org's to tofu: the mirror serves both.
	mirror := filepath.Join(dir, "mirror")
	var include []string
	for _, reg := range []string{"registry.terraform.io", "registry.opentofu.org"} {
		plugin := filepath.Join(mirror, reg, "mailstack/mailstack/0.0.1/linux_amd64/terraform-provider-mailstack_v0.0.1")
		if err := os.MkdirAll(filepath.Dir(plugin), 0o755); err == nil {
			err = os.Link(accBin, plugin)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "filling the provider mirror:", err)
			return 1
		}
		include = append(include, strconv.Quote(reg+"/mailstack/mailstack"))
	}
	list := strings.Join(include, ", ")
	accCLIConfig = filepath.Join(dir, "terraformrc")
	rc := fmt.Sprintf("provider_installation {\n  filesystem_mirror {\n    path    = %q\n    include = [%s]\n  }\n  direct {\n    exclude = [%s]\n  }\n}\n", mirror, list, list)
	if err := os.WriteFile(accCLIConfig, []byte(rc), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// accEnv is one acceptance test's folder: the conf directory, the
// generated configuration and the provider's state directory.
type accEnv struct {
	t                   *testing.T
	dir                 string
	conf, out, state    string
	terraform           string
	keystorePasswordEnv string
}

func newAccEnv(t *testing.T) *accEnv {
	t.Helper()
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance test: set TF_ACC=1 (make test does)")
	}
	for _, tool := range []string{"keytool", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not on PATH", tool)
		}
	}
	tf := os.Getenv("TF_ACC_TERRAFORM_PATH")
	for _, name := range []string{"terraform", "tofu"} {
		if tf == "" {
			tf, _ = exec.LookPath(name)
		}
	}
	if tf == "" {
		t.Skip("neither terraform nor tofu on PATH, and TF_ACC_TERRAFORM_PATH unset")
	}
	// Short: the runtime's unix socket path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "msjames-")
	if err != nil {
		t.Fatal(err)
	}
	e := &accEnv{t: t, dir: dir, conf: filepath.Join(dir, "conf"), out: filepath.Join(dir, "tf"),
		state: filepath.Join(dir, "st"), terraform: tf}
	t.Cleanup(func() {
		stopProcessesUnder(t, e.state)
		os.RemoveAll(dir)
	})
	return e
}

// stopProcessesUnder stops every process whose command line names dir
// (the supervisors first, or they would restart their runtimes), so that
// no runtime outlives a test, even one that failed half-way.
func stopProcessesUnder(t *testing.T, dir string) {
	var local host.Local
	entries, _ := os.ReadDir("/proc")
	var supervisors, others []int
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		proc, err := local.Process(context.Background(), pid)
		args := proc.Args
		if err != nil || !proc.Alive || !slices.ContainsFunc(args, func(a string) bool { return a == dir || strings.HasPrefix(a, dir+"/") }) {
			continue
		}
		if slices.Contains(args, "supervise") {
			supervisors = append(supervisors, pid)
		} else {
			others = append(others, pid)
		}
	}
	for _, pid := range append(supervisors, others...) {
		t.Logf("stopping pid %d left under %s", pid, dir)
		_ = local.Stop(pid, 10*time.Second)
	}
}

// run runs a command with env added, in dir, and returns its output; it
// fails the test when the command fails.
func (e *accEnv) run(dir string, env []string, name string, args ...string) string {
	e.t.Helper()
	out, err := e.try(dir, env, name, args...)
	if err != nil {
		e.t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return out
}

func (e *accEnv) try(dir string, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// tf runs terraform in the generated folder with the mirror's CLI config;
// password, when set, is what import reads the keystore with.
func (e *accEnv) tf(password string, args ...string) string {
	e.t.Helper()
	return e.run(e.out, e.tfEnv(password), e.terraform, args...)
}

func (e *accEnv) tfEnv(password string) []string {
	env := []string{"TF_CLI_CONFIG_FILE=" + accCLIConfig, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1",
		"TF_VAR_state_dir=" + e.state}
	if password != "" {
		env = append(env, "MAILSTACK_KEYSTORE_PASSWORD="+password)
	}
	return env
}

// copySet copies a James sample set from testdata into the conf directory.
func (e *accEnv) copySet(set string) {
	copyDir(e.t, filepath.Join("testdata", "james", set), e.conf)
}

// keytool runs keytool; it prints a warning about JKS on stderr, which
// the output keeps.
func (e *accEnv) keytool(args ...string) string {
	e.t.Helper()
	return e.run(e.dir, nil, "keytool", args...)
}

// genkeypair makes a keystore entry the way a James operator does.
func (e *accEnv) genkeypair(file, storetype, password, alias, keyalg, dnsName string) {
	e.t.Helper()
	e.keytool("-genkeypair", "-keystore", file, "-storetype", storetype, "-storepass", password, "-keypass", password,
		"-alias", alias, "-keyalg", keyalg, "-validity", "365", "-dname", "CN="+dnsName+", O=Example, C=FR",
		"-ext", "SAN=dns:"+dnsName)
}

var fingerprintRE = regexp.MustCompile(`SHA-?256\)?: ([0-9A-F:]{95})`)

// fingerprint is what keytool -list says the entry's certificate is.
func (e *accEnv) fingerprint(file, password, alias string) string {
	e.t.Helper()
	m := fingerprintRE.FindStringSubmatch(e.keytool("-list", "-keystore", file, "-storepass", password, "-alias", alias))
	if m == nil {
		e.t.Fatalf("keytool -list %s %s printed no SHA-256 fingerprint", file, alias)
	}
	return m[1]
}

// importJames runs the command on the conf directory.
func (e *accEnv) importJames(args ...string) string {
	e.t.Helper()
	return e.run(e.dir, nil, accBin, append([]string{"james", "import", e.conf, "-out", e.out}, args...)...)
}

// planJSON plans into a file and returns it with terraform's JSON view.
func (e *accEnv) planJSON(password string) (string, *tfjson.Plan) {
	e.t.Helper()
	file := filepath.Join(e.out, "take-over.plan")
	e.tf(password, "plan", "-input=false", "-no-color", "-out", file)
	var plan tfjson.Plan
	if err := json.Unmarshal([]byte(e.tf("", "show", "-json", file)), &plan); err != nil {
		e.t.Fatal(err)
	}
	return file, &plan
}

// expectPlan checks a take-over plan: each keystore in keystores is
// imported with the action given (no-op: adopted as it is), the others
// (imported before) are left alone, everything else is created and nothing
// is deleted.
func (e *accEnv) expectPlan(plan *tfjson.Plan, keystores map[string]tfjson.Action) {
	e.t.Helper()
	for _, rc := range plan.ResourceChanges {
		a := rc.Change.Actions
		switch {
		case rc.Type == "mailstack_keystore":
			want, ok := keystores[rc.Address]
			if !ok {
				// Imported before (a targeted apply): nothing to do.
				if rc.Change.Importing != nil || !a.NoOp() {
					e.t.Errorf("%s: actions %v importing %v; want no-op", rc.Address, a, rc.Change.Importing)
				}
				continue
			}
			if rc.Change.Importing == nil || len(a) != 1 || a[0] != want {
				e.t.Errorf("%s: actions %v importing %v; want an import with %s", rc.Address, a, rc.Change.Importing, want)
			}
			delete(keystores, rc.Address)
		case !a.Create():
			e.t.Errorf("%s: actions %v; want create", rc.Address, a)
		}
	}
	for addr := range keystores {
		e.t.Errorf("%s: not in the plan", addr)
	}
}

// port is a listener the XML declares: where the test bound it and the
// mode it must serve.
type port struct {
	from      string // the XML's bind
	port      int    // where the test maps it on 127.0.0.1
	protocol  string // smtp, imap or pop3 (openssl's -starttls names)
	mode      string
	keystore  string // expected certificate fingerprint; "" without TLS
	greetings string // what the protocol greets with
}

// samplePorts are the listeners of James's distributed samples and demo
// image, each bound on a free loopback port: SMTP on 25 without TLS
// (greeting with greeting), 465 implicit and 587 STARTTLS, IMAP on 143
// STARTTLS and 993 implicit, all serving the certificate fp.
func samplePorts(t *testing.T, fp, greeting string) []port {
	free := testutil.FreePorts(t, 5)
	return []port{
		{"0.0.0.0:25", free[0], "smtp", "none", "", greeting},
		{"0.0.0.0:465", free[1], "smtp", "implicit", fp, ""},
		{"0.0.0.0:587", free[2], "smtp", "starttls", fp, ""},
		{"0.0.0.0:143", free[3], "imap", "starttls", fp, ""},
		{"0.0.0.0:993", free[4], "imap", "implicit", fp, ""},
	}
}

// bindArgs maps every port's XML bind to its loopback port.
func bindArgs(ports []port) []string {
	var args []string
	for _, p := range ports {
		args = append(args, "-bind", fmt.Sprintf("%s=127.0.0.1:%d", p.from, p.port))
	}
	return args
}

// checkPorts checks with openssl that every port serves its certificate in
// its mode: implicit TLS from the first byte (and no greeting in plain
// text), STARTTLS after a plain greeting (and no implicit TLS), or plain
// text without STARTTLS.
func (e *accEnv) checkPorts(ports []port) {
	e.t.Helper()
	for _, p := range ports {
		addr := fmt.Sprintf("127.0.0.1:%d", p.port)
		switch p.mode {
		case "implicit":
			e.expectServed(p, addr, "-connect", addr)
			if greeting := plainGreeting(addr, time.Second); greeting != "" {
				e.t.Errorf("%s (implicit TLS, from %s) greeted a plain-text client: %q", addr, p.from, greeting)
			}
		case "starttls":
			e.expectServed(p, addr, "-starttls", p.protocol, "-connect", addr)
			if out, err := e.sClient("-connect", addr); err == nil {
				e.t.Errorf("%s (STARTTLS, from %s) accepted a TLS handshake on connect:\n%s", addr, p.from, out)
			}
		case "none":
			if greeting := plainGreeting(addr, testutil.HangGuard); !strings.HasPrefix(greeting, p.greetings) {
				e.t.Errorf("%s (no TLS, from %s) greeted %q; want %q", addr, p.from, greeting, p.greetings)
			}
			if out, err := e.sClient("-starttls", p.protocol, "-connect", addr); err == nil {
				e.t.Errorf("%s (no TLS, from %s) took STARTTLS:\n%s", addr, p.from, out)
			}
		}
	}
}

func (e *accEnv) sClient(args ...string) (string, error) {
	return e.try(e.dir, nil, "openssl", append([]string{"s_client", "-servername", "mail.example.test"}, args...)...)
}

// expectServed runs openssl s_client and checks the certificate it got.
func (e *accEnv) expectServed(p port, addr string, args ...string) {
	e.t.Helper()
	out, err := e.sClient(args...)
	if err != nil {
		e.t.Errorf("openssl s_client %s (%s, from %s): %v\n%s", strings.Join(args, " "), p.mode, p.from, err, out)
		return
	}
	var block *pem.Block
	if i := strings.Index(out, "-----BEGIN CERTIFICATE-----"); i >= 0 {
		block, _ = pem.Decode([]byte(out[i:]))
	}
	if block == nil {
		e.t.Errorf("openssl s_client %s printed no certificate:\n%s", addr, out)
		return
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		e.t.Fatal(err)
	}
	if got := keystore.Fingerprint(cert); got != p.keystore {
		e.t.Errorf("%s (%s, from %s) serves %s; the keystore holds %s", addr, p.mode, p.from, got, p.keystore)
	}
}

// plainGreeting connects without TLS and returns the first line the
// server sends within wait, "" for none: a second is enough to see that
// an implicit-TLS port stays silent, but a greeting that is due is waited
// for as long as a loaded machine may take (HangGuard).
func plainGreeting(addr string, wait time.Duration) string {
	c, err := net.DialTimeout("tcp", addr, testutil.HangGuard)
	if err != nil {
		return "dial: " + err.Error()
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 512)
	n, _ := c.Read(buf)
	return strings.TrimSpace(string(buf[:n]))
}

// takeOver is the whole flow on a conf directory: plan (checked by
// expectPlan), apply, every port checked, the keystores' bytes unchanged,
// an empty plan, and the way back the header gives (destroy of the server,
// which takes its listeners with it) that frees the ports and leaves the
// keystores in place.
func (e *accEnv) takeOver(password string, keystores map[string]tfjson.Action, files []string, ports []port) {
	e.t.Helper()
	before := map[string][]byte{}
	for _, f := range files {
		before[f] = readBytes(e.t, f)
	}
	e.tf("", "init", "-input=false", "-no-color")
	planFile, plan := e.planJSON(password)
	e.expectPlan(plan, keystores)
	e.tf(password, "apply", "-input=false", "-no-color", planFile)
	e.checkPorts(ports)
	unchanged := func(when string) {
		for f, b := range before {
			if !bytes.Equal(readBytes(e.t, f), b) {
				e.t.Errorf("%s: keystore %s changed on disk", when, f)
			}
		}
	}
	unchanged("after apply")
	if out, err := e.try(e.out, e.tfEnv(""), e.terraform, "plan", "-input=false", "-no-color", "-detailed-exitcode"); err != nil {
		e.t.Errorf("plan after apply is not empty (%v):\n%s", err, out)
	}
	e.tf("", "destroy", "-input=false", "-no-color", "-auto-approve", "-target=mailstack_server.james")
	unchanged("after destroy")
	for _, p := range ports {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p.port), time.Second); err == nil {
			c.Close()
			e.t.Errorf("port %d (from %s) still open after destroy", p.port, p.from)
		}
	}
}

func readBytes(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The distributed app sample, with the PKCS12 keystore its comment tells
// the operator to make with keytool: one import, five listeners in the
// modes the XML declares, the keystore untouched.
func TestAccJamesImport_distributedApp(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	e.copySet("distributed-app")
	ks := filepath.Join(e.conf, "keystore")
	e.genkeypair(ks, "PKCS12", "james72laBalle", "james", "RSA", "mail.example.test")
	fp := e.fingerprint(ks, "james72laBalle", "james")
	ports := samplePorts(t, fp, "220 mail.example.test")
	e.importJames(append([]string{"-hostname", "mail.example.test"}, bindArgs(ports)...)...)
	e.takeOver("james72laBalle", map[string]tfjson.Action{"mailstack_keystore.keystore": tfjson.ActionNoop}, []string{ks}, ports)
}

// James 3.6.2's sample (no keystoreType: JKS) with an ECDSA key that a CA
// signed, installed by keytool the way the James TLS guide says: the
// keystore is adopted as csr with the chain it holds, and its bytes stay
// as they were.
func TestAccJamesImport_caSignedJKS(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	e.copySet("distributed-3.6.2")
	ks, pw := filepath.Join(e.conf, "keystore"), "james72laBalle"
	ca, caKey, csr, reply := filepath.Join(e.dir, "ca.pem"), filepath.Join(e.dir, "ca.key"), filepath.Join(e.dir, "james.csr"), filepath.Join(e.dir, "reply.pem")
	e.run(e.dir, nil, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", caKey, "-out", ca, "-days", "3650", "-subj", "/CN=Test Root CA")
	e.genkeypair(ks, "JKS", pw, "james", "EC", "mail.example.test")
	e.keytool("-certreq", "-alias", "james", "-file", csr, "-keystore", ks, "-storepass", pw, "-ext", "SAN=dns:mail.example.test")
	e.run(e.dir, nil, "openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", caKey, "-CAcreateserial",
		"-out", reply, "-days", "365", "-copy_extensions", "copy")
	e.keytool("-importcert", "-noprompt", "-trustcacerts", "-alias", "root", "-file", ca, "-keystore", ks, "-storepass", pw)
	e.keytool("-importcert", "-noprompt", "-alias", "james", "-file", reply, "-keystore", ks, "-storepass", pw)
	fp := e.fingerprint(ks, pw, "james")
	ports := samplePorts(t, fp, "220 mx.example.test")
	e.importJames(append([]string{"-hostname", "mx.example.test"}, bindArgs(ports)...)...)
	if _, err := os.Stat(filepath.Join(e.out, "keystore-chain.pem")); err != nil {
		t.Fatalf("no CA chain next to main.tf: %v", err)
	}
	e.takeOver(pw, map[string]tfjson.Action{"mailstack_keystore.keystore": tfjson.ActionNoop}, []string{ks}, ports)
}

// Two keystores with different secrets (one of them holding two keys),
// several binds in one block, an IPv6 loopback bind and POP3: import
// takes one password at a time, so the keystores are adopted by the
// targeted applies the generated header describes, and the rest follows.
func TestAccJamesImport_twoKeystores(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	if c, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skip("no IPv6 loopback")
	} else {
		c.Close()
	}
	free := testutil.FreePorts(t, 4)
	writeFile(t, filepath.Join(e.conf, "smtpserver.xml"), []byte(fmt.Sprintf(`<smtpservers>
  <smtpserver enabled="true">
    <jmxName>mx</jmxName>
    <bind>127.0.0.1:%[1]d, [::1]:%[1]d</bind>
    <tls socketTLS="false" startTLS="true">
      <keystore>file://conf/mx.p12</keystore>
      <keystoreType>PKCS12</keystoreType>
      <secret>mx-secret</secret>
    </tls>
  </smtpserver>
</smtpservers>`, free[0])))
	writeFile(t, filepath.Join(e.conf, "pop3server.xml"), []byte(fmt.Sprintf(`<pop3servers>
  <pop3server enabled="true">
    <bind>127.0.0.1:%d</bind>
    <tls socketTLS="true" startTLS="false">
      <keystore>file://var/pop.jks</keystore>
      <secret>pop-secret</secret>
    </tls>
  </pop3server>
  <pop3server enabled="true">
    <bind>127.0.0.1:%d</bind>
    <tls socketTLS="false" startTLS="true">
      <keystore>file://var/pop.jks</keystore>
      <secret>pop-secret</secret>
    </tls>
  </pop3server>
</pop3servers>`, free[1], free[2])))
	mx, pop := filepath.Join(e.conf, "mx.p12"), filepath.Join(e.dir, "var", "pop.jks")
	if err := os.MkdirAll(filepath.Dir(pop), 0o755); err != nil {
		t.Fatal(err)
	}
	e.genkeypair(mx, "PKCS12", "mx-secret", "mx", "EC", "mail.example.test")
	e.genkeypair(pop, "JKS", "pop-secret", "a-pop", "RSA", "mail.example.test")
	e.genkeypair(pop, "JKS", "pop-secret", "b-pop", "EC", "mail.example.test")
	mxFP, popFP := e.fingerprint(mx, "mx-secret", "mx"), e.fingerprint(pop, "pop-secret", "a-pop")
	ports := []port{
		{fmt.Sprintf("127.0.0.1:%d", free[0]), free[0], "smtp", "starttls", mxFP, ""},
		{fmt.Sprintf("127.0.0.1:%d", free[1]), free[1], "pop3", "implicit", popFP, ""},
		{fmt.Sprintf("127.0.0.1:%d", free[2]), free[2], "pop3", "starttls", popFP, ""},
	}
	e.importJames("-hostname", "mail.example.test")
	main := string(readBytes(t, filepath.Join(e.out, MainFile)))
	for _, step := range []string{"-target=mailstack_keystore.mx_p12", "-target=mailstack_keystore.pop_jks"} {
		if !strings.Contains(main, "terraform apply "+step) {
			t.Errorf("main.tf does not tell to run terraform apply %s:\n%s", step, main)
		}
	}
	before := map[string][]byte{mx: readBytes(t, mx), pop: readBytes(t, pop)}
	e.tf("", "init", "-input=false", "-no-color")
	e.tf("mx-secret", "apply", "-input=false", "-no-color", "-auto-approve", "-target=mailstack_keystore.mx_p12")
	e.tf("pop-secret", "apply", "-input=false", "-no-color", "-auto-approve", "-target=mailstack_keystore.pop_jks")
	_, plan := e.planJSON("")
	e.expectPlan(plan, map[string]tfjson.Action{})
	e.tf("", "apply", "-input=false", "-no-color", "-auto-approve")
	e.checkPorts(ports)
	// The block's second bind, on the IPv6 loopback.
	v6 := fmt.Sprintf("[::1]:%d", free[0])
	e.expectServed(port{from: v6, mode: "starttls", keystore: mxFP}, v6, "-starttls", "smtp", "-connect", v6)
	for f, b := range before {
		if !bytes.Equal(readBytes(t, f), b) {
			t.Errorf("keystore %s changed on disk", f)
		}
	}
	if out, err := e.try(e.out, e.tfEnv(""), e.terraform, "plan", "-input=false", "-no-color", "-detailed-exitcode"); err != nil {
		t.Errorf("plan after apply is not empty (%v):\n%s", err, out)
	}
	e.tf("", "destroy", "-input=false", "-no-color", "-auto-approve", "-target=mailstack_server.james")
}

// James's demo image serves TLS from PEM files (<privateKey>,
// <certificates>): made here by openssl, they are served as they are by
// tls.certificate blocks, in the modes the XML declares, and stay
// untouched.
func TestAccJamesImport_demoPEM(t *testing.T) {
	t.Parallel()
	e := newAccEnv(t)
	e.copySet("demo-pem")
	key, cert := filepath.Join(e.conf, "private.key"), filepath.Join(e.conf, "private.csr")
	e.run(e.dir, nil, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
		"-days", "365", "-subj", "/CN=mail.example.test", "-addext", "subjectAltName=DNS:mail.example.test")
	block, _ := pem.Decode(readBytes(t, cert))
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	fp := keystore.Fingerprint(leaf)
	ports := samplePorts(t, fp, "220 mail.example.test")
	e.importJames(append([]string{"-hostname", "mail.example.test"}, bindArgs(ports)...)...)
	e.takeOver("", map[string]tfjson.Action{}, []string{key, cert}, ports)
}
