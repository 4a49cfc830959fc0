package imapserver

import (
	"github.com/emersion/go-imap/v2"
	"github.com/mailstack/terraform-provider-mailstack/third_party/go-imap/internal/imapwire"
)

// QuotaResource is one resource of a quota root (RFC 9208 5): its usage
// and limit, in the resource's unit (KiB for STORAGE).
type QuotaResource struct {
	Type         imap.QuotaResourceType
	Usage, Limit int64
}

// SessionQuota is an IMAP session which supports QUOTA (RFC 9208):
// GETQUOTAROOT and GETQUOTA. Limits are set by the administrator, so
// SETQUOTA is refused (no QUOTASET).
type SessionQuota interface {
	Session

	// QuotaRoots returns the quota roots of a mailbox; none if it is
	// under no quota.
	QuotaRoots(mailbox string) ([]string, error)
	// Quota returns the resources of a quota root.
	Quota(root string) ([]QuotaResource, error)
}

func (c *Conn) handleGetQuotaRoot(dec *imapwire.Decoder) error {
	var mailbox string
	if !dec.ExpectSP() || !dec.ExpectMailbox(&mailbox) || !dec.ExpectCRLF() {
		return dec.Err()
	}
	sess, err := c.quotaSession()
	if err != nil {
		return err
	}
	roots, err := sess.QuotaRoots(mailbox)
	if err != nil {
		return err
	}
	if err := c.writeQuotaRoot(mailbox, roots); err != nil {
		return err
	}
	for _, root := range roots {
		res, err := sess.Quota(root)
		if err != nil {
			return err
		}
		if err := c.writeQuota(root, res); err != nil {
			return err
		}
	}
	return nil
}

func (c *Conn) handleGetQuota(dec *imapwire.Decoder) error {
	var root string
	if !dec.ExpectSP() || !dec.ExpectAString(&root) || !dec.ExpectCRLF() {
		return dec.Err()
	}
	sess, err := c.quotaSession()
	if err != nil {
		return err
	}
	res, err := sess.Quota(root)
	if err != nil {
		return err
	}
	return c.writeQuota(root, res)
}

func (c *Conn) handleSetQuota(dec *imapwire.Decoder) error {
	dec.DiscardLine()
	if _, err := c.quotaSession(); err != nil {
		return err
	}
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNoPerm, Text: "Quotas are set by the administrator"}
}

func (c *Conn) quotaSession() (SessionQuota, error) {
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return nil, err
	}
	sess, ok := c.session.(SessionQuota)
	if !ok || !c.server.options.caps().Has(imap.CapQuota) {
		return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "QUOTA is not supported"}
	}
	return sess, nil
}

func (c *Conn) writeQuotaRoot(mailbox string, roots []string) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("QUOTAROOT").SP().Mailbox(mailbox)
	for _, root := range roots {
		enc.SP().String(root)
	}
	return enc.CRLF()
}

func (c *Conn) writeQuota(root string, res []QuotaResource) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("QUOTA").SP().String(root).SP()
	enc.List(len(res), func(i int) {
		enc.Atom(string(res[i].Type)).SP().Number64(res[i].Usage).SP().Number64(res[i].Limit)
	})
	return enc.CRLF()
}
