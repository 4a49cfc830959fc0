package runtime

import (
	"context"
	"errors"

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
	return acme.New(acme.Options{StateDir: dir, Logger: opts.Logger.With("component", "acme")})
}

func (rt *mailRuntime) ACME(id string) (control.ACMEObject, error) {
	cfg, st, err := rt.acme.Get(id)
	if err != nil {
		return control.ACMEObject{}, acmeError(err)
	}
	return control.ACMEObject{ID: id, Config: cfg, Status: st}, nil
}

func (rt *mailRuntime) PutACME(ctx context.Context, id string, cfg acme.Config) (control.ACMEObject, error) {
	st, err := rt.acme.Put(ctx, id, cfg)
	if err != nil {
		return control.ACMEObject{}, acmeError(err)
	}
	got, _, err := rt.acme.Get(id)
	if err != nil {
		return control.ACMEObject{}, acmeError(err)
	}
	return control.ACMEObject{ID: id, Config: got, Status: st}, nil
}

func (rt *mailRuntime) DeleteACME(ctx context.Context, id string) error {
	return acmeError(rt.acme.Delete(ctx, id))
}

// acmeError gives runtime/acme's kinds of failure their HTTP status; the
// text stays as it is.
func acmeError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, acme.ErrInvalid):
		return control.Invalid(err)
	case errors.Is(err, acme.ErrConflict):
		return control.Conflict(err)
	case errors.Is(err, acme.ErrNotFound):
		return control.NotFound("%w", err)
	case errors.Is(err, acme.ErrIssuance):
		return control.Upstream(err)
	}
	return err
}
