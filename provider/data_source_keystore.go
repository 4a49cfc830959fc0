package provider

import (
	"context"
	"crypto/x509"
	"fmt"
	"math"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

var (
	_ datasource.DataSource              = (*keystoreDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*keystoreDataSource)(nil)
)

// NewKeystoreDataSource returns the mailstack_keystore data source.
func NewKeystoreDataSource() datasource.DataSource { return &keystoreDataSource{} }

type keystoreDataSource struct{ data *providerData }

type keystoreDataModel struct {
	ID       types.String         `tfsdk:"id"`
	Path     types.String         `tfsdk:"path"`
	Password types.String         `tfsdk:"password"`
	Type     types.String         `tfsdk:"type"`
	Entries  []keystoreEntryModel `tfsdk:"entries"`
}

type keystoreEntryModel struct {
	Alias          types.String `tfsdk:"alias"`
	Kind           types.String `tfsdk:"kind"`
	Subject        types.String `tfsdk:"subject"`
	Issuer         types.String `tfsdk:"issuer"`
	DNSNames       types.List   `tfsdk:"dns_names"`
	Serial         types.String `tfsdk:"serial"`
	Fingerprint    types.String `tfsdk:"fingerprint_sha256"`
	NotBefore      types.String `tfsdk:"not_before"`
	NotAfter       types.String `tfsdk:"not_after"`
	KeyAlgorithm   types.String `tfsdk:"key_algorithm"`
	KeySize        types.Int64  `tfsdk:"key_size"`
	ChainLength    types.Int64  `tfsdk:"chain_length"`
	CertificatePEM types.String `tfsdk:"certificate_pem"`
	ChainPEM       types.String `tfsdk:"chain_pem"`
	DaysRemaining  types.Int64  `tfsdk:"days_remaining"`
}

func (d *keystoreDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_keystore"
}

func (d *keystoreDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	computed := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{MarkdownDescription: desc, Computed: true}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads a JKS or PKCS#12 keystore on the target host and lists its entries, as " +
			"`keytool -list -v` does: for each entry its alias, kind, certificate names, serial, SHA-256 " +
			"fingerprint, validity and key, with the whole chain and the days left. Private keys are not decrypted, " +
			"so no key password is needed.",
		Attributes: map[string]schema.Attribute{
			// Required
			"path": schema.StringAttribute{
				MarkdownDescription: "Keystore file on the target host.",
				Required:            true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"password": schema.StringAttribute{
				MarkdownDescription: "Store password (keytool's `-storepass`), which verifies the file's integrity.",
				Required:            true,
				Sensitive:           true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			// Optional
			"type": schema.StringAttribute{
				MarkdownDescription: "Expected format: " + keystoreTypeEnum.describe() + ". When set, a file of the other " +
					"format is an error; when not, it is the format found (detected from the bytes).",
				Optional:   true,
				Computed:   true,
				Validators: []validator.String{keystoreTypeEnum.validator()},
			},
			// Computed
			"id": computed("The keystore's path."),
			"entries": schema.ListNestedAttribute{
				MarkdownDescription: "The entries, sorted by alias.",
				Computed:            true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"alias": computed("Alias, lower case as keytool stores it."),
					"kind": computed("`PrivateKeyEntry` or `trustedCertEntry`, as keytool's \"Entry type\" names " +
						"them."),
					"subject": computed("Subject of the (leaf) certificate, as keytool's \"Owner:\" prints it " +
						"(`CN=..., OU=..., O=...`)."),
					"issuer": computed("Issuer of the (leaf) certificate, as keytool's \"Issuer:\"."),
					"dns_names": schema.ListAttribute{
						MarkdownDescription: "DNS subject alternative names of the (leaf) certificate.",
						Computed:            true,
						ElementType:         types.StringType,
					},
					"serial":             computed("Serial number in lower-case hex, as keytool's \"Serial number:\"."),
					"fingerprint_sha256": computed("SHA-256 fingerprint, as keytool's \"SHA256:\" (`AB:CD:...`)."),
					"not_before":         computed("Start of the (leaf) certificate's validity, RFC 3339."),
					"not_after":          computed("End of the (leaf) certificate's validity, RFC 3339."),
					"key_algorithm": computed("Algorithm of the certificate's public key: `RSA`, `ECDSA` or " +
						"`Ed25519` (the names the `mailstack_keystore` key block uses)."),
					"key_size": schema.Int64Attribute{
						MarkdownDescription: "Key size in bits (the curve's size for ECDSA).",
						Computed:            true,
					},
					"chain_length": schema.Int64Attribute{
						MarkdownDescription: "Certificates in the entry's chain, as keytool's \"Certificate chain " +
							"length\"; 1 for a trusted certificate.",
						Computed: true,
					},
					"certificate_pem": computed("The (leaf) certificate, PEM."),
					"chain_pem": computed("The entry's whole certificate chain, leaf first, PEM; the certificate " +
						"for a trusted entry."),
					"days_remaining": schema.Int64Attribute{
						MarkdownDescription: "Whole days until the (leaf) certificate's `not_after`; negative once it " +
							"has expired. For a `check` block: `days_remaining > 14`.",
						Computed: true,
					},
				}},
			},
		},
	}
}

func (d *keystoreDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = configuredData(req.ProviderData, &resp.Diagnostics)
}

func (d *keystoreDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m keystoreDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	file := m.Path.ValueString()
	ks, err := keystore.Open(ctx, d.data.file(file), []byte(m.Password.ValueString()))
	if err != nil {
		addKeystoreError(&resp.Diagnostics, "Unable to Read Keystore", file, "(all entries)", err)
		return
	}
	if want := m.Type.ValueString(); want != "" && want != string(ks.Type()) {
		resp.Diagnostics.AddAttributeError(path.Root("type"), "Keystore Type Mismatch",
			fmt.Sprintf("%s is a %s keystore, not %s.", file, ks.Type(), want))
		return
	}
	m.ID = m.Path
	m.Type = types.StringValue(string(ks.Type()))
	m.Entries = []keystoreEntryModel{}
	for _, e := range ks.Entries() {
		em, diags := describeEntry(ctx, e, d.data.now())
		resp.Diagnostics.Append(diags...)
		m.Entries = append(m.Entries, em)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// describeEntry lists an entry as keytool -list -v does.
func describeEntry(ctx context.Context, e keystore.Entry, now time.Time) (keystoreEntryModel, diag.Diagnostics) {
	c := e.Chain[0]
	names, diags := types.ListValueFrom(ctx, types.StringType, nonNil(c.DNSNames))
	alg, bits := keyDescription(c.PublicKey)
	return keystoreEntryModel{
		Alias:          types.StringValue(e.Alias),
		Kind:           types.StringValue(e.Kind.String()),
		Subject:        types.StringValue(keytoolDN(c.RawSubject)),
		Issuer:         types.StringValue(keytoolDN(c.RawIssuer)),
		DNSNames:       names,
		Serial:         types.StringValue(c.SerialNumber.Text(16)),
		Fingerprint:    types.StringValue(keystore.Fingerprint(c)),
		NotBefore:      types.StringValue(rfc3339(c.NotBefore)),
		NotAfter:       types.StringValue(rfc3339(c.NotAfter)),
		KeyAlgorithm:   types.StringValue(alg),
		KeySize:        types.Int64Value(int64(bits)),
		ChainLength:    types.Int64Value(int64(len(e.Chain))),
		CertificatePEM: types.StringValue(string(keystore.EncodeCertificatesPEM([]*x509.Certificate{c}))),
		ChainPEM:       types.StringValue(string(keystore.EncodeCertificatesPEM(e.Chain))),
		DaysRemaining:  types.Int64Value(int64(math.Floor(c.NotAfter.Sub(now).Hours() / 24))),
	}, diags
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
