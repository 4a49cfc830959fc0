package provider

// Write-only passwords (password_wo and its kin) never enter the plan or
// the state: apply reads them from the configuration. A keystore cannot be
// read without its store password, though, and a new password cannot
// replace one nobody knows any more; so the keystore resources keep a copy
// of a write-only store password on the target host itself, in a file of
// mode 0600 under the provider's state directory, beside the mail
// runtime's own config.json, which holds its listeners' keystore passwords
// the same way.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	tfpath "github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
)

// configReader reads one value of a configuration (tfsdk.Config).
type configReader interface {
	GetAttribute(ctx context.Context, p tfpath.Path, target any) diag.Diagnostics
}

// writeOnly reads the write-only attribute at p from the configuration;
// "" when it is not set.
func writeOnly(ctx context.Context, cfg configReader, p tfpath.Path) (string, error) {
	if cfg == nil {
		return "", nil
	}
	var v types.String
	if diags := cfg.GetAttribute(ctx, p, &v); diags.HasError() {
		return "", fmt.Errorf("reading %s from the configuration failed. This is always a bug in the provider", p)
	}
	return v.ValueString(), nil
}

// passwordOr returns a password attribute's value, or when it is null the
// write-only attribute at wo from the configuration; "" when neither is
// set.
func passwordOr(ctx context.Context, v types.String, cfg configReader, wo tfpath.Path) (string, error) {
	if !v.IsNull() {
		return v.ValueString(), nil
	}
	return writeOnly(ctx, cfg, wo)
}

// storedPassword is the password Read and Delete open a keystore with:
// v from the state, or the copy kept on the host for a write-only one.
func (d *providerData) storedPassword(ctx context.Context, v types.String, file, kind, alias string) (string, bool) {
	if !v.IsNull() {
		return v.ValueString(), true
	}
	return d.recallPassword(ctx, file, kind, alias)
}

// secretsDir is the folder, under the provider's state directory, of the
// kept copies of write-only keystore passwords. Server names start with a
// letter or digit, so it is never a server's folder.
const secretsDir = ".secrets"

// Kinds of kept password, so that each resource manages its own copy.
const (
	stashKeystore = "keystore"
	stashTrusted  = "trusted"
)

type stashedPassword struct {
	Path     string `json:"path"`
	Alias    string `json:"alias"`
	Password string `json:"password"`
}

// stashPath is where the password of the entry alias of kind in keystore
// file is kept.
func (d *providerData) stashPath(file, kind, alias string) string {
	sum := sha256.Sum256([]byte(d.absPath(file) + "\x00" + kind + "\x00" + alias))
	return path.Join(d.stateDir, secretsDir, hex.EncodeToString(sum[:16])+".json")
}

// rememberPassword keeps password for the entry on the host (mode 0600).
func (d *providerData) rememberPassword(ctx context.Context, file, kind, alias, password string) error {
	p := d.stashPath(file, kind, alias)
	if err := d.host.MkdirAll(ctx, path.Dir(p), 0o700); err != nil {
		return err
	}
	data, err := json.Marshal(stashedPassword{Path: d.absPath(file), Alias: alias, Password: password})
	if err != nil {
		return err
	}
	return d.host.WriteFile(ctx, p, data, host.WriteOptions{Mode: 0o600})
}

// recallPassword returns the kept password of the entry, if any.
func (d *providerData) recallPassword(ctx context.Context, file, kind, alias string) (string, bool) {
	data, err := d.host.ReadFile(ctx, d.stashPath(file, kind, alias))
	if err != nil {
		return "", false
	}
	var s stashedPassword
	if json.Unmarshal(data, &s) != nil || s.Password == "" {
		return "", false
	}
	return s.Password, true
}

// forgetPassword removes the kept password of the entry.
func (d *providerData) forgetPassword(ctx context.Context, file, kind, alias string, diags *diag.Diagnostics) {
	if err := d.host.Remove(ctx, d.stashPath(file, kind, alias)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		diags.AddWarning("Unable to Remove Kept Password", fmt.Sprintf("The copy of the write-only password of %s "+
			"(alias %q) under state_dir could not be removed: %v", file, alias, err))
	}
}

// keepPassword keeps the store password after an apply that used a
// write-only one, and removes a kept copy once the password is in the
// configuration (and the state) again.
func (d *providerData) keepPassword(ctx context.Context, writeOnly bool, file, kind, alias, password string, diags *diag.Diagnostics) {
	if !writeOnly {
		d.forgetPassword(ctx, file, kind, alias, diags)
		return
	}
	if err := d.rememberPassword(ctx, file, kind, alias, password); err != nil {
		diags.AddError("Unable to Keep Keystore Password", fmt.Sprintf("The keystore %s (alias %q) was written, but "+
			"its write-only password could not be kept under state_dir, so the next Read cannot open it: %v", file, alias, err))
	}
}
