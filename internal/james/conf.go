package james

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// serverFiles are the files that declare James's protocol servers, in the
// order the generated configuration lists them.
var serverFiles = []string{"smtpserver.xml", "lmtpserver.xml", "imapserver.xml", "pop3server.xml"}

// domainFile declares James's local domains.
const domainFile = "domainlist.xml"

// Conf is what [Load] read from a James conf directory.
type Conf struct {
	// Dir is the conf directory, absolute.
	Dir string
	// Servers are the server blocks of every server file, enabled or not,
	// in file order.
	Servers []*Server
	// Domains are the local domains of domainlist.xml (its <domainname>s
	// and <defaultDomain>, which James adds to the list at start-up).
	Domains []string
	// HelloName is the <helloName> of the enabled server blocks that set
	// one with autodetect="false"; "" when none does.
	HelloName string
	// Notes are the settings outside any server block that are not carried
	// over (those of domainlist.xml).
	Notes []Note
	// Unread lists the directory's other files, which the command does not
	// translate.
	Unread []string
}

// Server is one <smtpserver>, <lmtpserver>, <imapserver> or <pop3server>
// block.
type Server struct {
	// File is the file's base name, e.g. "smtpserver.xml".
	File string
	// Kind is the element's name, e.g. "smtpserver".
	Kind string
	// Index is the block's position among its file's server blocks, from 1.
	Index int
	// JMXName is the block's <jmxName>, "" if none.
	JMXName string
	// Enabled is the enabled attribute (James's default: true).
	Enabled bool
	// Binds are the addresses of <bind> (a comma-separated list in James).
	Binds []Bind
	// TLS is the <tls> block; nil without one.
	TLS *TLS
	// HelloName is <helloName autodetect="false">; "" when the block lets
	// James use the host's name.
	HelloName string
	// AuthRequired is <auth><required> (James 3.7+) or <authRequired>
	// (before): an SMTP server that requires AUTH is a submission service.
	AuthRequired bool
	// ConnectionLimit is <connectionLimit>; -1 when not set.
	ConnectionLimit int
	// MaxMessageKiB is <maxmessagesize> in KiB (0: no limit); -1 when not set.
	MaxMessageKiB int64
	// Notes are the block's settings that are not carried over.
	Notes []Note
}

// Bind is one address:port of a <bind>.
type Bind struct {
	Host string
	Port int
}

// String renders b as James writes it: "0.0.0.0:25", "[::]:143".
func (b Bind) String() string { return net.JoinHostPort(b.Host, strconv.Itoa(b.Port)) }

// TLS is a server block's <tls>.
type TLS struct {
	SocketTLS bool
	StartTLS  bool
	// Keystore is <keystore> as written, e.g. "file://conf/keystore".
	Keystore string
	// KeystoreType is <keystoreType>; "" means JKS, James's default.
	KeystoreType string
	// Secret is <secret>, the keystore's password (and its key's).
	Secret string
	// PrivateKey and Certificates are the PEM alternative to a keystore.
	PrivateKey, Certificates string
}

// On reports whether the block serves TLS at all.
func (t *TLS) On() bool { return t != nil && (t.SocketTLS || t.StartTLS) }

// Note is a setting of the James configuration that the generated
// configuration does not carry over, and why.
type Note struct {
	// Setting is the XML as written (secrets not shown), or a sentence.
	Setting string
	// Why says what mailstack does instead; "" for none to say.
	Why string
}

// Label names the block in messages and comments:
// `smtpserver.xml <smtpserver> "smtpserver-TLS"`, or its position when it
// has no jmxName.
func (s *Server) Label() string {
	if s.JMXName != "" {
		return fmt.Sprintf("%s <%s> %q", s.File, s.Kind, s.JMXName)
	}
	return fmt.Sprintf("%s <%s> #%d", s.File, s.Kind, s.Index)
}

// shortLabel names the block among the others: its jmxName, or
// "imapserver #2".
func (s *Server) shortLabel() string {
	if s.JMXName != "" {
		return s.JMXName
	}
	return fmt.Sprintf("%s #%d", s.Kind, s.Index)
}

// Load reads the James conf directory dir. It fails with an error naming
// the file, line and block on anything it cannot translate faithfully (a
// malformed file, a bind that is not an IP address and port, implicit TLS
// and STARTTLS both on); what it can leave out without changing what
// clients see is recorded as a [Note] instead.
func Load(dir string) (*Conf, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return nil, fmt.Errorf("reading the James conf directory: %w", err)
	}
	c := &Conf{Dir: abs}
	found := 0
	for _, name := range serverFiles {
		root, err := readFile(abs, name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		found++
		servers, err := parseServers(name, root)
		if err != nil {
			return nil, err
		}
		c.Servers = append(c.Servers, servers...)
	}
	if found == 0 {
		return nil, fmt.Errorf("%s has none of %s: is it a James conf directory?", abs, strings.Join(serverFiles, ", "))
	}
	root, err := readFile(abs, domainFile)
	switch {
	case err == nil:
		c.parseDomains(root)
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	if err := c.checkBinds(); err != nil {
		return nil, err
	}
	c.pickHelloName()
	for _, e := range entries {
		name := e.Name()
		if e.Type().IsRegular() && !slices.Contains(serverFiles, name) && name != domainFile && strings.HasSuffix(name, ".xml") {
			c.Unread = append(c.Unread, name)
		}
	}
	return c, nil
}

// readFile parses one configuration file of dir; errors name the file.
func readFile(dir, name string) (*node, error) {
	file := filepath.Join(dir, name)
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	root, err := parseXML(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return root, nil
}

// parseServers reads the server blocks of one file: the children of the
// <smtpservers> root, or the root itself when the file holds one block
// (<smtpserver> as a root, as James 3.0 and test fixtures write it).
func parseServers(file string, root *node) ([]*Server, error) {
	kind := strings.TrimSuffix(file, ".xml")
	var blocks []*node
	switch root.Name {
	case kind + "s":
		for _, c := range root.Children {
			if c.Name != kind {
				return nil, fmt.Errorf("%s line %d: <%s> inside <%s>: want <%s> blocks", file, c.Line, c.Name, root.Name, kind)
			}
			blocks = append(blocks, c)
		}
	case kind:
		blocks = []*node{root}
	default:
		return nil, fmt.Errorf("%s line %d: root element <%s>: want <%ss>", file, root.Line, root.Name, kind)
	}
	var out []*Server
	for i, b := range blocks {
		s, err := parseServer(file, kind, i+1, b)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// whyNot says what mailstack does instead of a James setting that is not
// carried over, by element name.
var whyNot = map[string]string{
	"connectionBacklog":    "the system's listen backlog applies",
	"connectiontimeout":    "mailstack's own idle timeouts apply",
	"connectionLimitPerIP": "mailstack's own per-address limit applies (50 connections, loopback exempt)",
	"provider":             "a JCE provider has no meaning outside the JVM: Go's crypto/tls serves TLS",
	"algorithm":            "a JSSE key manager algorithm has no meaning outside the JVM",
	"clientAuth":           "client certificates from a separate truststore are not supported: tls.client_auth checks the keystore's trusted entries",
	"handlerchain":         "James handler classes: mailstack's protocol behaviour is built in",
	"authorizedAddresses":  "no relaying by client address: clients relay by authenticating on a submission listener",
	"verifyIdentity":       "submission always requires the sender to be the authenticated user",
	"smtpGreeting":         "the greeting names the server's hostname",
	"plainAuthDisallowed":  "passwords are accepted only over TLS",
	"auth":                 "SMTP AUTH is offered on submission listeners only, only over TLS, and to every client",
	"helloName":            "the server's hostname is set once, in mailstack_server",
	"maxmessagesize":       "one max_message_bytes applies to the whole server",
	"connectionLimit":      "one max_connections applies to every listener of the server",
	"jmxName":              "",
}

// parseServer reads one server block.
func parseServer(file, kind string, index int, n *node) (*Server, error) {
	s := &Server{File: file, Kind: kind, Index: index, Enabled: true, ConnectionLimit: -1, MaxMessageKiB: -1}
	if j := n.child("jmxName"); j != nil {
		s.JMXName = j.Text
	}
	fail := func(line int, format string, args ...any) error {
		return fmt.Errorf("%s line %d: %s", s.Label(), line, fmt.Sprintf(format, args...))
	}
	for k, v := range n.Attrs {
		if k != "enabled" {
			s.note(fmt.Sprintf("<%s %s=%q>", kind, k, v), "")
			continue
		}
		on, err := parseBool(v)
		if err != nil {
			return nil, fail(n.Line, "enabled=%q: %v", v, err)
		}
		s.Enabled = on
	}
	for _, c := range n.Children {
		var err error
		switch c.Name {
		case "jmxName":
		case "bind":
			s.Binds, err = parseBinds(c.Text)
		case "tls":
			s.TLS, err = s.parseTLS(c)
		case "helloName":
			auto := true
			if v, ok := c.Attrs["autodetect"]; ok {
				if auto, err = parseBool(v); err != nil {
					break
				}
			}
			if !auto {
				s.HelloName = c.Text
			}
		case "authRequired":
			s.AuthRequired = strings.EqualFold(c.Text, "true")
			if !s.AuthRequired && !strings.EqualFold(c.Text, "false") {
				s.note(c.describe(), "SMTP AUTH is offered on submission listeners only")
			}
		case "auth":
			s.parseAuth(c)
		case "connectionLimit":
			s.ConnectionLimit, err = strconv.Atoi(c.Text)
		case "maxmessagesize":
			s.MaxMessageKiB, err = strconv.ParseInt(c.Text, 10, 64)
		default:
			s.note(c.describe(), whyNot[c.Name])
		}
		if err != nil {
			return nil, fail(c.Line, "<%s>%s</%s>: %v", c.Name, c.Text, c.Name, err)
		}
	}
	if s.Enabled && len(s.Binds) == 0 {
		return nil, fail(n.Line, "no <bind>: James needs one to listen")
	}
	if s.Enabled && s.TLS != nil && s.TLS.SocketTLS && s.TLS.StartTLS {
		return nil, fail(n.Line, `<tls socketTLS="true" startTLS="true">: James refuses both on one server, and so does mailstack; choose one`)
	}
	if t := s.TLS; s.Enabled && t.On() && t.Keystore == "" && (t.PrivateKey == "" || t.Certificates == "") {
		return nil, fail(n.Line, "<tls> turns TLS on but names no <keystore> (nor <privateKey> and <certificates>)")
	}
	return s, nil
}

// parseAuth reads <auth>: <required> decides between MX and submission;
// the other children are noted together.
func (s *Server) parseAuth(n *node) {
	rest := &node{Name: n.Name, Attrs: n.Attrs}
	for _, c := range n.Children {
		if c.Name == "required" {
			s.AuthRequired = strings.EqualFold(c.Text, "true")
			continue
		}
		rest.Children = append(rest.Children, c)
	}
	if len(rest.Children) == 0 {
		return
	}
	why := "passwords are accepted only over TLS, by the mechanisms mailstack offers"
	if s.Kind == "smtpserver" {
		why = whyNot["auth"]
	}
	s.note(rest.describe(), why)
}

// parseTLS reads <tls>: the two modes and the certificate source; JVM-only
// settings are noted.
func (s *Server) parseTLS(n *node) (*TLS, error) {
	t := &TLS{}
	for k, v := range n.Attrs {
		var err error
		switch k {
		case "socketTLS":
			t.SocketTLS, err = parseBool(v)
		case "startTLS":
			t.StartTLS, err = parseBool(v)
		default:
			s.note(fmt.Sprintf("<tls %s=%q>", k, v), "")
		}
		if err != nil {
			return nil, fmt.Errorf("<tls %s=%q>: %w", k, v, err)
		}
	}
	for _, c := range n.Children {
		switch c.Name {
		case "keystore":
			t.Keystore = c.Text
		case "keystoreType":
			t.KeystoreType = c.Text
		case "secret":
			t.Secret = c.Text
		case "privateKey":
			t.PrivateKey = c.Text
		case "certificates":
			t.Certificates = c.Text
		default:
			s.note("<tls>"+c.describe()+"</tls>", whyNot[c.Name])
		}
	}
	return t, nil
}

// note records a setting of s that is not carried over.
func (s *Server) note(setting, why string) {
	s.Notes = append(s.Notes, Note{Setting: setting, Why: why})
}

// parseBool reads a boolean as Apache Commons Configuration does.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "yes", "on":
		return true, nil
	case "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean", v)
}

// parseBinds reads "0.0.0.0:25, 127.0.0.1:2525". mailstack binds IP
// addresses: a host name is refused (James resolves it once at start-up,
// which would hide what is really bound).
func parseBinds(list string) ([]Bind, error) {
	var out []Bind
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		host, port, err := net.SplitHostPort(item)
		if err != nil {
			return nil, fmt.Errorf("%q is not address:port: %w", item, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("%q: port %q is not 1-65535", item, port)
		}
		if net.ParseIP(host) == nil {
			return nil, fmt.Errorf("%q: %q is not an IP address; write the address it resolves to, or map it with -bind %s=ADDRESS:PORT", item, host, item)
		}
		out = append(out, Bind{Host: host, Port: p})
	}
	if len(out) == 0 {
		return nil, errors.New("empty <bind>")
	}
	return out, nil
}

// checkBinds refuses two enabled blocks on one address, as James would
// fail to start with them.
func (c *Conf) checkBinds() error {
	seen := map[string]*Server{}
	for _, s := range c.Servers {
		if !s.Enabled {
			continue
		}
		for _, b := range s.Binds {
			if other, ok := seen[b.String()]; ok {
				return fmt.Errorf("%s and %s both bind %s", other.Label(), s.Label(), b)
			}
			seen[b.String()] = s
		}
	}
	return nil
}

// pickHelloName takes the <helloName autodetect="false"> the enabled
// blocks agree on; blocks that name another are noted (mailstack has one
// hostname per server).
func (c *Conf) pickHelloName() {
	for _, s := range c.Servers {
		switch {
		case !s.Enabled || s.HelloName == "":
		case c.HelloName == "":
			c.HelloName = s.HelloName
		case s.HelloName != c.HelloName:
			s.note(fmt.Sprintf(`<helloName autodetect="false">%s</helloName>`, s.HelloName),
				fmt.Sprintf("the server's one hostname is %q, from an earlier block", c.HelloName))
		}
	}
}

// parseDomains reads domainlist.xml.
func (c *Conf) parseDomains(root *node) {
	add := func(d string) {
		d = strings.ToLower(strings.TrimSpace(d))
		if d != "" && !slices.Contains(c.Domains, d) {
			c.Domains = append(c.Domains, d)
		}
	}
	where := domainFile + ": "
	for k, v := range root.Attrs {
		c.Notes = append(c.Notes, Note{Setting: where + fmt.Sprintf("<domainlist %s=%q>", k, v),
			Why: "James's domain list store is not read"})
	}
	for _, n := range root.Children {
		switch n.Name {
		case "domainnames":
			for _, d := range n.Children {
				add(d.Text)
			}
		case "defaultDomain":
			add(n.Text)
		case "autodetect", "autodetectIP":
			if on, err := parseBool(n.Text); err != nil || on {
				c.Notes = append(c.Notes, Note{Setting: where + n.describe(),
					Why: "mailstack_server.domains lists every local domain: add the host's own names (and address literals) James detected"})
			}
		default:
			c.Notes = append(c.Notes, Note{Setting: where + n.describe(), Why: whyNot[n.Name]})
		}
	}
	c.Notes = append(c.Notes, Note{Setting: where + "domains added at run time (james-cli AddDomain, the web admin API)",
		Why: "James keeps its domain list in its own store; compare `james-cli ListDomains` with mailstack_server.domains"})
}
