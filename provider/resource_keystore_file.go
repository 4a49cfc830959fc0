package provider

// mailstack_keystore's file on the host: its store password (from the
// plan, the configuration's write-only password_wo, or the copy kept on the
// host), its mode, owner and group, and the checks plan makes against an
// existing file.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

// fileModePattern is an octal permission mode such as "0640".
var fileModePattern = regexp.MustCompile(`^0?[0-7]{3}$`)

func (r *keystoreResource) now() time.Time { return r.data.now() }

// keystoreType is the type attribute as internal/keystore names it.
func (m *keystoreModel) keystoreType() keystore.Type {
	return keystore.Type(keystoreTypeEnum.normal(m.Type.ValueString()))
}

// password is the store password to write with: password, or the
// write-only password_wo from the configuration.
func (r *keystoreResource) password(ctx context.Context, m *keystoreModel, cfg configReader) (string, diag.Diagnostics) {
	var diags diag.Diagnostics
	pw, err := passwordOr(ctx, m.Password, cfg, path.Root("password_wo"))
	if err == nil && pw == "" {
		err = errors.New("one of password and password_wo must be set")
	}
	if err != nil {
		diags.AddAttributeError(path.Root("password_wo"), "Missing Keystore Password", err.Error())
	}
	return pw, diags
}

// readPassword is the store password Read and Delete open the file with:
// the state's, or the copy kept on the host for password_wo.
func (r *keystoreResource) readPassword(ctx context.Context, m *keystoreModel) (string, bool) {
	return r.data.storedPassword(ctx, m.Password, m.Path.ValueString(), stashKeystore, alias(m))
}

// priorPasswords are the passwords the file may have before an update:
// the one Terraform last wrote (state or kept copy) first, then the new
// one (already set with keytool -storepasswd).
func (r *keystoreResource) priorPasswords(ctx context.Context, state *keystoreModel, next string) []string {
	var out []string
	if pw, ok := r.readPassword(ctx, state); ok {
		out = append(out, pw)
	}
	if len(out) == 0 || out[0] != next {
		out = append(out, next)
	}
	return out
}

// prepareFile makes the keystore's folder for a new entry and sets a.file
// with the planned mode, owner and group.
func (r *keystoreResource) prepareFile(ctx context.Context, a *applyRequest) bool {
	p := a.plan.Path.ValueString()
	if a.state == nil {
		if err := r.data.mkdirFor(ctx, p); err != nil {
			a.diags.AddAttributeError(path.Root("path"), "Unable to Create Keystore Folder", err.Error())
			return false
		}
	}
	a.file = r.data.file(p)
	opts, err := r.data.writeOptions(ctx, a.plan.FileMode, a.plan.Owner, a.plan.Group)
	if err != nil {
		a.diags.AddError("Invalid Keystore File Owner or Mode", fmt.Sprintf("%s\n\nKeystore file: %s", err, r.data.onHost(p)))
		return false
	}
	a.file.Options = opts
	return true
}

// finishApply keeps (or drops) the copy of a write-only password and
// fills in what only the written file can say.
func (r *keystoreResource) finishApply(ctx context.Context, a *applyRequest) {
	m := a.plan
	r.data.keepPassword(ctx, m.Password.IsNull(), m.Path.ValueString(), stashKeystore, alias(m), a.password, a.diags)
	if m.DeleteOnDestroy.IsUnknown() {
		m.DeleteOnDestroy = types.BoolValue(true)
	}
	if m.FileMode.IsUnknown() || m.Owner.IsUnknown() || m.Group.IsUnknown() {
		onDisk := *m
		a.diags.Append(r.readFile(ctx, &onDisk)...)
		if m.FileMode.IsUnknown() {
			m.FileMode = onDisk.FileMode
		}
		if m.Owner.IsUnknown() {
			m.Owner = onDisk.Owner
		}
		if m.Group.IsUnknown() {
			m.Group = onDisk.Group
		}
	}
}

// readFile reads the file's mode, owner and group into m, keeping the
// spelling m has for an owner or group that names the same id.
func (r *keystoreResource) readFile(ctx context.Context, m *keystoreModel) diag.Diagnostics {
	var diags diag.Diagnostics
	st, err := r.data.host.Stat(ctx, m.Path.ValueString())
	if err != nil {
		diags.AddError("Unable to Read Keystore File", err.Error())
		return diags
	}
	m.FileMode = types.StringValue(fmt.Sprintf("%04o", st.Mode.Perm()))
	if st.UID >= 0 {
		m.Owner = r.data.ownerName(ctx, m.Owner, st.UID, false)
		m.Group = r.data.ownerName(ctx, m.Group, st.GID, true)
	}
	return diags
}

// fileSettingsChanged reports whether the file's mode, owner or group
// change between state and plan.
func (m *keystoreModel) fileSettingsChanged(state *keystoreModel) bool {
	return !m.FileMode.Equal(state.FileMode) || !m.Owner.Equal(state.Owner) || !m.Group.Equal(state.Group)
}

// rewriteFile writes the file again as it is, to give it the planned
// mode, owner and group.
func (r *keystoreResource) rewriteFile(ctx context.Context, a *applyRequest) {
	unlock, err := a.file.Lock(ctx)
	if err == nil {
		defer unlock()
		var data []byte
		if data, err = a.file.Read(ctx); err == nil {
			err = a.file.Write(ctx, data)
		}
	}
	if err != nil {
		addKeystoreError(a.diags, "Unable to Change Keystore File Mode or Owner", a.plan.Path.ValueString(), alias(a.plan), err)
	}
}

// checkNewEntry checks at plan time that an existing file can take the
// new entry: it opens with the password and has the planned type. Each
// error is on the attribute to fix. A missing file, or values not known
// yet, are checked at apply; so is a taken alias, because the plan of a
// replacement sees the entry that destroy will remove first.
func (r *keystoreResource) checkNewEntry(ctx context.Context, p *planRequest) {
	ks, err := r.openKeystoreAtPlan(ctx, p)
	if ks == nil && err == nil {
		return
	}
	file, a := p.plan.Path.ValueString(), alias(p.plan)
	pwAttr := "password"
	if p.plan.Password.IsNull() {
		pwAttr = "password_wo"
	}
	switch {
	case errors.Is(err, keystore.ErrWrongStorePassword):
		p.diags.AddAttributeError(path.Root(pwAttr), "Wrong Keystore Password", keystoreErrorDetail(file, a, err))
	case err != nil:
		p.diags.AddAttributeError(path.Root("path"), "Unable to Use Existing Keystore", keystoreErrorDetail(file, a, err))
	case !p.plan.Type.IsUnknown() && ks.Type() != p.plan.keystoreType():
		p.diags.AddAttributeError(path.Root("type"), "Keystore Type Mismatch", keystoreErrorDetail(file, a,
			&keystore.Error{Path: file, Err: keystore.ErrTypeMismatch, Detail: fmt.Sprintf("file is %s, want %s", ks.Type(), p.plan.keystoreType())}))
	}
}

// openAtPlan opens the keystore at plan time; nil when it cannot.
func (r *keystoreResource) openAtPlan(ctx context.Context, p *planRequest) *keystore.Keystore {
	ks, _ := r.openKeystoreAtPlan(ctx, p)
	return ks
}

// openKeystoreAtPlan opens the planned keystore file with the planned or
// write-only password; nil, nil when the file is missing or the path or
// password are not known yet.
func (r *keystoreResource) openKeystoreAtPlan(ctx context.Context, p *planRequest) (*keystore.Keystore, error) {
	if r.data == nil || p.plan.Path.IsUnknown() || p.plan.Password.IsUnknown() {
		return nil, nil
	}
	pw, err := passwordOr(ctx, p.plan.Password, p.config, path.Root("password_wo"))
	if err != nil || pw == "" {
		return nil, nil
	}
	ks, err := keystore.Open(ctx, r.data.file(p.plan.Path.ValueString()), []byte(pw))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return ks, err
}

// writeOptions resolves file_mode, owner and group for host.File: what is
// unset (null or unknown) stays as the file has it.
func (d *providerData) writeOptions(ctx context.Context, mode, owner, group types.String) (host.WriteOptions, error) {
	var o host.WriteOptions
	if v := mode.ValueString(); v != "" {
		m, err := strconv.ParseUint(v, 8, 32)
		if err != nil {
			return o, fmt.Errorf("file_mode %q: %w", v, err)
		}
		o.Mode = fs.FileMode(m)
	}
	ids := host.Owner{UID: -1, GID: -1}
	var err error
	if v := owner.ValueString(); v != "" {
		if ids.UID, err = d.lookupID(ctx, v, false); err != nil {
			return o, err
		}
	}
	if v := group.ValueString(); v != "" {
		if ids.GID, err = d.lookupID(ctx, v, true); err != nil {
			return o, err
		}
	}
	if ids.UID != -1 || ids.GID != -1 {
		o.Owner = &ids
	}
	return o, nil
}

// lookups caches user and group ids by name, and names by id, for a
// provider run: plan and apply look up the same few for every keystore.
var lookups sync.Map

// lookupID resolves a user (or group) name or number on the host.
func (d *providerData) lookupID(ctx context.Context, name string, group bool) (int, error) {
	key := fmt.Sprintf("%s\x00%t\x00%s", d.host, group, name)
	if id, ok := lookups.Load(key); ok {
		return id.(int), nil
	}
	lookup := host.LookupUser
	if group {
		lookup = host.LookupGroup
	}
	id, err := lookup(ctx, d.host, name)
	if err == nil {
		lookups.Store(key, id)
	}
	return id, err
}

// ownerName names id as prior does when prior names the same id, else by
// its name on the host (or its number).
func (d *providerData) ownerName(ctx context.Context, prior types.String, id int, group bool) types.String {
	if v := prior.ValueString(); v != "" {
		if got, err := d.lookupID(ctx, v, group); err == nil && got == id {
			return prior
		}
	}
	key := fmt.Sprintf("%s\x00%t\x00#%d", d.host, group, id)
	if name, ok := lookups.Load(key); ok {
		return types.StringValue(name.(string))
	}
	name := host.UserName(ctx, d.host, id)
	if group {
		name = host.GroupName(ctx, d.host, id)
	}
	lookups.Store(key, name)
	return types.StringValue(name)
}
