package control

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/runtime/acme"
	"github.com/mailstack/terraform-provider-mailstack/runtime/dkim"
	"github.com/mailstack/terraform-provider-mailstack/runtime/listener"
	"github.com/mailstack/terraform-provider-mailstack/runtime/queue"
	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
)

// Every layer's sentinel errors reach the API as their layer wrapped them,
// and statusOf alone gives them their status.
func TestStatusOfLayerErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{fmt.Errorf("user alice@example.com: %w", store.ErrNotFound), http.StatusNotFound},
		{fmt.Errorf("user: %w", store.ErrInvalidAddress), http.StatusBadRequest},
		{fmt.Errorf("mailbox: %w", store.ErrExists), http.StatusConflict},
		{fmt.Errorf("alice: %w", store.ErrMaildropLocked), http.StatusConflict},
		{fmt.Errorf("listener %q: %w", "x", listener.ErrNotFound), http.StatusNotFound},
		{fmt.Errorf("listener %q: %w", "x", listener.ErrInvalid), http.StatusBadRequest},
		{fmt.Errorf("listener %q: %w", "x", listener.ErrConflict), http.StatusConflict},
		{fmt.Errorf("ACME keystore %q: %w", "mx", acme.ErrNotFound), http.StatusNotFound},
		{fmt.Errorf("ACME keystore %q: %w", "mx", acme.ErrInvalid), http.StatusBadRequest},
		{fmt.Errorf("ACME keystore %q: %w", "mx", acme.ErrConflict), http.StatusConflict},
		{fmt.Errorf("ACME keystore %q: %w", "mx", acme.ErrIssuance), http.StatusBadGateway},
		{&keystore.Error{Path: "/k.jks", Err: keystore.ErrWrongStorePassword}, http.StatusBadRequest},
		{&keystore.Error{Path: "/k.jks", Err: keystore.ErrNotKeystore}, http.StatusBadRequest},
		{fmt.Errorf("queue: %w", queue.ErrNotFound), http.StatusNotFound},
		{fmt.Errorf("dkim: %w", dkim.ErrNotFound), http.StatusNotFound},
		// A listener refused because its keystore is: the listener's kind.
		{fmt.Errorf("listener: %w: %w", listener.ErrInvalid, &keystore.Error{Err: keystore.ErrAliasNotFound}), http.StatusBadRequest},
		{errors.New("disk on fire"), http.StatusInternalServerError},
		{fmt.Errorf("store: %w", store.ErrClosed), http.StatusInternalServerError},
	} {
		if got := statusOf(tc.err); got != tc.code {
			t.Errorf("statusOf(%v) = %d, want %d", tc.err, got, tc.code)
		}
	}
}
