package imap

import (
	"github.com/emersion/go-imap/v2"

	"github.com/mailstack/terraform-provider-mailstack/third_party/go-imap/imapserver"
)

// quotaRoot names the one quota root: the user's quota covers all their
// mailboxes.
const quotaRoot = ""

var _ imapserver.SessionQuota = (*session)(nil)

// QuotaRoots implements GETQUOTAROOT (RFC 9208 4.3.2): every mailbox of a
// user with a quota is under the root "", and none is under one when the
// user has no limit.
func (s *session) QuotaRoots(mailbox string) ([]string, error) {
	if _, err := s.srv.store.ModSeq(s.user, mailbox); err != nil {
		return nil, s.imapError(err, imap.ResponseCodeNonExistent)
	}
	u, err := s.srv.store.User(s.user)
	if err != nil {
		return nil, s.imapError(err, imap.ResponseCodeNonExistent)
	}
	if u.QuotaBytes == 0 {
		return nil, nil
	}
	return []string{quotaRoot}, nil
}

// Quota implements GETQUOTA (RFC 9208 4.3.1) from the user's quota: STORAGE
// in KiB, usage rounded up and the limit down, so that a client never
// thinks it has room the store would refuse.
func (s *session) Quota(root string) ([]imapserver.QuotaResource, error) {
	u, err := s.srv.store.User(s.user)
	if err != nil {
		return nil, s.imapError(err, imap.ResponseCodeNonExistent)
	}
	if root != quotaRoot || u.QuotaBytes == 0 {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "No such quota root"}
	}
	return []imapserver.QuotaResource{{
		Type:  imap.QuotaResourceStorage,
		Usage: (u.UsedBytes + 1023) / 1024,
		Limit: u.QuotaBytes / 1024,
	}}, nil
}
