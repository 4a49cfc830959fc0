package control

import (
	"context"
	"net/http"
	"net/url"

	"github.com/mailstack/terraform-provider-mailstack/runtime/acme"
)

// ACME keystores: one object per keystore whose certificate the runtime
// obtains from an ACME CA and renews (package runtime/acme).
//
//	GET    /v1/acme/{id}   200 ACMEObject | 404
//	PUT    /v1/acme/{id}   body acme.Config; 200 ACMEObject once the keystore
//	                       holds the certificate | 400 bad config or keystore |
//	                       409 challenge address in use, entry owned by another
//	                       id | 502 the CA could not be reached, refused or
//	                       could not validate (message carries the ACME
//	                       problem document); nothing changed on any error.
//	                       ?keep=<fingerprint>: the keystore entry's
//	                       certificate with that SHA-256 fingerprint was
//	                       issued for this config; keep it, if current,
//	                       rather than order one (acme.Service.PutKeeping)
//	DELETE /v1/acme/{id}   204 | 404; the keystore file stays
//
// The id is 1 to 128 letters, digits, '.', '_' or '-' (acme.ValidID);
// acme.IDFor derives one from a keystore path and alias.

// ACMEObject is the answer to GET and PUT /v1/acme/{id}. Config has its
// defaults filled in and its secrets (keystore_password, eab_hmac_key)
// blanked.
type ACMEObject struct {
	ID     string      `json:"id"`
	Config acme.Config `json:"config"`
	Status acme.Status `json:"status"`
}

// ACMEBackend is the optional part of a Backend that keeps ACME
// keystores; Handler serves /v1/acme/{id} when the Backend implements it.
type ACMEBackend interface {
	// ACME returns one ACME keystore, or an error wrapping errkind.NotFound.
	ACME(id string) (ACMEObject, error)
	// PutACME creates or changes an ACME keystore and returns when the
	// keystore holds a certificate for cfg; keep is the fingerprint of a
	// certificate to keep (acme.Service.PutKeeping), or empty.
	PutACME(ctx context.Context, id string, cfg acme.Config, keep string) (ACMEObject, error)
	// DeleteACME stops renewing an ACME keystore and forgets it.
	DeleteACME(ctx context.Context, id string) error
}

func (h *handler) acmeRoutes(mux *http.ServeMux, b ACMEBackend) {
	mux.HandleFunc("GET /v1/acme/{id}", func(w http.ResponseWriter, r *http.Request) {
		obj, err := b.ACME(r.PathValue("id"))
		if err != nil {
			h.fail(w, r, err)
			return
		}
		obj.Config = obj.Config.Redacted()
		writeJSON(w, http.StatusOK, obj)
	})
	mux.HandleFunc("PUT /v1/acme/{id}", func(w http.ResponseWriter, r *http.Request) {
		var cfg acme.Config
		if !h.decode(w, r, &cfg) {
			return
		}
		obj, err := b.PutACME(r.Context(), r.PathValue("id"), cfg, r.URL.Query().Get("keep"))
		if err != nil {
			h.fail(w, r, err)
			return
		}
		obj.Config = obj.Config.Redacted()
		writeJSON(w, http.StatusOK, obj)
	})
	mux.HandleFunc("DELETE /v1/acme/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := b.DeleteACME(r.Context(), r.PathValue("id")); err != nil {
			h.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// ACME returns an ACME keystore; IsNotFound(err) when there is none.
func (c *Client) ACME(ctx context.Context, id string) (ACMEObject, error) {
	var obj ACMEObject
	return obj, c.do(ctx, http.MethodGet, "/v1/acme/"+url.PathEscape(id), nil, &obj)
}

// PutACME creates or changes an ACME keystore; it returns when the
// keystore holds the certificate, which can take as long as the CA needs
// to validate the domains (give ctx a deadline of minutes). keep, if not
// empty, is the fingerprint of the certificate the keystore entry holds
// for cfg, which the runtime then keeps if it is current instead of
// ordering one.
func (c *Client) PutACME(ctx context.Context, id string, cfg acme.Config, keep string) (ACMEObject, error) {
	var obj ACMEObject
	p := "/v1/acme/" + url.PathEscape(id)
	if keep != "" {
		p += "?" + url.Values{"keep": {keep}}.Encode()
	}
	return obj, c.do(ctx, http.MethodPut, p, cfg, &obj)
}

// DeleteACME stops renewing an ACME keystore and removes its state; the
// keystore file and entry stay.
func (c *Client) DeleteACME(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/acme/"+url.PathEscape(id), nil, nil)
}
