package james

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

// Keystore is one keystore file that enabled TLS blocks name, as the
// generated configuration adopts it.
type Keystore struct {
	// Ref is the <keystore> that names it, as written.
	Ref string
	// Path is the file on this machine (read to describe it).
	Path string
	// HostPath is the file on the host the configuration manages.
	HostPath string
	// Secret is the <secret> that opens it.
	Secret string
	// Type is the format the file really has.
	Type keystore.Type
	// Alias is the private key entry served; Several says whether the
	// file holds more than one (the alias then goes into the import id and
	// the listeners).
	Alias   string
	Several bool
	// Chain is the entry's certificate chain, leaf first.
	Chain []*x509.Certificate
	// Adopt says whether mailstack_keystore can describe the entry, so that
	// it is imported; when not, listeners name the file directly and
	// NotAdopted says why.
	Adopt      bool
	NotAdopted string
	// Notes are what the generated configuration should say about it.
	Notes []Note
	// Users are the labels of the blocks that serve it.
	Users []string
}

// resolvePath finds the file a James resource URL names. James's
// FileSystem maps file://conf/ to the conf directory, file://var/ to the
// var directory beside it, file:///x to /x and other relative paths to
// its base directory (the conf directory's parent).
func resolvePath(confDir, ref string) (string, error) {
	base := filepath.Dir(confDir)
	rest, isFile := strings.CutPrefix(ref, "file://")
	switch {
	case strings.HasPrefix(ref, "classpath:"):
		return "", fmt.Errorf("%q is inside James's jars (classpath:): copy it to a file and name that", ref)
	case isFile && strings.HasPrefix(rest, "conf/"):
		return filepath.Join(confDir, strings.TrimPrefix(rest, "conf/")), nil
	case isFile && strings.HasPrefix(rest, "var/"):
		return filepath.Join(base, rest), nil
	case isFile && strings.HasPrefix(rest, "/"):
		return filepath.Clean(rest), nil
	case isFile:
		return filepath.Join(base, rest), nil
	case strings.Contains(ref, "://"):
		return "", fmt.Errorf("%q: only file:// resources can be served", ref)
	case filepath.IsAbs(ref):
		return filepath.Clean(ref), nil
	}
	return filepath.Join(base, ref), nil
}

// openKeystore opens the keystore file with secret and describes the
// private key entry that TLS would serve. from labels the block that names
// it, for errors.
func openKeystore(file, secret, declaredType, from string, now time.Time) (*Keystore, error) {
	if secret == "" {
		return nil, fmt.Errorf("%s: keystore %s has an empty <secret>; mailstack needs a password: set one with keytool -storepasswd and in the XML, then run again", from, file)
	}
	ks, err := keystore.Open(context.Background(), host.LocalFile(file), []byte(secret))
	if err != nil {
		return nil, fmt.Errorf("%s: keystore %s does not open with its <secret>: %w", from, file, err)
	}
	k := &Keystore{Path: file, Secret: secret, Type: ks.Type(), Users: []string{from}}
	var keys []string
	for _, e := range ks.Entries() {
		if e.Kind == keystore.PrivateKey {
			keys = append(keys, e.Alias)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: keystore %s holds no private key entry to serve", from, file)
	}
	k.Alias, k.Several = keys[0], len(keys) > 1
	if k.Several {
		k.note(fmt.Sprintf("%d private key entries (%s)", len(keys), strings.Join(keys, ", ")),
			fmt.Sprintf("James's key manager chose one per handshake; the listeners serve %q: change alias to serve another", k.Alias))
	}
	// James opens the key with the same <secret>: a key under another
	// password could not have been served.
	if _, _, err := ks.PrivateKeyEntry(k.Alias, nil); err != nil {
		return nil, fmt.Errorf("%s: keystore %s: the key %q does not open with <secret> (James uses it for the key too): %w", from, file, k.Alias, err)
	}
	e, _ := ks.Entry(k.Alias)
	k.Chain = e.Chain
	if want, err := keystore.ParseType(declaredType); err == nil && want != k.Type {
		k.note(fmt.Sprintf("<keystoreType>%s</keystoreType>", orDefault(declaredType, "(none: JKS)")),
			fmt.Sprintf("the file is %s (the JDK reads either under both names); type = %q follows the file", k.Type, k.Type))
	}
	k.Adopt, k.NotAdopted = describable(k.Chain[0])
	if !k.Adopt {
		return k, nil
	}
	leaf := k.Chain[0]
	if early := 30 * 24 * time.Hour; keystore.IsSelfSigned(leaf) && !now.Add(early).Before(leaf.NotAfter) {
		k.note(fmt.Sprintf("certificate %q ends %s", leaf.Subject.CommonName, leaf.NotAfter.UTC().Format(time.RFC3339)),
			"within early_renewal_days (30): apply issues a new self-signed certificate for the same key into the keystore")
	}
	return k, nil
}

func (k *Keystore) note(setting, why string) {
	k.Notes = append(k.Notes, Note{Setting: setting, Why: why})
}

// describable reports whether mailstack_keystore can describe a
// certificate's key (its key block), and why not.
func describable(leaf *x509.Certificate) (bool, string) {
	switch pub := leaf.PublicKey.(type) {
	case *rsa.PublicKey:
		if bits := pub.N.BitLen(); !slices.Contains([]int{2048, 3072, 4096}, bits) {
			return false, fmt.Sprintf("an RSA key of %d bits (mailstack_keystore describes 2048, 3072 and 4096)", bits)
		}
	case *ecdsa.PublicKey:
		if name := pub.Curve.Params().Name; name != "P-256" && name != "P-384" {
			return false, fmt.Sprintf("an ECDSA key on %s (mailstack_keystore describes P-256 and P-384)", name)
		}
	default:
		return false, fmt.Sprintf("a %T key (mailstack_keystore describes RSA and ECDSA)", pub)
	}
	return true, ""
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
