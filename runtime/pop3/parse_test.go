package pop3

import (
	"errors"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	cases := []struct {
		line    string
		name    string
		arg     string
		wantErr error
	}{
		{line: "STAT", name: "STAT"},
		{line: "stat", name: "STAT"}, // RFC 1939 section 3: case-insensitive
		{line: "LIST 1", name: "LIST", arg: "1"},
		{line: "TOP 1 10", name: "TOP", arg: "1 10"},
		{line: "PASS  two  spaces ", name: "PASS", arg: " two  spaces "}, // verbatim for PASS
		{line: "NOOP ", name: "NOOP", arg: ""},
		{line: "PASS p\u00e4ss", name: "PASS", arg: "p\u00e4ss"}, // UTF-8 passwords
		{line: "", wantErr: errEmptyCommand},
		{line: " STAT", wantErr: errBadKeyword},
		{line: "ST4T", wantErr: errBadKeyword},
		{line: "LONGERTHAN8", wantErr: errBadKeyword},
		{line: "\u00c4BC", wantErr: errBadKeyword},
		{line: "USER a\x00b", wantErr: errBadCharacter},
		{line: "USER a\rb", wantErr: errBadCharacter},
		{line: "USER\tx", wantErr: errBadCharacter},
		{line: "NOOP\x7f", wantErr: errBadCharacter},
	}
	for _, tc := range cases {
		cmd, err := parseCommand(tc.line)
		if !errors.Is(err, tc.wantErr) || cmd.name != tc.name || cmd.arg != tc.arg {
			t.Errorf("parseCommand(%q) = %+v, %v; want {%s %q}, %v", tc.line, cmd, err, tc.name, tc.arg, tc.wantErr)
		}
	}
}

func TestParseNumber(t *testing.T) {
	cases := []struct {
		in   string
		n    int
		okay bool
	}{
		{"0", 0, true},
		{"1", 1, true},
		{"0042", 42, true},
		{"999999999", 999999999, true},
		{"1000000000", 0, false}, // too many digits
		{"", 0, false},
		{"+1", 0, false},
		{"-1", 0, false},
		{"1a", 0, false},
		{" 1", 0, false},
	}
	for _, tc := range cases {
		if n, ok := parseNumber(tc.in); n != tc.n || ok != tc.okay {
			t.Errorf("parseNumber(%q) = %d, %v; want %d, %v", tc.in, n, ok, tc.n, tc.okay)
		}
	}
}

func TestValidUID(t *testing.T) {
	cases := map[string]bool{
		"a":                     true,
		"!~":                    true,
		strings.Repeat("x", 70): true,
		strings.Repeat("x", 71): false,
		"":                      false,
		"a b":                   false,
		"a\r\n+OK":              false,
		"\u00e4":                false,
	}
	for uid, want := range cases {
		if got := validUID(uid); got != want {
			t.Errorf("validUID(%q) = %v, want %v", uid, got, want)
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, seed := range []string{"STAT", "list 1", "TOP 1 2", "PASS a b", "AUTH PLAIN =", "", " ", "X\x00", "\xff\xfe", "CAPA\r"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmd, err := parseCommand(line)
		if err != nil {
			if cmd != (command{}) {
				t.Fatalf("error %v with a command %+v", err, cmd)
			}
			return
		}
		if cmd.name == "" || len(cmd.name) > maxKeywordLength || strings.ToUpper(cmd.name) != cmd.name {
			t.Fatalf("bad keyword %q from %q", cmd.name, line)
		}
		for _, c := range []byte(cmd.name) {
			if c < 'A' || c > 'Z' {
				t.Fatalf("keyword %q has %q", cmd.name, c)
			}
		}
		if strings.ContainsFunc(line, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Fatalf("accepted control character in %q", line)
		}
		rebuilt := cmd.name
		if len(line) > len(cmd.name) {
			rebuilt += " " + cmd.arg
		}
		if !strings.EqualFold(rebuilt, line) || line[len(cmd.name):] != strings.TrimPrefix(rebuilt, cmd.name) {
			t.Fatalf("%q parsed to %+v, which does not rebuild it", line, cmd)
		}
	})
}
