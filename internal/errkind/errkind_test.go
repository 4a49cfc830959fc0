package errkind

import (
	"errors"
	"fmt"
	"testing"
)

func TestKinds(t *testing.T) {
	errThing := New(NotFound, "no such thing")
	cause := errors.New("disk on fire")
	for _, tc := range []struct {
		name     string
		err      error
		kind     error
		text     string
		wraps    []error
		notWraps []error
	}{
		{name: "sentinel", err: errThing, kind: NotFound, text: "no such thing", wraps: []error{errThing}},
		{name: "wrapped sentinel", err: fmt.Errorf("thing %q: %w", "x", errThing), kind: NotFound,
			text: `thing "x": no such thing`, wraps: []error{errThing}},
		{name: "marked with a kind", err: With(Conflict, cause), kind: Conflict, text: "disk on fire", wraps: []error{cause},
			notWraps: []error{errThing}},
		{name: "marked with a sentinel", err: With(errThing, cause), kind: NotFound, text: "disk on fire",
			wraps: []error{errThing, cause}},
		{name: "no kind", err: cause, kind: nil, text: "disk on fire"},
		{name: "the outermost mark decides", err: With(Invalid, fmt.Errorf("x: %w", errThing)), kind: Invalid,
			text: "x: no such thing", wraps: []error{Invalid, NotFound, errThing}},
		{name: "a sentinel inside a joined error", err: errors.Join(cause, fmt.Errorf("y: %w", errThing)), kind: NotFound,
			text: "disk on fire\ny: no such thing", wraps: []error{cause, errThing}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.text {
				t.Errorf("text %q, want %q", got, tc.text)
			}
			if got := Of(tc.err); got != tc.kind {
				t.Errorf("Of = %v, want %v", got, tc.kind)
			}
			for _, w := range tc.wraps {
				if !errors.Is(tc.err, w) {
					t.Errorf("errors.Is(err, %v) = false", w)
				}
			}
			for _, w := range tc.notWraps {
				if errors.Is(tc.err, w) {
					t.Errorf("errors.Is(err, %v) = true", w)
				}
			}
		})
	}
}

func TestWithKeepsNilAndMarkedErrors(t *testing.T) {
	if With(Invalid, nil) != nil {
		t.Error("With(kind, nil) is not nil")
	}
	err := With(Invalid, errors.New("bad"))
	if With(Invalid, err) != err {
		t.Error("marking an error again with its own kind wrapped it twice")
	}
}
