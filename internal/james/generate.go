package james

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

// Names of the files [Generate] writes.
const (
	MainFile    = "main.tf"
	SecretsFile = "james.auto.tfvars"
	ignoreFile  = ".gitignore"
)

// Options tune what [Generate] writes.
type Options struct {
	// Hostname is the server's hostname (greeting, EHLO). "" means the
	// <helloName autodetect="false"> of the server blocks, else
	// LocalHostname.
	Hostname string
	// LocalHostname is what James's autodetect would find: the name of the
	// machine the command runs on.
	LocalHostname string
	// Binds maps a bind address of the XML ("0.0.0.0:25") to the address
	// the listener binds instead ("127.0.0.1:2525"). Every key must be the
	// bind of an enabled block.
	Binds map[string]string
	// HostConfDir is where the conf directory is on the host that the
	// configuration manages; "" means where it is read from.
	HostConfDir string
	// Command is the command line, recorded in the header.
	Command string
	// Now is when certificates are judged (renewal notes).
	Now time.Time
}

// File is one generated file.
type File struct {
	Name string
	Data []byte
	Mode fs.FileMode
}

// listener is one mailstack_listener to write.
type listener struct {
	name     string
	server   *Server
	protocol string
	from, to Bind
	mode     string
	ks       *Keystore // the keystore served, or
	pem      *pemPair  // the PEM files served; both nil without TLS
}

// generation holds what Generate works out before it renders anything.
type generation struct {
	conf      *Conf
	opts      Options
	hostname  string
	hostFrom  string // where hostname came from, for its variable
	listeners []*listener
	keystores []*Keystore
	ksNames   map[*Keystore]string
	notes     []string // blocks without listeners, one line each
	extra     map[*Server][]Note
	domains   []string
	maxConns  int
	maxBytes  int64
}

// Generate renders the Terraform configuration that takes the James
// server c over: main.tf, the secrets file (mode 0600), a .gitignore that
// keeps it out of git, and the CA chains of CA-signed keystores. It opens
// every keystore an enabled TLS block names with its <secret> and fails,
// naming the block and file, if one does not open. Nothing is written.
func Generate(c *Conf, opts Options) ([]File, error) {
	g := &generation{conf: c, opts: opts, ksNames: map[*Keystore]string{}, extra: map[*Server][]Note{}}
	if err := g.plan(); err != nil {
		return nil, err
	}
	files := []File{
		{Name: MainFile, Data: g.mainTF(), Mode: 0o644},
		{Name: ignoreFile, Data: []byte(SecretsFile + "\n.terraform/\n*.tfstate\n*.tfstate.*\n"), Mode: 0o644},
	}
	if len(g.keystores) > 0 {
		files = append(files, File{Name: SecretsFile, Data: g.secrets(), Mode: 0o600})
	}
	for _, k := range g.keystores {
		if k.Adopt && !keystore.IsSelfSigned(k.Chain[0]) {
			files = append(files, File{Name: g.chainFile(k), Data: keystore.EncodeCertificatesPEM(k.Chain), Mode: 0o644})
		}
	}
	return files, nil
}

// plan works out the listeners, keystores and server settings.
func (g *generation) plan() error {
	unused := map[string]bool{}
	for from := range g.opts.Binds {
		unused[from] = true
	}
	byPath := map[string]*Keystore{}
	taken := map[string]bool{}
	for _, s := range g.conf.Servers {
		binds := bindList(s.Binds)
		switch {
		case !s.Enabled:
			g.blockNote(s, binds, `enabled="false": James does not listen there, so no listener is generated`)
			continue
		case s.Kind == "lmtpserver":
			g.blockNote(s, binds, "mailstack has no LMTP listener: deliver over SMTP instead, or keep James's LMTP")
			continue
		}
		if t := s.TLS; t != nil && !t.On() && (t.Keystore != "" || t.PrivateKey != "") {
			g.extra[s] = append(g.extra[s], Note{Setting: `<tls socketTLS="false" startTLS="false">`,
				Why: `James serves no TLS on this port, so the listener has tls.mode = "none" and the block's certificate is not used (consider mode = "starttls")`})
		}
		var ks *Keystore
		var pem *pemPair
		var err error
		switch {
		case s.TLS.On() && s.TLS.Keystore != "":
			ks, err = g.keystoreOf(s, byPath)
		case s.TLS.On():
			pem, err = g.pemOf(s)
		}
		if err != nil {
			return err
		}
		for _, b := range s.Binds {
			l := &listener{server: s, protocol: protocolOf(s), from: b, to: b, mode: modeOf(s.TLS), ks: ks, pem: pem}
			if to, ok := g.opts.Binds[b.String()]; ok {
				mapped, err := parseBinds(to)
				if err != nil || len(mapped) != 1 {
					return fmt.Errorf("-bind %s=%s: want one IP address:port after '=': %v", b, to, err)
				}
				l.to = mapped[0]
				delete(unused, b.String())
			}
			base := s.JMXName
			if base == "" || len(s.Binds) > 1 {
				base = fmt.Sprintf("%s_%d", orDefault(s.JMXName, s.Kind), b.Port)
			}
			l.name = uniqueName(base, taken)
			g.listeners = append(g.listeners, l)
		}
	}
	if len(unused) > 0 {
		var keys []string
		for k := range unused {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return fmt.Errorf("-bind %s: no enabled server block binds that address", strings.Join(keys, ", "))
	}
	seen := map[string]string{}
	for _, l := range g.listeners {
		if other, ok := seen[l.to.String()]; ok {
			return fmt.Errorf("listeners %s and %s would both bind %s", other, l.name, l.to)
		}
		seen[l.to.String()] = l.name
	}
	g.pickServerSettings()
	return nil
}

// blockNote records a server block that yields no listener.
func (g *generation) blockNote(s *Server, binds, why string) {
	g.notes = append(g.notes, fmt.Sprintf("%s (%s): %s.", s.Label(), binds, why))
}

// keystoreOf opens the keystore s names, once per file.
func (g *generation) keystoreOf(s *Server, byPath map[string]*Keystore) (*Keystore, error) {
	file, err := resolvePath(g.conf.Dir, s.TLS.Keystore)
	if err != nil {
		return nil, fmt.Errorf("%s: <keystore>: %w", s.Label(), err)
	}
	if k, ok := byPath[file]; ok {
		if k.Secret != s.TLS.Secret {
			return nil, fmt.Errorf("%s names keystore %s with another <secret> than %s does; James could open it with one of them only",
				s.Label(), file, k.Users[0])
		}
		k.Users = append(k.Users, s.Label())
		return k, nil
	}
	k, err := openKeystore(file, s.TLS.Secret, s.TLS.KeystoreType, s.Label(), g.opts.Now)
	if err != nil {
		return nil, err
	}
	k.Ref, k.HostPath = s.TLS.Keystore, g.hostPath(file)
	byPath[file] = k
	g.keystores = append(g.keystores, k)
	taken := map[string]bool{}
	for _, other := range g.ksNames {
		taken[other] = true
	}
	g.ksNames[k] = uniqueName(filepath.Base(file), taken)
	return k, nil
}

// pemPair is a block's <privateKey> and <certificates>, which listeners
// serve as they are (a tls.certificate block): Terraform adopts no file.
type pemPair struct {
	cert, key string // on the managed host
}

// pemOf checks that the block's PEM files load as a key pair, as James
// would load them.
func (g *generation) pemOf(s *Server) (*pemPair, error) {
	var files [2]string
	for i, ref := range []string{s.TLS.Certificates, s.TLS.PrivateKey} {
		file, err := resolvePath(g.conf.Dir, ref)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Label(), err)
		}
		files[i] = file
	}
	if _, err := keystore.LoadPEMPair(context.Background(), host.LocalFile(files[0]), host.LocalFile(files[1])); err != nil {
		hint := ""
		if s.TLS.Secret != "" {
			hint = "; an encrypted key (<secret>) is not supported: decrypt it with openssl pkey"
		}
		return nil, fmt.Errorf("%s: <certificates>%s</certificates> with <privateKey>%s</privateKey>: %w%s",
			s.Label(), s.TLS.Certificates, s.TLS.PrivateKey, err, hint)
	}
	return &pemPair{cert: g.hostPath(files[0]), key: g.hostPath(files[1])}, nil
}

// hostPath maps a file under the James base directory (the conf
// directory's parent) to the same place on the managed host.
func (g *generation) hostPath(file string) string {
	if g.opts.HostConfDir == "" {
		return file
	}
	rel, err := filepath.Rel(filepath.Dir(g.conf.Dir), file)
	if err != nil || strings.HasPrefix(rel, "..") {
		return file
	}
	return filepath.Join(filepath.Dir(g.opts.HostConfDir), rel)
}

// protocolOf maps a server block to a listener protocol: an SMTP server
// that requires AUTH is a submission service (RFC 6409); one that does not
// is an MX.
func protocolOf(s *Server) string {
	switch s.Kind {
	case "imapserver":
		return config.ProtocolIMAP
	case "pop3server":
		return config.ProtocolPOP3
	}
	if s.AuthRequired {
		return config.ProtocolSubmission
	}
	return config.ProtocolSMTP
}

// modeOf maps <tls socketTLS startTLS> to a TLS mode.
func modeOf(t *TLS) string {
	switch {
	case t == nil || !t.On():
		return config.TLSNone
	case t.SocketTLS:
		return config.TLSImplicit
	}
	return config.TLSStartTLS
}

// pickServerSettings chooses hostname, domains and limits, and notes the
// block settings that do not fit one server.
func (g *generation) pickServerSettings() {
	switch {
	case g.opts.Hostname != "":
		g.hostname, g.hostFrom = g.opts.Hostname, "given with -hostname"
	case g.conf.HelloName != "":
		g.hostname, g.hostFrom = g.conf.HelloName, `the <helloName autodetect="false"> of the server blocks`
	default:
		g.hostname, g.hostFrom = g.opts.LocalHostname, "the name of the machine the import ran on, as James's helloName autodetect would find"
	}
	g.domains = g.conf.Domains
	g.maxConns, g.maxBytes = -1, -1
	conns, sizes := map[int]bool{}, map[int64]bool{}
	for _, l := range g.listeners {
		s := l.server
		if s.ConnectionLimit >= 0 {
			conns[s.ConnectionLimit] = true
		}
		if s.MaxMessageKiB >= 0 {
			sizes[s.MaxMessageKiB] = true
		}
	}
	if len(conns) == 1 {
		for n := range conns {
			g.maxConns = n
		}
	}
	if len(sizes) == 1 {
		for n := range sizes {
			if n > 0 {
				g.maxBytes = n << 10
			}
		}
	}
	for _, s := range g.servers() {
		if s.ConnectionLimit >= 0 && len(conns) > 1 {
			g.extra[s] = append(g.extra[s], Note{fmt.Sprintf("<connectionLimit>%d</connectionLimit>", s.ConnectionLimit),
				whyNot["connectionLimit"] + " and the blocks disagree: max_connections is left at its default (no limit)"})
		}
		if s.MaxMessageKiB == 0 || (s.MaxMessageKiB > 0 && len(sizes) > 1) {
			g.extra[s] = append(g.extra[s], Note{fmt.Sprintf("<maxmessagesize>%d</maxmessagesize>", s.MaxMessageKiB),
				fmt.Sprintf("%s; 0 (no limit) and disagreeing blocks leave it at mailstack's default, %d bytes", whyNot["maxmessagesize"], config.DefaultMaxMessageBytes)})
		}
	}
}

// servers lists the blocks that yield listeners, once each, in order.
func (g *generation) servers() []*Server {
	var out []*Server
	for _, l := range g.listeners {
		if !slices.Contains(out, l.server) {
			out = append(out, l.server)
		}
	}
	return out
}

func bindList(binds []Bind) string {
	s := make([]string, len(binds))
	for i, b := range binds {
		s[i] = b.String()
	}
	if len(s) == 0 {
		return "no bind"
	}
	return strings.Join(s, ", ")
}

var nonName = regexp.MustCompile(`[^a-z0-9_]+`)

// uniqueName turns s into a Terraform name not in taken ("smtpserver-TLS"
// -> "smtpserver_tls"; a second one gets "_2") and takes it.
func uniqueName(s string, taken map[string]bool) string {
	base := strings.Trim(nonName.ReplaceAllString(strings.ToLower(s), "_"), "_")
	switch {
	case base == "":
		base = "james"
	case base[0] >= '0' && base[0] <= '9':
		base = "james_" + base
	}
	name := base
	for i := 2; taken[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	taken[name] = true
	return name
}

// q quotes s as an HCL string literal (escaping "${" and "%{" too).
func q(s string) string {
	return string(hclwrite.TokensForValue(cty.StringVal(s)).Bytes())
}

// list renders strings as an HCL list.
func list(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = q(s)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// writer accumulates HCL text; Format aligns it at the end.
type writer struct{ bytes.Buffer }

func (w *writer) f(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }

// comment writes text as comment lines that start with prefix ("# ",
// "#     - "), wrapped at about 100 columns, continuation lines indented
// under the text.
func (w *writer) comment(prefix, text string) {
	cont := "#" + strings.Repeat(" ", len(prefix)-1)
	line := prefix
	for i, word := range strings.Fields(text) {
		switch {
		case i == 0:
		case len(line)+1+len(word) > 100:
			w.f("%s", line)
			line = cont
		default:
			line += " "
		}
		line += word
	}
	w.f("%s", line)
}
