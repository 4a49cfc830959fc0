package outbound

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/queue"
)

// complete records the outcome of one attempt of job j: replies has one
// reply per recipient (nil where none came), err is why the attempt ended
// early. It is committed before the caller goes on; a message whose last
// recipient was delivered leaves the queue in the same commit.
func (e *Engine) complete(j *job, replies []*Reply, err error, remote string) {
	e.record(e.q.Settle, j, replies, err, remote)
}

// completeLater is complete for a sender that went on with its next
// message and wrote the replies to the send log first: the commit may wait
// a little to share its fsync (queue.SettleLater).
func (e *Engine) completeLater(j *job, replies []*Reply, err error, remote string) {
	e.record(e.q.SettleLater, j, replies, err, remote)
}

func (e *Engine) record(settle func(string, func(*queue.Entry) error) (queue.Entry, bool, error), j *job, replies []*Reply, err error, remote string) {
	defer e.jobDone(j)
	if j.it.gone.Load() {
		return
	}
	now := e.opts.Now()
	_, removed, uerr := settle(j.entry.ID, func(en *queue.Entry) error {
		en.LastAttempt = now
		for i, addr := range j.rcpts {
			r := en.Recipient(addr)
			if r == nil || r.State != queue.Queued {
				continue
			}
			r.Attempts++
			var rep *Reply
			if i < len(replies) {
				rep = replies[i]
			}
			var pe *permanentError
			switch {
			case rep != nil && rep.Code/100 == 2:
				r.State, r.Reply, r.RemoteMTA, r.LastError = queue.Delivered, rep.String(), remote, ""
			case rep != nil && rep.Permanent():
				r.State, r.Reply, r.RemoteMTA = queue.Failed, rep.String(), remote
				r.LastError = remote + ": " + rep.String()
			case rep != nil:
				r.LastError = remote + ": " + rep.String()
			case errors.As(err, &pe):
				r.State, r.Reply, r.LastError = queue.Failed, pe.reply.String(), pe.reply.String()
			case err != nil:
				r.LastError = oneLine(err)
			default:
				r.LastError = remote + ": the attempt ended without a reply"
			}
		}
		return nil
	})
	if uerr != nil && !errors.Is(uerr, queue.ErrNotFound) {
		e.log.Error("recording delivery results", "id", j.entry.ID, "err", uerr)
	}
	if removed {
		// Every recipient is delivered: finish finds nothing left to do.
		j.it.gone.Store(true)
		e.forget(j.it)
	}
}

// jobDone counts a job of j's message as finished; the last one decides
// what happens to the message, and only then does the message count as
// idle for the scheduler.
func (e *Engine) jobDone(j *job) {
	e.mu.Lock()
	last := j.it.running == 1
	if !last {
		j.it.running--
	}
	e.mu.Unlock()
	if last {
		e.finish(j.it)
		e.mu.Lock()
		j.it.running--
		_, queued := e.items[j.it.id]
		e.mu.Unlock()
		if queued {
			// Another attempt is due later: the scheduler's timer must
			// know. A message that left the queue needs no look at it.
			e.Wake()
		}
	}
}

// deliverLocal stores the message for its local recipients, one at a
// time, so that one unknown user does not hold up the others.
func (e *Engine) deliverLocal(j *job) {
	f, err := e.q.Open(j.entry.ID)
	if err != nil {
		e.complete(j, nil, err, "local")
		return
	}
	body, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		e.complete(j, nil, err, "local")
		return
	}
	replies := make([]*Reply, len(j.rcpts))
	for i, r := range j.rcpts {
		err := e.opts.Local.Deliver(e.ctx, []string{r}, body)
		switch {
		case err == nil:
			replies[i] = &Reply{Code: 250, Enhanced: "2.0.0", Text: "delivered to the local mailbox"}
		case e.opts.LocalPermanent(err):
			replies[i] = &Reply{Code: 550, Enhanced: "5.1.1", Text: err.Error()}
		default:
			replies[i] = &Reply{Code: 451, Enhanced: "4.3.0", Text: err.Error()}
		}
	}
	e.complete(j, replies, nil, e.set.Load().hostname)
}

// backoff is the wait before attempt n+1 after n failed attempts.
func backoff(r config.RetrySchedule, n int) time.Duration {
	d := r.Min
	for i := 1; i < n && d < r.Max; i++ {
		d *= 2
	}
	return min(d, r.Max)
}

// finish decides about a message after all its jobs ran: remove it when
// every recipient is done (returning failures to the sender), give up on
// it when it is too old, else schedule the next attempt and send the
// delay warning when it is due.
func (e *Engine) finish(it *item) {
	if it.gone.Load() {
		return
	}
	en, err := e.q.Entry(it.id)
	if err != nil {
		e.forget(it)
		if !errors.Is(err, queue.ErrNotFound) {
			e.log.Error("reading queue entry", "id", it.id, "err", err)
		}
		return
	}
	set := e.set.Load()
	now := e.opts.Now()
	age := now.Sub(en.Created)
	if !en.Done() && age >= set.retry.GiveUpAfter {
		en, err = e.q.Update(it.id, func(en *queue.Entry) error {
			for i, r := range en.Recipients {
				if r.State == queue.Queued {
					en.Recipients[i].State = queue.Failed
					en.Recipients[i].LastError = fmt.Sprintf("gave up after %s in the queue; last error: %s", set.retry.GiveUpAfter, r.LastError)
				}
			}
			return nil
		})
		if err != nil {
			e.log.Error("giving up on a queued message", "id", it.id, "err", err)
			return
		}
	}
	if en.Done() {
		var failed []queue.Recipient
		for _, r := range en.Recipients {
			if r.State == queue.Failed {
				failed = append(failed, r)
			}
		}
		if len(failed) > 0 {
			e.notify(&en, failed, actionFailed)
		}
		if err := e.q.Remove(it.id); err != nil && !errors.Is(err, queue.ErrNotFound) {
			e.log.Error("removing a delivered message from the queue", "id", it.id, "err", err)
			return
		}
		e.forget(it)
		return
	}
	attempts := 0
	for _, r := range en.Pending() {
		attempts = max(attempts, r.Attempts)
	}
	next := now.Add(backoff(set.retry, attempts))
	if deadline := en.Created.Add(set.retry.GiveUpAfter); next.After(deadline) {
		next = deadline
	}
	warn := set.retry.DelayWarning > 0 && age >= set.retry.DelayWarning && !en.DelayWarned
	en, err = e.q.Update(it.id, func(en *queue.Entry) error {
		en.NextAttempt = next
		if warn {
			en.DelayWarned = true
		}
		return nil
	})
	if err != nil {
		e.log.Error("scheduling the next attempt", "id", it.id, "err", err)
	}
	if warn {
		e.notify(&en, en.Pending(), actionDelayed)
	}
	e.mu.Lock()
	it.next = next
	e.mu.Unlock()
}

func (e *Engine) forget(it *item) {
	e.mu.Lock()
	delete(e.items, it.id)
	e.mu.Unlock()
}

// notify sends the sender a delivery status notification about rcpts.
// Nothing is sent for the null sender (RFC 3464 section 2: no DSN about a
// DSN).
func (e *Engine) notify(en *queue.Entry, rcpts []queue.Recipient, action string) {
	if en.From == "" {
		return
	}
	headers := e.originalHeaders(en.ID)
	set := e.set.Load()
	msg := buildDSN(dsnInput{
		reportingMTA: set.hostname, entry: en, rcpts: rcpts, action: action,
		headers: headers, now: e.opts.Now(), retryUntil: en.Created.Add(set.retry.GiveUpAfter),
	})
	if err := e.opts.Local.Deliver(e.ctx, []string{en.From}, msg); err != nil {
		e.log.Error("delivering a delivery status notification to the sender", "id", en.ID, "sender", en.From, "action", action, "err", err)
		return
	}
	e.log.Info("delivery status notification sent", "id", en.ID, "sender", en.From, "action", action, "recipients", len(rcpts))
}

// originalHeaders returns the header section of message id (at most 64
// KiB), for the DSN's text/rfc822-headers part.
func (e *Engine) originalHeaders(id string) []byte {
	f, err := e.q.Open(id)
	if err != nil {
		return nil
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	n, _ := io.ReadFull(f, buf)
	return headerSection(buf[:n])
}
