package imapserver

import (
	"github.com/emersion/go-imap/v2"
	"github.com/mailstack/terraform-provider-mailstack/third_party/go-imap/internal/imapwire"
)

// handleID implements ID (RFC 2971). The client's fields are read and
// dropped: they only identify the client software, and nothing limits
// their number (RFC 2971 3.3 asks clients for at most 30) since nothing is
// kept. The server answers with
// Options.ID, or NIL when it is unset.
func (c *Conn) handleID(dec *imapwire.Decoder) error {
	if !dec.ExpectSP() {
		return dec.Err()
	}
	err := dec.ExpectNList(func() error {
		var field, value string
		if !dec.ExpectString(&field) || !dec.ExpectSP() || !dec.ExpectNString(&value) {
			return dec.Err()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !dec.ExpectCRLF() {
		return dec.Err()
	}

	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("ID").SP()
	fields := idFields(c.server.options.ID)
	if len(fields) == 0 {
		enc.NIL()
	} else {
		enc.List(len(fields), func(i int) { enc.Quoted(fields[i]) })
	}
	return enc.CRLF()
}

// idFields flattens the set fields of data into field, value pairs.
func idFields(data *imap.IDData) []string {
	if data == nil {
		return nil
	}
	var out []string
	for _, f := range []struct{ k, v string }{
		{"name", data.Name}, {"version", data.Version}, {"os", data.OS},
		{"os-version", data.OSVersion}, {"vendor", data.Vendor},
		{"support-url", data.SupportURL}, {"address", data.Address},
		{"date", data.Date}, {"command", data.Command},
		{"arguments", data.Arguments}, {"environment", data.Environment},
	} {
		if f.v != "" {
			out = append(out, f.k, f.v)
		}
	}
	return out
}
