package provider

import (
	"context"
	"maps"

	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

// The store part of mailstack_server: where its users and mail live
// (store, postgres_dsn, postgres_dsn_wo, postgres_dsn_wo_version). It is
// kept apart from resource_server.go, which owns the runtime's life.

var _ resource.ResourceWithConfigValidators = (*serverResource)(nil)

// serverStoreModel is embedded in serverModel.
type serverStoreModel struct {
	Store                types.String `tfsdk:"store"`
	PostgresDSN          types.String `tfsdk:"postgres_dsn"`
	PostgresDSNWO        types.String `tfsdk:"postgres_dsn_wo"`
	PostgresDSNWOVersion types.Int64  `tfsdk:"postgres_dsn_wo_version"`
}

// withStoreAttributes adds the store attributes to the server's.
func withStoreAttributes(attrs map[string]schema.Attribute) map[string]schema.Attribute {
	maps.Copy(attrs, map[string]schema.Attribute{
		// Optional
		"store": schema.StringAttribute{
			MarkdownDescription: "Where the server keeps users, mailboxes and mail: " + quoted(config.Stores) + ". " +
				"`embedded` (the default) is Maildir folders and an index in the server's state directory, for one " +
				"host. `postgres` is a PostgreSQL database, which several servers on several hosts can name to serve " +
				"the same users: UIDs come from the database, and a message delivered through one server shows up in " +
				"IMAP IDLE sessions on the others within a second. Changing it switches the running server to the " +
				"other store in place (a database that cannot be reached is refused and nothing changes); mail is not " +
				"moved: `terraform-provider-mailstack runtime store copy` copies an embedded store into PostgreSQL.",
			Optional:   true,
			Computed:   true,
			Default:    stringdefault.StaticString(config.StoreEmbedded),
			Validators: []validator.String{stringvalidator.OneOf(config.Stores...)},
		},
		"postgres_dsn": schema.StringAttribute{
			MarkdownDescription: "Connection string of the PostgreSQL database when `store` is `postgres`, in libpq's " +
				"keyword/value form (`host=db.example.com dbname=mail user=mailstack password=... sslmode=verify-full " +
				"sslrootcert=/etc/mail/db-ca.pem`) or as a URL; files it names are on the server's host. The role " +
				"needs to be able to create the schema `mailstack` (owning the database is simplest); the runtime " +
				"creates and migrates it. Kept in state (sensitive); the runtime never returns it. Set either this or " +
				"`postgres_dsn_wo`.",
			Optional:  true,
			Sensitive: true,
		},
		"postgres_dsn_wo": schema.StringAttribute{
			MarkdownDescription: "The connection string, write-only: sent to the runtime on every apply, never " +
				"stored in state. Needs Terraform 1.11 or later; change `postgres_dsn_wo_version` with it.",
			Optional:  true,
			Sensitive: true,
			WriteOnly: true,
		},
		"postgres_dsn_wo_version": schema.Int64Attribute{
			MarkdownDescription: "Change it when `postgres_dsn_wo` changes, so that plan shows an update.",
			Optional:            true,
		},
	})
	return attrs
}

func (r *serverResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{
		resourcevalidator.Conflicting(path.MatchRoot("postgres_dsn"), path.MatchRoot("postgres_dsn_wo")),
		resourcevalidator.Conflicting(path.MatchRoot("postgres_dsn"), path.MatchRoot("postgres_dsn_wo_version")),
		storeNeedsDSN{},
	}
}

// storeNeedsDSN: store = "postgres" needs a connection string, and a
// connection string is only for store = "postgres".
type storeNeedsDSN struct{}

func (storeNeedsDSN) Description(context.Context) string {
	return `store "postgres" needs postgres_dsn or postgres_dsn_wo, and they are only used with it`
}

func (v storeNeedsDSN) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (storeNeedsDSN) ValidateResource(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var store, dsn, wo types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("store"), &store)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("postgres_dsn"), &dsn)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("postgres_dsn_wo"), &wo)...)
	if resp.Diagnostics.HasError() || store.IsUnknown() || dsn.IsUnknown() || wo.IsUnknown() {
		return
	}
	hasDSN := !dsn.IsNull() || !wo.IsNull()
	switch {
	case store.ValueString() == config.StorePostgres && !hasDSN:
		resp.Diagnostics.AddAttributeError(path.Root("store"), "Missing PostgreSQL Connection String",
			`store = "postgres" needs the database's connection string in postgres_dsn or postgres_dsn_wo.`)
	case store.ValueString() != config.StorePostgres && hasDSN:
		resp.Diagnostics.AddAttributeError(path.Root("store"), "PostgreSQL Connection String Without PostgreSQL",
			`postgres_dsn and postgres_dsn_wo are only used with store = "postgres"; set store or remove them.`)
	}
}

// storeSettings adds the store part of m to s. cfg is the configuration,
// where a write-only connection string is.
func (m *serverStoreModel) storeSettings(ctx context.Context, cfg *tfsdk.Config, s *config.Server) diag.Diagnostics {
	var diags diag.Diagnostics
	s.Store = m.Store.ValueString()
	s.PostgresDSN = m.PostgresDSN.ValueString()
	if m.PostgresDSN.IsNull() && cfg != nil {
		var wo types.String
		diags.Append(cfg.GetAttribute(ctx, path.Root("postgres_dsn_wo"), &wo)...)
		s.PostgresDSN = wo.ValueString()
	}
	return diags
}

// readStore sets m from the settings the runtime reports; the connection
// string, which the runtime never returns, stays as it was.
func (m *serverStoreModel) readStore(s config.Server) {
	m.Store = types.StringValue(s.StoreKind())
	if s.StoreKind() != config.StorePostgres {
		m.PostgresDSN, m.PostgresDSNWOVersion = types.StringNull(), types.Int64Null()
	}
	m.PostgresDSNWO = types.StringNull()
}
