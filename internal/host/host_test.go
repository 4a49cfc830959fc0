package host

import (
	"os"
	"testing"
)

func TestContainsInOrder(t *testing.T) {
	cmd := []string{"/x/bin/mailstack", "runtime", "supervise", "--state-dir", "/x"}
	cases := []struct {
		name string
		want []string
		ok   bool
	}{
		{"nothing", nil, true},
		{"one", []string{"supervise"}, true},
		{"run", []string{"--state-dir", "/x"}, true},
		{"whole", cmd, true},
		{"other dir", []string{"--state-dir", "/y"}, false},
		{"out of order", []string{"supervise", "runtime"}, false},
		{"gap", []string{"runtime", "--state-dir"}, false},
		{"longer", append(cmd, "extra"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := containsInOrder(cmd, tc.want); got != tc.ok {
				t.Errorf("containsInOrder(%q) = %v, want %v", tc.want, got, tc.ok)
			}
		})
	}
}

func TestRunsSelf(t *testing.T) {
	var h Local
	if !h.Runs(os.Getpid(), os.Args[0]) {
		t.Errorf("Runs(self, %q) = false", os.Args[0])
	}
	if h.Runs(os.Getpid(), "no-such-argument") {
		t.Error("Runs(self, no-such-argument) = true")
	}
	if h.Runs(0) || h.Runs(-1) {
		t.Error("Runs of pid 0 or -1 = true")
	}
}

func TestParseUname(t *testing.T) {
	cases := []struct {
		out  string
		want Platform
		ok   bool
	}{
		{"Linux x86_64\n", Platform{"linux", "amd64"}, true},
		{"Linux aarch64", Platform{"linux", "arm64"}, true},
		{"Darwin arm64", Platform{"darwin", "arm64"}, true},
		{"FreeBSD amd64", Platform{"freebsd", "amd64"}, true},
		{"Linux armv7l", Platform{"linux", "arm"}, true},
		{"Linux", Platform{}, false},
		{"Plan9 x86_64", Platform{}, false},
		{"Linux pdp11", Platform{}, false},
	}
	for _, tc := range cases {
		got, err := ParseUname(tc.out)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseUname(%q) = %v, %v; want %v, ok=%v", tc.out, got, err, tc.want, tc.ok)
		}
	}
}
