package control

import (
	"context"
	"net/http"
	"net/url"

	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/queue"
)

// The outbound queue and the DKIM keys (runtime/queue, runtime/outbound,
// runtime/dkim):
//
//	GET    /v1/queue               200 QueueList: summary and every message
//	GET    /v1/queue/{id}          200 queue.Entry: per recipient its state,
//	                               attempts and last error | 404
//	POST   /v1/queue/{id}/retry    204: the next attempt starts now | 404
//	DELETE /v1/queue/{id}          204: dropped, the sender is not told | 404
//	GET    /v1/dkim/{name}         200 DKIMObject | 404
//	PUT    /v1/dkim/{name}         body config.DKIMKey; 200 DKIMObject once the
//	                               key exists (made on the host if it did not)
//	                               and signs | 400
//	DELETE /v1/dkim/{name}         204: no longer signs, key removed | 404
//
// A DKIM key's name is its DNS name, <selector>._domainkey.<domain>. Only
// its public part ever crosses the API.

// QueueSummary is the queue's size and age, also part of Status.
type QueueSummary struct {
	Length int `json:"length"`
	// OldestSeconds is the age of the oldest queued message; 0 when the
	// queue is empty.
	OldestSeconds int64 `json:"oldest_seconds"`
}

// QueueList is the answer to GET /v1/queue.
type QueueList struct {
	QueueSummary
	Messages []queue.Entry `json:"messages"`
}

// DKIMObject is the answer to GET and PUT /v1/dkim/{name}.
type DKIMObject struct {
	config.DKIMKey
	Name string `json:"name"`
	// TXT is the DNS TXT record value to publish at Name.
	TXT string `json:"txt"`
	// KeyFileProblem is empty while the key's file on the host holds the
	// key the runtime signs with; else it says what is wrong with the file
	// (gone, damaged, another key). The runtime still signs, but would
	// lose the key at a restart; a PUT of the same key writes the file
	// again from the key the runtime holds.
	KeyFileProblem string `json:"key_file_problem,omitempty"`
}

// OutboundBackend is the optional part of a Backend that delivers to other
// domains; Handler serves /v1/queue and /v1/dkim when the Backend
// implements it.
type OutboundBackend interface {
	Queue() (QueueList, error)
	// QueueEntry returns one message, or an error wrapping errkind.NotFound.
	QueueEntry(id string) (queue.Entry, error)
	RetryQueued(id string) error
	DropQueued(id string) error
	DKIM(name string) (DKIMObject, error)
	PutDKIM(ctx context.Context, name string, k config.DKIMKey) (DKIMObject, error)
	DeleteDKIM(ctx context.Context, name string) error
}

func (h *handler) outboundRoutes(mux *http.ServeMux, b OutboundBackend) {
	mux.HandleFunc("GET /v1/queue", func(w http.ResponseWriter, r *http.Request) {
		l, err := b.Queue()
		if err != nil {
			h.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, l)
	})
	mux.HandleFunc("GET /v1/queue/{id}", func(w http.ResponseWriter, r *http.Request) {
		e, err := b.QueueEntry(r.PathValue("id"))
		if err != nil {
			h.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, e)
	})
	mux.HandleFunc("POST /v1/queue/{id}/retry", func(w http.ResponseWriter, r *http.Request) {
		h.noContent(w, r, b.RetryQueued(r.PathValue("id")))
	})
	mux.HandleFunc("DELETE /v1/queue/{id}", func(w http.ResponseWriter, r *http.Request) {
		h.noContent(w, r, b.DropQueued(r.PathValue("id")))
	})
	mux.HandleFunc("GET /v1/dkim/{name}", func(w http.ResponseWriter, r *http.Request) {
		obj, err := b.DKIM(r.PathValue("name"))
		if err != nil {
			h.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, obj)
	})
	mux.HandleFunc("PUT /v1/dkim/{name}", func(w http.ResponseWriter, r *http.Request) {
		var k config.DKIMKey
		if !h.decode(w, r, &k) {
			return
		}
		obj, err := b.PutDKIM(r.Context(), r.PathValue("name"), k)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, obj)
	})
	mux.HandleFunc("DELETE /v1/dkim/{name}", func(w http.ResponseWriter, r *http.Request) {
		h.noContent(w, r, b.DeleteDKIM(r.Context(), r.PathValue("name")))
	})
}

func (h *handler) noContent(w http.ResponseWriter, r *http.Request, err error) {
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Queue lists the outbound queue.
func (c *Client) Queue(ctx context.Context) (QueueList, error) {
	var l QueueList
	return l, c.do(ctx, http.MethodGet, "/v1/queue", nil, &l)
}

// QueueEntry returns one queued message; IsNotFound(err) when there is none.
func (c *Client) QueueEntry(ctx context.Context, id string) (queue.Entry, error) {
	var e queue.Entry
	return e, c.do(ctx, http.MethodGet, "/v1/queue/"+url.PathEscape(id), nil, &e)
}

// RetryQueued makes the next attempt of a queued message start now.
func (c *Client) RetryQueued(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/v1/queue/"+url.PathEscape(id)+"/retry", nil, nil)
}

// DropQueued removes a message from the queue without telling its sender.
func (c *Client) DropQueued(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/queue/"+url.PathEscape(id), nil, nil)
}

// DKIM returns a DKIM key's public part; IsNotFound(err) when there is none.
func (c *Client) DKIM(ctx context.Context, name string) (DKIMObject, error) {
	var o DKIMObject
	return o, c.do(ctx, http.MethodGet, "/v1/dkim/"+url.PathEscape(name), nil, &o)
}

// PutDKIM creates a DKIM key (on the host) or changes what it is for.
func (c *Client) PutDKIM(ctx context.Context, name string, k config.DKIMKey) (DKIMObject, error) {
	var o DKIMObject
	return o, c.do(ctx, http.MethodPut, "/v1/dkim/"+url.PathEscape(name), k, &o)
}

// DeleteDKIM stops signing with a key and removes it.
func (c *Client) DeleteDKIM(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/dkim/"+url.PathEscape(name), nil, nil)
}
