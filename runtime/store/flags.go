package store

import (
	"path"
	"slices"
	"strings"
)

// System flags (RFC 9051 2.3.2), as IMAP spells them.
const (
	FlagSeen     = `\Seen`
	FlagAnswered = `\Answered`
	FlagFlagged  = `\Flagged`
	FlagDeleted  = `\Deleted`
	FlagDraft    = `\Draft`
)

// sysFlags is a bit set of system flags; the bit order matches sysFlagNames.
type sysFlags uint8

// sysFlagNames lists the system flags with their maildir(5) info letters.
var sysFlagNames = [...]struct {
	name   string
	letter byte
}{
	{FlagSeen, 'S'},
	{FlagAnswered, 'R'},
	{FlagFlagged, 'F'},
	{FlagDeleted, 'T'},
	{FlagDraft, 'D'},
}

// flagSet is a message's flags: system flags as bits, keywords sorted.
type flagSet struct {
	sys      sysFlags
	keywords []string
}

func (f flagSet) has(flag string) bool {
	for i, sf := range sysFlagNames {
		if strings.EqualFold(flag, sf.name) {
			return f.sys&(1<<i) != 0
		}
	}
	_, found := slices.BinarySearch(f.keywords, flag)
	return found
}

func (f *flagSet) add(flag string) {
	for i, sf := range sysFlagNames {
		if strings.EqualFold(flag, sf.name) {
			f.sys |= 1 << i
			return
		}
	}
	if strings.HasPrefix(flag, `\`) {
		return // \Recent and unknown system flags cannot be stored
	}
	if i, found := slices.BinarySearch(f.keywords, flag); !found {
		f.keywords = slices.Insert(slices.Clone(f.keywords), i, flag)
	}
}

func (f *flagSet) remove(flag string) {
	for i, sf := range sysFlagNames {
		if strings.EqualFold(flag, sf.name) {
			f.sys &^= 1 << i
			return
		}
	}
	if i, found := slices.BinarySearch(f.keywords, flag); found {
		f.keywords = slices.Delete(slices.Clone(f.keywords), i, i+1)
	}
}

// list returns the flags as IMAP names, system flags first.
func (f flagSet) list() []string {
	out := make([]string, 0, len(f.keywords)+2)
	for i, sf := range sysFlagNames {
		if f.sys&(1<<i) != 0 {
			out = append(out, sf.name)
		}
	}
	return append(out, f.keywords...)
}

func (f flagSet) equal(g flagSet) bool {
	return f.sys == g.sys && slices.Equal(f.keywords, g.keywords)
}

func makeFlagSet(flags []string) flagSet {
	var f flagSet
	for _, fl := range flags {
		f.add(fl)
	}
	return f
}

// NormalizeFlags returns flags as a store keeps them: system flags in
// their IMAP spelling first, then the keywords sorted, each once; \Recent
// and unknown system flags dropped. Two lists name the same flags exactly
// when their normalized forms are equal.
func NormalizeFlags(flags []string) []string { return makeFlagSet(flags).list() }

// ApplyFlags returns what the normalized flags current become under op
// with flags (one STORE), normalized, and whether that differs from
// current.
func ApplyFlags(current []string, op FlagOp, flags []string) (next []string, changed bool) {
	cur := makeFlagSet(current)
	nf := cur.apply(op, flags)
	return nf.list(), !nf.equal(cur)
}

// maildirInfo returns the ":2," suffix letters for f (maildir(5)), in
// ASCII order as the format requires.
func (f flagSet) maildirInfo() string {
	var b []byte
	for i, sf := range sysFlagNames {
		if f.sys&(1<<i) != 0 {
			b = append(b, sf.letter)
		}
	}
	slices.Sort(b)
	return string(b)
}

// maildirBase is a Maildir file's unique name: its base name without
// the ":2," info, which changes with the flags.
func maildirBase(file string) string {
	base, _, _ := strings.Cut(path.Base(file), ":2,")
	return base
}

// maildirFile is where a message file (relative to its mailbox folder)
// belongs with flags f: cur/<base>:2,<info> (maildir(5)); a message in
// new/ with no system flags stays there.
func maildirFile(file string, f flagSet) string {
	info := f.maildirInfo()
	if info == "" && strings.HasPrefix(file, dirNew+"/") {
		return file
	}
	return dirCur + "/" + maildirBase(file) + ":2," + info
}

// flagsFromFilename parses the flags of a Maildir file name "...:2,FRS".
func flagsFromFilename(name string) flagSet {
	var f flagSet
	_, info, ok := strings.Cut(name, ":2,")
	if !ok {
		return f
	}
	for i, sf := range sysFlagNames {
		if strings.IndexByte(info, sf.letter) >= 0 {
			f.sys |= 1 << i
		}
	}
	return f
}

// FlagOp says how SetFlags combines the given flags with a message's flags.
type FlagOp int

// Flag operations, as IMAP STORE FLAGS, +FLAGS and -FLAGS.
const (
	FlagsReplace FlagOp = iota
	FlagsAdd
	FlagsRemove
)

func (f flagSet) apply(op FlagOp, flags []string) flagSet {
	switch op {
	case FlagsReplace:
		return makeFlagSet(flags)
	case FlagsAdd:
		for _, fl := range flags {
			f.add(fl)
		}
	case FlagsRemove:
		for _, fl := range flags {
			f.remove(fl)
		}
	}
	return f
}

// FlagChange is one STORE: how to combine Flags with each message's flags
// and, with CONDSTORE, the condition.
type FlagChange struct {
	Op    FlagOp
	Flags []string
	// UnchangedSince, if not 0, changes only messages whose ModSeq is at
	// most this value (RFC 7162 3.1.3 UNCHANGEDSINCE); the others are
	// left alone and listed in FlagResult.Modified.
	UnchangedSince uint64
}

// FlagResult is what SetFlags did.
type FlagResult struct {
	// Messages are the messages the change applied to, with their flags
	// and ModSeq afterwards (also those whose flags it left as they were),
	// in the order of the UIDs given. Missing UIDs are skipped.
	Messages []MessageInfo
	// Modified lists the UIDs UnchangedSince kept from changing.
	Modified []uint32
}
