package host

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// hostKeyError says why a host key was not accepted: it names the host
// and the key it presented.
type hostKeyError struct {
	addr        string
	key         ssh.PublicKey
	why, remedy string
}

func (e *hostKeyError) Error() string {
	return fmt.Sprintf("ssh %s: host key verification failed: the host presented the %s key %s, which %s. %s",
		e.addr, e.key.Type(), ssh.FingerprintSHA256(e.key), e.why, e.remedy)
}

// hostKeyCheck builds the host key callback for addr from pinned keys and
// known_hosts files (~/.ssh/known_hosts when neither is given), and the
// host key algorithms to ask for when keys are pinned.
func hostKeyCheck(addr string, pinned, knownHostsFiles []string) (ssh.HostKeyCallback, []string, error) {
	var keys []ssh.PublicKey
	var algorithms []string
	for _, line := range pinned {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, nil, fmt.Errorf("ssh %s: host_key %q is not a public key in authorized_keys form (\"ssh-ed25519 AAAA...\"): %w", addr, abbreviate(line), err)
		}
		keys = append(keys, k)
		algorithms = append(algorithms, keyAlgorithms(k.Type())...)
	}
	files := knownHostsFiles
	if len(files) == 0 && len(keys) == 0 {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, nil, fmt.Errorf("ssh %s: no host_key or known_hosts set, and no home folder for ~/.ssh/known_hosts: %w", addr, err)
		}
		files = []string{filepath.Join(home, ".ssh", "known_hosts")}
	}
	var known ssh.HostKeyCallback
	var present []string
	for _, f := range files {
		if _, err := os.Stat(f); err == nil {
			present = append(present, f)
		} else if len(knownHostsFiles) > 0 {
			return nil, nil, fmt.Errorf("ssh %s: known_hosts file: %w", addr, err)
		}
	}
	if len(present) > 0 {
		var err error
		if known, err = knownhosts.New(present...); err != nil {
			return nil, nil, fmt.Errorf("ssh %s: reading known_hosts: %w", addr, err)
		}
	}
	if len(keys) == 0 {
		algorithms = nil // let known_hosts decide among the host's keys
	}
	where := strings.Join(files, ", ")
	verify := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		for _, k := range keys {
			if string(k.Marshal()) == string(key.Marshal()) {
				return nil
			}
		}
		remedy := fmt.Sprintf("If this is the host's key, set host_key = %q, or add it to known_hosts (ssh-keyscan -p PORT HOST); if it is not, someone may be between you and the host.",
			strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))))
		if known == nil {
			why := "is not the pinned host_key"
			if len(keys) == 0 {
				why = "no known_hosts file lists (" + where + " does not exist)"
			}
			return &hostKeyError{addr: addr, key: key, why: why, remedy: remedy}
		}
		err := known(addr, remote, key)
		if err == nil {
			return nil
		}
		var ke *knownhosts.KeyError
		var re *knownhosts.RevokedError
		switch {
		case errors.As(err, &re):
			return &hostKeyError{addr: addr, key: key, why: "known_hosts marks as revoked", remedy: "Do not connect to this host until its key is replaced."}
		case errors.As(err, &ke) && len(ke.Want) > 0:
			want := make([]string, len(ke.Want))
			for i, w := range ke.Want {
				want[i] = fmt.Sprintf("%s %s (%s:%d)", w.Key.Type(), ssh.FingerprintSHA256(w.Key), w.Filename, w.Line)
			}
			return &hostKeyError{addr: addr, key: key,
				why:    "differs from the key known_hosts has for it: " + strings.Join(want, ", ") + (map[bool]string{true: "", false: ", nor is it the pinned host_key"})[len(keys) == 0],
				remedy: "The host key changed, or someone is between you and the host. If the change is expected, replace the known_hosts entry."}
		case errors.As(err, &ke):
			why := "is not listed for this host in " + where
			if len(keys) > 0 {
				why = "is not the pinned host_key, nor listed for this host in " + where
			}
			return &hostKeyError{addr: addr, key: key, why: why, remedy: remedy}
		}
		return fmt.Errorf("ssh %s: checking the host key: %w", addr, err)
	}
	return verify, algorithms, nil
}

// keyAlgorithms are the host key algorithms that present a key of type t.
func keyAlgorithms(t string) []string {
	if t == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{t}
}

func abbreviate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
