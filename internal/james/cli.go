package james

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/atomicfile"
)

const usage = `usage: terraform-provider-mailstack james import CONF_DIR -out DIR [flags]

Reads the Apache James 3.x configuration in CONF_DIR (smtpserver.xml,
lmtpserver.xml, imapserver.xml, pop3server.xml, domainlist.xml and the
keystores they name) and writes into DIR the Terraform configuration that
serves the same ports with the same certificates: main.tf (keystores
adopted by import blocks, a server, one listener per bind address),
james.auto.tfvars (the keystores' secrets, mode 0600) and .gitignore.
Settings it does not carry over are listed at the top of main.tf.

Flags:
`

// bindFlags collects repeated -bind FROM=TO.
type bindFlags map[string]string

func (b bindFlags) String() string { return fmt.Sprint(map[string]string(b)) }

func (b bindFlags) Set(v string) error {
	from, to, ok := strings.Cut(v, "=")
	if !ok || from == "" || to == "" {
		return errors.New("want FROM=TO, e.g. 0.0.0.0:25=127.0.0.1:2525")
	}
	b[from] = to
	return nil
}

// Main runs `james import`: args are the arguments after "james".
func Main(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "import" {
		fmt.Fprint(stderr, usage)
		return errors.New("usage: terraform-provider-mailstack james import CONF_DIR -out DIR")
	}
	fs := flag.NewFlagSet("james import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	out := fs.String("out", "", "folder to write the configuration into (created if missing); required")
	hostname := fs.String("hostname", "", "the server's hostname (default: the blocks' <helloName autodetect=\"false\">, else this machine's name)")
	hostConf := fs.String("host-conf-dir", "", "where CONF_DIR is on the host the configuration manages, when it was copied from there (default: CONF_DIR)")
	force := fs.Bool("force", false, "replace files DIR already has")
	binds := bindFlags{}
	fs.Var(binds, "bind", "`FROM=TO`: bind TO (IP:port) where the XML binds FROM, e.g. 0.0.0.0:25=127.0.0.1:2525; repeatable")
	// Flags may come before or after CONF_DIR.
	rest := args[1:]
	var positional []string
	for {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(positional) != 1 || *out == "" {
		fs.Usage()
		return errors.New("usage: terraform-provider-mailstack james import CONF_DIR -out DIR")
	}
	conf, err := Load(positional[0])
	if err != nil {
		return err
	}
	local, _ := os.Hostname()
	files, err := Generate(conf, Options{
		Hostname:      *hostname,
		LocalHostname: local,
		Binds:         binds,
		HostConfDir:   *hostConf,
		Command:       "terraform-provider-mailstack james " + strings.Join(args, " "),
		Now:           time.Now(),
	})
	if err != nil {
		return err
	}
	if err := write(*out, files, *force); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", summary(*out, files))
	return nil
}

// write puts files into dir, refusing to replace any unless force is set;
// it checks them all before it writes one.
func write(dir string, files []File, force bool) error {
	if !force {
		var exist []string
		for _, f := range files {
			if _, err := os.Lstat(filepath.Join(dir, f.Name)); err == nil {
				exist = append(exist, f.Name)
			}
		}
		if len(exist) > 0 {
			return fmt.Errorf("%s already has %s: choose another -out, or replace them with -force", dir, strings.Join(exist, ", "))
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		if err := atomicfile.WriteFile(filepath.Join(dir, f.Name), f.Data, f.Mode); err != nil {
			return fmt.Errorf("writing %s: %w", f.Name, err)
		}
	}
	return nil
}

func summary(dir string, files []File) string {
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = filepath.Join(dir, f.Name)
	}
	return strings.Join(names, ", ") + "\nsettings not carried over are listed at the top of " + filepath.Join(dir, MainFile)
}
