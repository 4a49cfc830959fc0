package pop3

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// handler runs one command. It writes its replies and returns a non-nil
// error only to end the session (errQuit, or an I/O error).
type handler func(s *session, arg string) error

// commands maps keywords to handlers per state (RFC 1939 sections 4 and 5;
// CAPA is RFC 2449 section 5, STLS RFC 2595 section 4, AUTH RFC 5034).
var commands = map[state]map[string]handler{
	stateAuthorization: {
		"CAPA": (*session).cmdCAPA,
		"STLS": (*session).cmdSTLS,
		"USER": (*session).cmdUSER,
		"PASS": (*session).cmdPASS,
		"AUTH": (*session).cmdAUTH,
		"QUIT": (*session).cmdQUIT,
	},
	stateTransaction: {
		"CAPA": (*session).cmdCAPA,
		"STAT": (*session).cmdSTAT,
		"LIST": (*session).cmdLIST,
		"UIDL": (*session).cmdUIDL,
		"RETR": (*session).cmdRETR,
		"TOP":  (*session).cmdTOP,
		"DELE": (*session).cmdDELE,
		"RSET": (*session).cmdRSET,
		"NOOP": (*session).cmdNOOP,
		"QUIT": (*session).cmdQUIT,
	},
}

// execute parses and runs one command line.
func (s *session) execute(line string) error {
	cmd, err := parseCommand(line)
	if err != nil {
		return s.bad("-ERR " + err.Error())
	}
	h, ok := commands[s.state][cmd.name]
	if !ok {
		for _, other := range commands {
			if _, ok := other[cmd.name]; ok {
				return s.bad("-ERR command not valid in this state")
			}
		}
		return s.bad("-ERR unknown command")
	}
	return h(s, cmd.arg)
}

// message resolves a message-number argument to an index into s.msgs. On
// failure it has replied and returns false.
func (s *session) message(arg string) (int, bool) {
	n, ok := parseNumber(arg)
	switch {
	case !ok:
		s.reply("-ERR invalid message number")
		return 0, false
	case n < 1 || n > len(s.msgs):
		s.reply("-ERR no such message")
		return 0, false
	case s.deleted[n-1]:
		s.replyf("-ERR message %d already deleted", n)
		return 0, false
	}
	return n - 1, true
}

// dropStat returns the number and total size of undeleted messages.
func (s *session) dropStat() (n int, size int64) {
	for i, m := range s.msgs {
		if !s.deleted[i] {
			n++
			size += m.Size
		}
	}
	return n, size
}

// cmdSTAT is RFC 1939 section 5: "+OK nn mm", deleted messages excluded.
func (s *session) cmdSTAT(arg string) error {
	if arg != "" {
		return s.bad("-ERR STAT takes no arguments")
	}
	n, size := s.dropStat()
	s.replyf("+OK %d %d", n, size)
	return nil
}

// cmdLIST is RFC 1939 section 5: a scan listing of one or all undeleted
// messages.
func (s *session) cmdLIST(arg string) error {
	return s.listing(arg, func(i int) string { return fmt.Sprint(s.msgs[i].Size) })
}

// cmdUIDL is RFC 1939 section 7: unique-id listings.
func (s *session) cmdUIDL(arg string) error {
	return s.listing(arg, func(i int) string { return s.msgs[i].UID })
}

// listing answers LIST and UIDL, which differ only in the value per message.
func (s *session) listing(arg string, value func(i int) string) error {
	args := strings.Fields(arg)
	switch len(args) {
	case 0:
		n, size := s.dropStat()
		s.replyf("+OK %d messages (%d octets)", n, size)
		for i := range s.msgs {
			if !s.deleted[i] {
				s.replyf("%d %s", i+1, value(i))
			}
		}
		s.reply(".")
	case 1:
		if i, ok := s.message(args[0]); ok {
			s.replyf("+OK %d %s", i+1, value(i))
		}
	default:
		return s.bad("-ERR too many arguments")
	}
	return nil
}

// cmdRETR is RFC 1939 section 5: the whole message, byte-stuffed.
func (s *session) cmdRETR(arg string) error {
	args := strings.Fields(arg)
	if len(args) != 1 {
		return s.bad("-ERR usage: RETR msg")
	}
	i, ok := s.message(args[0])
	if !ok {
		return nil
	}
	return s.send(i, -1)
}

// cmdTOP is RFC 1939 section 7: the header and the first n body lines.
func (s *session) cmdTOP(arg string) error {
	args := strings.Fields(arg)
	if len(args) != 2 {
		return s.bad("-ERR usage: TOP msg n")
	}
	i, ok := s.message(args[0])
	if !ok {
		return nil
	}
	n, ok := parseNumber(args[1])
	if !ok {
		s.reply("-ERR invalid line count")
		return nil
	}
	return s.send(i, n)
}

// copyBuffers recycles the RETR copy buffers across sessions.
var copyBuffers = sync.Pool{New: func() any { return new([32 << 10]byte) }}

// send writes message i as a multi-line response: all of it when lines is
// negative, else its header and first lines body lines. Once "+OK" is out a
// failure can no longer be reported, so a read error ends the session
// rather than letting the client take a truncated message for a whole one.
func (s *session) send(i, lines int) error {
	m := s.msgs[i]
	rc, err := s.drop.Open(m.UID)
	if err != nil {
		s.internal(fmt.Errorf("opening message %q: %w", m.UID, err))
		s.reply("-ERR [SYS/TEMP] message not available, try again later")
		return nil
	}
	defer rc.Close()
	if lines < 0 {
		s.replyf("+OK %d octets", m.Size)
	} else {
		s.reply("+OK top of message follows")
	}
	dw := newDotWriter(s.w)
	if lines < 0 {
		buf := copyBuffers.Get().(*[32 << 10]byte)
		// Hide any WriterTo so the pooled buffer is used.
		_, err = io.CopyBuffer(dw, struct{ io.Reader }{rc}, buf[:])
		copyBuffers.Put(buf)
	} else {
		err = copyTop(dw, rc, lines)
	}
	if err == nil {
		err = dw.Close()
	}
	if err != nil {
		s.internal(fmt.Errorf("sending message %q: %w", m.UID, err))
		return err
	}
	if lines < 0 {
		s.retrieved++
	}
	return nil
}

// cmdDELE is RFC 1939 section 5: mark a message; UPDATE removes it.
func (s *session) cmdDELE(arg string) error {
	args := strings.Fields(arg)
	if len(args) != 1 {
		return s.bad("-ERR usage: DELE msg")
	}
	i, ok := s.message(args[0])
	if !ok {
		return nil
	}
	s.deleted[i] = true
	s.ndeleted++
	s.replyf("+OK message %d deleted", i+1)
	return nil
}

// cmdRSET is RFC 1939 section 5: unmark every deleted message.
func (s *session) cmdRSET(arg string) error {
	if arg != "" {
		return s.bad("-ERR RSET takes no arguments")
	}
	clear(s.deleted)
	s.ndeleted = 0
	n, size := s.dropStat()
	s.replyf("+OK maildrop has %d messages (%d octets)", n, size)
	return nil
}

// cmdNOOP is RFC 1939 section 5.
func (s *session) cmdNOOP(arg string) error {
	if arg != "" {
		return s.bad("-ERR NOOP takes no arguments")
	}
	s.reply("+OK")
	return nil
}

// cmdQUIT is RFC 1939 sections 4 and 6. From TRANSACTION it enters the
// UPDATE state: the marked messages are committed, unless the server is
// forcing sessions closed. Either way the session ends.
func (s *session) cmdQUIT(string) error {
	signoff := "+OK POP3 server signing off"
	if h := s.srv.opts.Hostname; h != "" {
		signoff = "+OK " + h + " POP3 server signing off"
	}
	if s.state != stateTransaction {
		s.reply(signoff)
		return errQuit
	}
	if err := s.ctx.Err(); err != nil {
		return err
	}
	uids := make([]string, 0, s.ndeleted)
	for i, m := range s.msgs {
		if s.deleted[i] {
			uids = append(uids, m.UID)
		}
	}
	if err := s.drop.Commit(uids); err != nil {
		// RFC 1939 section 6 allows -ERR when some deletions failed.
		s.internal(fmt.Errorf("committing %d deletions: %w", len(uids), err))
		s.reply("-ERR [SYS/TEMP] some deleted messages not removed")
		return errQuit
	}
	s.committed = len(uids)
	s.replyf("%s (%d messages left)", signoff, len(s.msgs)-len(uids))
	return errQuit
}
