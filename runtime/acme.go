package runtime

import (
	"context"
	"path/filepath"

	"github.com/mailstack/terraform-provider-mailstack/runtime/acme"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
)

// ACME keystores are kept by runtime/acme, which saves them under the
// state directory's acme/ folder itself: they are not part of config.json.
// The listeners that serve an ACME keystore watch its file like any other
// keystore, so a renewal reaches them without anything here.

var (
	_ control.ACMEBackend = (*mailRuntime)(nil)
	_ control.ACMEBackend = observedRuntime{}
)

func newACME(dir string, opts Options) (*acme.Service, error) {
	return acme.New(acme.Options{StateDir: dir, LockRoot: filepath.Dir(dir), Logger: opts.Logger.With("component", "acme")})
}

func (rt *mailRuntime) ACME(id string) (control.ACMEObject, error) {
	cfg, st, err := rt.acme.Get(id)
	if err != nil {
		return control.ACMEObject{}, err
	}
	return control.ACMEObject{ID: id, Config: cfg, Status: st}, nil
}

func (rt *mailRuntime) PutACME(ctx context.Context, id string, cfg acme.Config, keep string) (control.ACMEObject, error) {
	st, err := rt.acme.PutKeeping(ctx, id, cfg, keep)
	if err != nil {
		return control.ACMEObject{}, err
	}
	got, _, err := rt.acme.Get(id)
	if err != nil {
		return control.ACMEObject{}, err
	}
	return control.ACMEObject{ID: id, Config: got, Status: st}, nil
}

func (rt *mailRuntime) DeleteACME(ctx context.Context, id string) error {
	return rt.acme.Delete(ctx, id)
}
