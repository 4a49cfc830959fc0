package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/internal/probe"
)

var _ datasource.DataSource = (*tlsProbeDataSource)(nil)

// NewTLSProbeDataSource returns the mailstack_tls_probe data source.
func NewTLSProbeDataSource() datasource.DataSource { return &tlsProbeDataSource{} }

type tlsProbeDataSource struct{}

type tlsProbeModel struct {
	ID                  types.String `tfsdk:"id"`
	Address             types.String `tfsdk:"address"`
	Protocol            types.String `tfsdk:"protocol"`
	Mode                types.String `tfsdk:"mode"`
	ServerName          types.String `tfsdk:"server_name"`
	CACertificatesPEM   types.String `tfsdk:"ca_certificates_pem"`
	Greeting            types.String `tfsdk:"greeting"`
	TLSVersion          types.String `tfsdk:"tls_version"`
	CipherSuite         types.String `tfsdk:"cipher_suite"`
	PeerCertificatesPEM types.String `tfsdk:"peer_certificates_pem"`
	Fingerprint         types.String `tfsdk:"fingerprint_sha256"`
	NotAfter            types.String `tfsdk:"not_after"`
	Verified            types.Bool   `tfsdk:"verified"`
	VerifyError         types.String `tfsdk:"verify_error"`
}

func (d *tlsProbeDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_tls_probe"
}

func (d *tlsProbeDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Connects to a mail port the way `openssl s_client` does — with implicit TLS, or " +
			"in plain text followed by the protocol's STARTTLS dialogue (SMTP `EHLO`/`STARTTLS`, IMAP `STARTTLS`, " +
			"POP3 `STLS`) — and reports the greeting, the negotiated TLS version and cipher suite, the certificate " +
			"chain the server sent, and whether it verifies. Use it in a `check` block to assert after every apply " +
			"that each port serves the expected certificate. A certificate that does not verify is not an error " +
			"(see `verified`); a port that does not answer or speak TLS is.",
		Attributes: map[string]schema.Attribute{
			// Required
			"address": schema.StringAttribute{
				MarkdownDescription: "`host:port` to connect to, e.g. `127.0.0.1:2465`.",
				Required:            true,
			},
			"protocol": schema.StringAttribute{
				MarkdownDescription: "Protocol spoken before and around TLS: " + quoted(probe.Protocols) + ".",
				Required:            true,
				Validators:          []validator.String{stringvalidator.OneOf(probe.Protocols...)},
			},
			"mode": schema.StringAttribute{
				MarkdownDescription: "`implicit` (TLS from the first byte) or `starttls` (plain text, then the " +
					"protocol's upgrade command).",
				Required:   true,
				Validators: []validator.String{stringvalidator.OneOf(probe.Modes...)},
			},
			// Optional
			"server_name": schema.StringAttribute{
				MarkdownDescription: "Name sent as SNI and verified against the certificate. Defaults to the host " +
					"part of `address` (no SNI is sent for an IP address).",
				Optional: true,
			},
			"ca_certificates_pem": schema.StringAttribute{
				MarkdownDescription: "PEM certificates to verify the chain against, such as " +
					"`mailstack_keystore.mx.certificate_pem` for a self-signed certificate. Defaults to the system's roots.",
				Optional: true,
			},
			// Computed
			"id": schema.StringAttribute{
				MarkdownDescription: "`<protocol>+<mode>://<address>`.",
				Computed:            true,
			},
			"greeting": schema.StringAttribute{
				MarkdownDescription: "The server's first line: the SMTP `220`, IMAP `* OK` or POP3 `+OK` greeting.",
				Computed:            true,
			},
			"tls_version": schema.StringAttribute{
				MarkdownDescription: "Negotiated TLS version, e.g. `TLS 1.3`.",
				Computed:            true,
			},
			"cipher_suite": schema.StringAttribute{
				MarkdownDescription: "Negotiated cipher suite, by IANA name.",
				Computed:            true,
			},
			"peer_certificates_pem": schema.StringAttribute{
				MarkdownDescription: "The certificates the server sent, leaf first, as PEM.",
				Computed:            true,
			},
			"fingerprint_sha256": schema.StringAttribute{
				MarkdownDescription: "SHA-256 fingerprint of the leaf certificate as `keytool -list` prints it " +
					"(compare with `mailstack_keystore.<name>.fingerprint_sha256`).",
				Computed: true,
			},
			"not_after": schema.StringAttribute{
				MarkdownDescription: "Expiry of the leaf certificate (RFC 3339).",
				Computed:            true,
			},
			"verified": schema.BoolAttribute{
				MarkdownDescription: "Whether the chain verifies for `server_name` against `ca_certificates_pem` " +
					"(or the system roots).",
				Computed: true,
			},
			"verify_error": schema.StringAttribute{
				MarkdownDescription: "Why the chain does not verify; empty when it does.",
				Computed:            true,
			},
		},
	}
}

func (d *tlsProbeDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m tlsProbeModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	opts := probe.Options{
		Address:    m.Address.ValueString(),
		Protocol:   m.Protocol.ValueString(),
		Mode:       m.Mode.ValueString(),
		ServerName: m.ServerName.ValueString(),
		Timeout:    10 * time.Second,
	}
	if pemText := m.CACertificatesPEM.ValueString(); !m.CACertificatesPEM.IsNull() {
		roots, err := certPool(pemText)
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("ca_certificates_pem"), "Invalid CA Certificates", err.Error())
			return
		}
		opts.Roots = roots
	}
	res, err := probe.Probe(ctx, opts)
	if err != nil {
		summary := "Unable to Probe " + opts.Address
		detail := fmt.Sprintf("%s %s probe of %s failed at %s", opts.Protocol, opts.Mode, opts.Address, err)
		if hint := modeHint(ctx, opts, err); hint != "" {
			resp.Diagnostics.AddAttributeError(path.Root("mode"), summary, detail+"\n\n"+hint)
			return
		}
		resp.Diagnostics.AddError(summary, detail)
		return
	}
	m.ID = types.StringValue(fmt.Sprintf("%s+%s://%s", opts.Protocol, opts.Mode, opts.Address))
	m.Greeting = types.StringValue(res.Greeting)
	m.TLSVersion = types.StringValue(res.Version)
	m.CipherSuite = types.StringValue(res.CipherSuite)
	var chain strings.Builder
	for _, c := range res.Chain {
		_ = pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	m.PeerCertificatesPEM = types.StringValue(chain.String())
	m.Fingerprint, m.NotAfter = types.StringValue(""), types.StringValue("")
	if len(res.Chain) > 0 {
		m.Fingerprint = types.StringValue(keystore.Fingerprint(res.Chain[0]))
		m.NotAfter = types.StringValue(res.Chain[0].NotAfter.UTC().Format(time.RFC3339))
	}
	m.Verified = types.BoolValue(res.Verified())
	m.VerifyError = types.StringValue(res.VerifyError)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// modeHint says which mode would work when a probe failed in the wrong
// one: a server that greets in plain text when the probe expects a TLS
// handshake speaks STARTTLS; one that stays silent for a STARTTLS probe
// but completes an implicit TLS handshake speaks implicit TLS. "" when
// the mode is not what failed.
func modeHint(ctx context.Context, o probe.Options, err error) string {
	var failed *probe.Error
	if !errors.As(err, &failed) {
		return ""
	}
	switch {
	case o.Mode == probe.Implicit && failed.Step == "handshake":
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) && printable(rh.RecordHeader[:]) {
			return fmt.Sprintf("The server answered in plain text (%q...): this port speaks STARTTLS, or no TLS. "+
				"Try mode = \"starttls\".", rh.RecordHeader[:])
		}
	case o.Mode == probe.StartTLS && (failed.Step == "greeting" || failed.Step == "starttls"):
		o.Mode, o.Timeout = probe.Implicit, 5*time.Second
		_, err := probe.Probe(ctx, o)
		if again := (*probe.Error)(nil); err == nil || errors.As(err, &again) && again.Step != "dial" && again.Step != "handshake" {
			return "This port speaks implicit TLS: a TLS handshake from the first byte succeeds. Try mode = \"implicit\"."
		}
	}
	return ""
}

// printable reports whether b is text a mail server greets with.
func printable(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\r' && c != '\n' || c > '~' {
			return false
		}
	}
	return true
}

// certPool parses PEM certificates; other PEM blocks are skipped, and no
// certificate at all is an error.
func certPool(text string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	rest := []byte(text)
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	return pool, nil
}
