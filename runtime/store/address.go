package store

import (
	"fmt"
	"strings"
)

// CanonicalAddress returns address in the form the store keys users by:
// the local part as given (RFC 5321 leaves its case to the receiving
// system, and we keep it) and the domain in lower case. It rejects addresses
// that are not local@domain or whose parts cannot safely name a directory.
func CanonicalAddress(address string) (string, error) {
	local, domain, ok := strings.Cut(address, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") {
		return "", fmt.Errorf("%w %q: want local@domain", ErrInvalidAddress, address)
	}
	domain = strings.ToLower(domain)
	if local == "." || local == ".." || !safePathPart(local) {
		return "", fmt.Errorf("%w %q: local part cannot name a directory", ErrInvalidAddress, address)
	}
	if !validDomain(domain) {
		return "", fmt.Errorf("%w %q: bad domain", ErrInvalidAddress, address)
	}
	return local + "@" + domain, nil
}

// safePathPart reports whether s can be one path element: no separators,
// no control characters and not too long for a file name.
func safePathPart(s string) bool {
	if len(s) > 200 {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '/' || r == '\\' {
			return false
		}
	}
	return true
}

// validDomain accepts dot-separated labels of letters, digits, '-' and
// non-ASCII (U-labels), which covers every domain a mailbox can live in.
func validDomain(d string) bool {
	if len(d) > 253 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 0x80) {
				return false
			}
		}
	}
	return true
}

// CanonicalRecipients canonicalises a delivery's recipients, dropping
// repeats and keeping their order, as every store delivers them.
func CanonicalRecipients(recipients []string) ([]string, error) {
	addrs := make([]string, 0, len(recipients))
	seen := make(map[string]bool, len(recipients))
	for _, r := range recipients {
		addr, err := CanonicalAddress(r)
		if err != nil {
			return nil, err
		}
		if !seen[addr] {
			seen[addr] = true
			addrs = append(addrs, addr)
		}
	}
	return addrs, nil
}
