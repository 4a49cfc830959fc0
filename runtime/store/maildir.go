package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Maildir subdirectories.
const (
	dirTmp = "tmp"
	dirNew = "new"
	dirCur = "cur"
)

// folderDir maps an IMAP mailbox name to its Maildir++ directory name, as
// Dovecot and Courier lay it out: "Archive/2024" -> ".Archive.2024". Within a
// component '.', '%' and control characters are percent-escaped so that the
// mapping is reversible.
func folderDir(name string) string {
	if name == Inbox {
		return ""
	}
	parts := strings.Split(name, "/")
	for i, p := range parts {
		var b strings.Builder
		for j := 0; j < len(p); j++ {
			c := p[j]
			if c == '.' || c == '%' || c < 0x20 || c == 0x7f {
				fmt.Fprintf(&b, "%%%02X", c)
			} else {
				b.WriteByte(c)
			}
		}
		parts[i] = b.String()
	}
	return "." + strings.Join(parts, ".")
}

// nameFromFolderDir reverses folderDir for a directory found on disk.
func nameFromFolderDir(dir string) (string, bool) {
	if len(dir) < 2 || dir[0] != '.' || dir == ".." {
		return "", false
	}
	parts := strings.Split(dir[1:], ".")
	for i, p := range parts {
		if p == "" {
			return "", false
		}
		s, err := unescapePercent(p)
		if err != nil {
			return "", false
		}
		parts[i] = s
	}
	name := strings.Join(parts, "/")
	return name, ValidMailboxName(name) == nil
}

func unescapePercent(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("bad escape")
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", err
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), nil
}

// ValidMailboxName checks a normalized IMAP mailbox name (see
// NormalizeMailbox): ErrInvalidMailbox for one no store can hold.
func ValidMailboxName(name string) error {
	if name == "" || len(name) > 512 || strings.HasPrefix(name, "/") {
		return fmt.Errorf("%w %q", ErrInvalidMailbox, name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" || !safePathPart(part) || strings.ContainsAny(part, "*%") {
			return fmt.Errorf("%w %q", ErrInvalidMailbox, name)
		}
	}
	return nil
}

// MailboxArgs takes the arguments of an operation that gives a mailbox
// its name (creating, subscribing, the new name of a rename): address in
// canonical form (CanonicalAddress) and name in stored form
// (NormalizeMailbox), checked with ValidMailboxName. The address's error
// comes first.
func MailboxArgs(address, name string) (addr, mailbox string, err error) {
	if addr, err = CanonicalAddress(address); err != nil {
		return "", "", err
	}
	mailbox = NormalizeMailbox(name)
	if err := ValidMailboxName(mailbox); err != nil {
		return "", "", err
	}
	return addr, mailbox, nil
}

// uniqueName returns a new Maildir base name:
// <seconds>.M<micro>P<pid>Q<n>.<host>,S=<size> (maildir(5) plus Dovecot's
// S= size), unique within this host because of the per-process counter.
func (s *Store) uniqueName(size int64) string {
	now := time.Now()
	return fmt.Sprintf("%d.M%dP%dQ%d.%s,S=%d", now.Unix(), now.Nanosecond()/1000, s.pid, s.seq.Add(1), s.host, size)
}

// makeMaildir creates dir with tmp/, new/ and cur/.
func makeMaildir(dir string) error {
	for _, sub := range []string{dirTmp, dirNew, dirCur} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return fmt.Errorf("creating maildir: %w", err)
		}
	}
	return nil
}
