package provider

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/hashicorp/terraform-plugin-framework/diag"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
)

// providerData is what resources and data sources receive from Configure:
// the one door to the provider's host. Nothing in provider/ reaches a
// target path other than through host, and a running runtime other than
// through its control API (statedir.Dir.Client).
type providerData struct {
	version string
	host    host.Host
	// stateDir is the state_dir attribute, absolute on the local host;
	// on another host it may be relative to the login's home (see
	// stateDirPath).
	stateDir string
	// runtimeExe is the executable installed on the host as the runtime.
	runtimeExe string
}

// configuredData extracts the provider's data in a resource's or data
// source's Configure; nil (with no error) before the provider is configured.
func configuredData(raw any, diags *diag.Diagnostics) *providerData {
	if raw == nil {
		return nil
	}
	data, ok := raw.(*providerData)
	if !ok {
		diags.AddError("Unexpected Provider Data",
			fmt.Sprintf("Expected *providerData, got %T. This is always a bug in the provider.", raw))
		return nil
	}
	return data
}

// server is the state directory of server serverID (a mailstack_server
// id: its folder under the provider's state_dir) on the provider's host.
func (d *providerData) server(serverID string) statedir.Dir {
	return statedir.Dir{Host: d.host, Path: path.Join(d.stateDir, serverID)}
}

// client returns the control API client of the runtime of server
// serverID.
func (d *providerData) client(serverID string) *control.Client {
	return d.server(serverID).Client()
}

// file is a keystore file on the provider's host, as internal/keystore
// reads and writes it.
func (d *providerData) file(p string) host.File { return host.File{Host: d.host, Path: p} }

// abs makes a path absolute on the provider's host, for the runtime,
// which runs in its own folder.
func (d *providerData) abs(p string) (string, error) { return d.host.Abs(p) }

// onHost names a path with the provider's host when it is not the local
// one, for messages.
func (d *providerData) onHost(p string) string {
	if _, local := d.host.(host.Local); local {
		return p
	}
	return p + " on " + d.host.String()
}

// exists reports whether a regular file exists at p on the host.
func (d *providerData) exists(ctx context.Context, p string) bool {
	st, err := d.host.Stat(ctx, p)
	return err == nil && st.Mode.IsRegular()
}

// mkdirFor creates the folder of file p on the host (mode 0700) where it
// is missing.
func (d *providerData) mkdirFor(ctx context.Context, p string) error {
	return d.host.MkdirAll(ctx, path.Dir(p), 0o700)
}

// goneWithServer reports whether a deletion that failed with err needs no
// retry: the object is not there (404), or the runtime does not answer
// because its server is gone, and took its objects with it.
func (d *providerData) goneWithServer(ctx context.Context, serverID string, err error) bool {
	if err == nil || control.IsNotFound(err) {
		return true
	}
	var apiErr *control.Error
	if errors.As(err, &apiErr) {
		return false
	}
	exists, statErr := d.server(serverID).Exists(ctx)
	return statErr == nil && !exists
}
