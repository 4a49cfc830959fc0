package outbound

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/runtime/queue"
)

// DSN actions (RFC 3464 section 2.3.3).
const (
	actionFailed  = "failed"
	actionDelayed = "delayed"
)

type dsnInput struct {
	reportingMTA string
	entry        *queue.Entry
	rcpts        []queue.Recipient
	action       string
	headers      []byte
	now          time.Time
	retryUntil   time.Time
}

// buildDSN writes a delivery status notification (RFC 3464) as a
// multipart/report (RFC 6522): a human-readable part, the
// message/delivery-status part and the original message's headers.
func buildDSN(in dsnInput) []byte {
	var rnd [12]byte
	rand.Read(rnd[:])
	boundary := "dsn-" + hex.EncodeToString(rnd[:])
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\r\n", args...) }

	subject := "Undelivered Mail Returned to Sender"
	if in.action == actionDelayed {
		subject = "Delayed Mail (still being retried)"
	}
	w("From: Mail Delivery System <MAILER-DAEMON@%s>", in.reportingMTA)
	w("To: <%s>", in.entry.From)
	w("Subject: %s", subject)
	w("Date: %s", in.now.Format(time.RFC1123Z))
	w("Message-ID: <%s.%s@%s>", in.entry.ID, hex.EncodeToString(rnd[:4]), in.reportingMTA)
	w("Auto-Submitted: auto-replied")
	w("MIME-Version: 1.0")
	w("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"%s\"", boundary)
	w("")
	w("This is a MIME-encapsulated delivery status notification.")
	w("")
	w("--%s", boundary)
	w("Content-Type: text/plain; charset=utf-8")
	w("")
	w("This is the mail system at %s.", in.reportingMTA)
	w("")
	if in.action == actionDelayed {
		w("Your message, queued %s, could not be delivered yet to the", in.entry.Created.Format(time.RFC1123Z))
		w("recipients below. It will be retried until %s; you do not", in.retryUntil.Format(time.RFC1123Z))
		w("need to send it again.")
	} else {
		w("Your message, queued %s, could not be delivered to the", in.entry.Created.Format(time.RFC1123Z))
		w("recipients below. It has been given up on.")
	}
	w("")
	for _, r := range in.rcpts {
		w("<%s>: %s", r.Address, diagnostic(r))
	}
	w("")
	w("--%s", boundary)
	w("Content-Type: message/delivery-status")
	w("")
	w("Reporting-MTA: dns; %s", in.reportingMTA)
	w("X-Mailstack-Queue-ID: %s", in.entry.ID)
	w("Arrival-Date: %s", in.entry.Created.Format(time.RFC1123Z))
	for _, r := range in.rcpts {
		w("")
		w("Final-Recipient: rfc822; %s", r.Address)
		w("Action: %s", in.action)
		w("Status: %s", statusCode(r, in.action))
		if mta := r.RemoteMTA; mta != "" {
			if host, _, ok := strings.Cut(mta, "["); ok {
				mta = host
			}
			w("Remote-MTA: dns; %s", mta)
		}
		if r.Reply != "" {
			w("Diagnostic-Code: smtp; %s", r.Reply)
		}
		if !in.entry.LastAttempt.IsZero() {
			w("Last-Attempt-Date: %s", in.entry.LastAttempt.Format(time.RFC1123Z))
		}
		if in.action == actionDelayed {
			w("Will-Retry-Until: %s", in.retryUntil.Format(time.RFC1123Z))
		}
	}
	w("")
	w("--%s", boundary)
	w("Content-Type: text/rfc822-headers")
	w("")
	b.Write(in.headers)
	if len(in.headers) > 0 && !bytes.HasSuffix(in.headers, []byte("\r\n")) {
		w("")
	}
	w("")
	w("--%s--", boundary)
	return b.Bytes()
}

// diagnostic is the human-readable reason for one recipient.
func diagnostic(r queue.Recipient) string {
	if r.LastError != "" {
		return r.LastError
	}
	return r.Reply
}

// statusCode is the RFC 3463 status of a recipient: the enhanced code of
// its last reply when there is one of the right class, else 5.0.0 or 4.0.0.
func statusCode(r queue.Recipient, action string) string {
	class := "5"
	if action == actionDelayed {
		class = "4"
	}
	if f := strings.Fields(r.Reply); len(f) > 1 && strings.HasPrefix(f[1], class+".") && isEnhanced(f[1], int(f[0][0]-'0')*100) {
		return f[1]
	}
	return class + ".0.0"
}

// headerSection returns msg up to and including the blank line that ends
// its header section (or all of msg if it has none in the bytes given).
func headerSection(msg []byte) []byte {
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		return msg[:i+2]
	}
	return msg
}
