package pop3

import (
	"errors"
	"strings"
)

// command is one parsed command line.
type command struct {
	// name is the keyword in upper case.
	name string
	// arg is everything after the first space, verbatim: PASS takes it
	// whole, since passwords may contain spaces (RFC 1939 section 7);
	// other commands split it with strings.Fields.
	arg string
}

var (
	errEmptyCommand = errors.New("empty command")
	errBadKeyword   = errors.New("malformed command keyword")
	errBadCharacter = errors.New("control character in command")
)

// maxKeywordLength is generous: RFC 1939 section 3 and RFC 2449 section 3
// have keywords of three or four characters.
const maxKeywordLength = 8

// parseCommand splits a command line (without its line ending) into a
// keyword, case-insensitive per RFC 1939 section 3, and its argument text.
// Control characters are refused anywhere in the line: RFC 2449 section 3
// allows only printable characters in parameters.
func parseCommand(line string) (command, error) {
	if line == "" {
		return command{}, errEmptyCommand
	}
	for i := 0; i < len(line); i++ {
		if c := line[i]; c < 0x20 || c == 0x7f {
			return command{}, errBadCharacter
		}
	}
	name, arg, _ := strings.Cut(line, " ")
	if name == "" || len(name) > maxKeywordLength {
		return command{}, errBadKeyword
	}
	for i := 0; i < len(name); i++ {
		if c := name[i] | 0x20; c < 'a' || c > 'z' {
			return command{}, errBadKeyword
		}
	}
	return command{name: strings.ToUpper(name), arg: arg}, nil
}

// parseNumber parses a non-negative decimal argument (a message number or
// a TOP line count): digits only, no sign, at most nine of them so the
// value always fits an int.
func parseNumber(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// validUID reports whether uid is a unique-id RFC 1939 section 7 allows:
// 1 to 70 characters in the range 0x21 to 0x7E. A backend that breaks this
// could otherwise inject protocol lines into UIDL responses.
func validUID(uid string) bool {
	if uid == "" || len(uid) > 70 {
		return false
	}
	for i := 0; i < len(uid); i++ {
		if c := uid[i]; c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}
