package smtp

import (
	"net"
	"time"
)

// appendReceived appends the Received: trace header (RFC 5321 section 4.4)
// for the current transaction to b:
//
//	Received: from client.example ([192.0.2.1])
//		by mail.example.com with ESMTPS (TLS 1.3 TLS_AES_128_GCM_SHA256)
//		for <bob@example.com>; Mon, 02 Jan 2006 15:04:05 -0700
//
// The protocol is ESMTP, ESMTPS with TLS, ESMTPA / ESMTPSA after AUTH
// (RFC 3848). The "for" clause names the recipient only when there is
// exactly one, so that Bcc recipients are not disclosed to each other.
func (s *session) appendReceived(b []byte, now time.Time) []byte {
	b = append(b, "Received: from "...)
	b = appendSanitized(b, s.conn.Hostname())
	b = append(b, " ("...)
	b = append(b, s.remoteIP...)
	b = append(b, ")\r\n\tby "...)
	b = append(b, s.srv.opts.Hostname...)
	b = append(b, " with ESMTP"...)
	if s.tls != "" {
		b = append(b, 'S')
	}
	if s.user != "" {
		b = append(b, 'A')
	}
	if s.tls != "" {
		b = append(b, " ("...)
		b = append(b, s.tls...)
		b = append(b, ')')
	}
	if len(s.rcpts) == 1 {
		b = append(b, "\r\n\tfor <"...)
		b = appendSanitized(b, s.rcpts[0])
		b = append(b, '>')
	}
	b = append(b, ";\r\n\t"...)
	b = now.AppendFormat(b, time.RFC1123Z)
	return append(b, "\r\n"...)
}

// appendSanitized appends str with anything but printable ASCII other than
// parentheses, angle brackets and semicolons replaced by '?', so that a
// client-chosen name cannot break the header's structure.
func appendSanitized(b []byte, str string) []byte {
	for i := 0; i < len(str); i++ {
		c := str[i]
		switch {
		case c <= ' ' || c >= 0x7f, c == '(', c == ')', c == '<', c == '>', c == ';':
			c = '?'
		}
		b = append(b, c)
	}
	return b
}

// addressLiteral formats addr's IP as an RFC 5321 section 4.1.3 address
// literal.
func addressLiteral(addr net.Addr) string {
	var ip net.IP
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip = a.IP
	default:
		host, _, err := net.SplitHostPort(addr.String())
		if err != nil {
			return "[unknown]"
		}
		ip = net.ParseIP(host)
	}
	switch {
	case ip == nil:
		return "[unknown]"
	case ip.To4() != nil:
		return "[" + ip.String() + "]"
	}
	return "[IPv6:" + ip.String() + "]"
}
