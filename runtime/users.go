package runtime

import (
	"context"
	"errors"
	"fmt"

	"github.com/mailstack/terraform-provider-mailstack/internal/errkind"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
)

// The store owns users and their errors, whose kinds the control API
// answers with their HTTP status.

func (rt *mailRuntime) User(address string) (control.UserObject, error) {
	u, err := rt.fronts.stores.current().User(address)
	if err != nil {
		return control.UserObject{}, err
	}
	return control.UserObject{Address: u.Address, QuotaBytes: u.QuotaBytes, UsedBytes: u.UsedBytes}, nil
}

func (rt *mailRuntime) PutUser(ctx context.Context, address string, req control.UserRequest) (control.UserObject, error) {
	if req.Password == "" {
		return control.UserObject{}, errkind.With(errkind.Invalid, fmt.Errorf("user %q: password must not be empty", address))
	}
	if req.QuotaBytes < 0 {
		return control.UserObject{}, errkind.With(errkind.Invalid, fmt.Errorf("user %q: quota_bytes %d must not be negative", address, req.QuotaBytes))
	}
	if err := rt.fronts.stores.current().PutUser(address, req.Password, req.QuotaBytes); err != nil {
		return control.UserObject{}, err
	}
	rt.log.Info("user saved", "address", address, "quota_bytes", req.QuotaBytes)
	return rt.User(address)
}

func (rt *mailRuntime) DeleteUser(ctx context.Context, address string) error {
	if err := rt.fronts.stores.current().DeleteUser(address); err != nil {
		return err
	}
	rt.log.Info("user deleted", "address", address)
	return nil
}

// CheckPassword reports whether password is the user's, for drift
// detection; an unknown user is ErrNotFound. Passwords are never logged.
func (rt *mailRuntime) CheckPassword(ctx context.Context, address, password string) (bool, error) {
	if _, err := rt.User(address); err != nil {
		return false, err
	}
	err := rt.fronts.stores.current().Authenticate(address, password)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrAuthFailed):
		return false, nil
	}
	return false, err
}
