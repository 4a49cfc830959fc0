package imap

import (
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

func TestResolve(t *testing.T) {
	sel := &selected{msgs: []viewMsg{{uid: 3}, {uid: 5}, {uid: 7, gone: true}, {uid: 9}}}
	seq := func(start, stop uint32) imap.NumSet { return imap.SeqSet{{Start: start, Stop: stop}} }
	uid := func(start, stop uint32) imap.NumSet {
		return imap.UIDSet{{Start: imap.UID(start), Stop: imap.UID(stop)}}
	}
	tests := []struct {
		name string
		set  imap.NumSet
		want []int
	}{
		{"seq range", seq(1, 2), []int{0, 1}},
		{"seq star", seq(2, 0), []int{1, 3}}, // 2:*, skipping the expunged one
		{"seq star reversed", seq(0, 4), []int{3}},
		{"seq beyond end", seq(5, 9), nil},
		{"uid range", uid(4, 9), []int{1, 3}},
		{"uid star", uid(0, 0), []int{3}},
		{"uid above max is *", uid(100, 0), []int{3}}, // RFC 9051 6.4.9: n:* with n > max
		{"uid missing", uid(1, 2), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := sel.resolve(tc.set)
			if len(got) != len(tc.want) {
				t.Fatalf("resolve = %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("resolve = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestMatchDate(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2024, 3, d, 0, 0, 0, 0, time.UTC) }
	msg := time.Date(2024, 3, 10, 23, 30, 0, 0, time.FixedZone("x", -5*3600))
	tests := []struct {
		name          string
		since, before time.Time
		want          bool
	}{
		{"since same day", day(10), time.Time{}, true},
		{"since next day", day(11), time.Time{}, false},
		{"before same day", time.Time{}, day(10), false},
		{"before next day", time.Time{}, day(11), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := matchDate(msg, tc.since, tc.before); got != tc.want {
				t.Fatalf("matchDate = %v, want %v", got, tc.want)
			}
		})
	}
}
