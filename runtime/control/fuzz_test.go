package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/mailstack/terraform-provider-mailstack/internal/errkind"
	"github.com/mailstack/terraform-provider-mailstack/runtime/acme"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

// memBackend keeps the runtime's objects in memory and validates them as
// the runtime does: the whole document after each change, ACME configs
// with acme.Config.Validate.
type memBackend struct {
	*fakeACME
	mu        sync.Mutex
	doc       config.Document
	users     map[string]UserObject
	passwords map[string]string
}

var (
	_ Backend         = (*memBackend)(nil)
	_ ACMEBackend     = (*memBackend)(nil)
	_ PasswordChecker = (*memBackend)(nil)
)

func newMemBackend() *memBackend {
	return &memBackend{
		fakeACME:  &fakeACME{objs: map[string]ACMEObject{}},
		doc:       config.Document{Server: config.Server{Hostname: "mail.example.com"}, Listeners: map[string]config.Listener{}},
		users:     map[string]UserObject{},
		passwords: map[string]string{},
	}
}

func (b *memBackend) PutACME(ctx context.Context, id string, cfg acme.Config, keep string) (ACMEObject, error) {
	if err := cfg.Validate(); err != nil {
		return ACMEObject{}, errkind.With(errkind.Invalid, err)
	}
	return b.fakeACME.PutACME(ctx, id, cfg, keep)
}

func (b *memBackend) CheckPassword(_ context.Context, address, password string) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	want, ok := b.passwords[address]
	if !ok {
		return false, errkind.With(errkind.NotFound, fmt.Errorf("user %q does not exist", address))
	}
	return want == password, nil
}

func (b *memBackend) Status() Status { return Status{Version: "fuzz"} }

func (b *memBackend) Server() config.Server {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.doc.Server
}

func (b *memBackend) SetServer(_ context.Context, s config.Server) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	next := b.doc.Clone()
	next.Server = s
	if err := next.Validate(); err != nil {
		return errkind.With(errkind.Invalid, err)
	}
	b.doc = *next
	return nil
}

func (b *memBackend) Listener(id string) (ListenerObject, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l, ok := b.doc.Listeners[id]
	if !ok {
		return ListenerObject{}, errkind.With(errkind.NotFound, fmt.Errorf("listener %q does not exist", id))
	}
	return ListenerObject{ID: id, Config: l}, nil
}

func (b *memBackend) PutListener(_ context.Context, id string, l config.Listener) (ListenerObject, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	next := b.doc.Clone()
	next.Listeners[id] = l
	if err := next.Validate(); err != nil {
		return ListenerObject{}, errkind.With(errkind.Invalid, err)
	}
	b.doc = *next
	return ListenerObject{ID: id, Config: l}, nil
}

func (b *memBackend) DeleteListener(_ context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.doc.Listeners[id]; !ok {
		return errkind.With(errkind.NotFound, fmt.Errorf("listener %q does not exist", id))
	}
	delete(b.doc.Listeners, id)
	return nil
}

func (b *memBackend) User(address string) (UserObject, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, ok := b.users[address]
	if !ok {
		return UserObject{}, errkind.With(errkind.NotFound, fmt.Errorf("user %q does not exist", address))
	}
	return u, nil
}

func (b *memBackend) PutUser(_ context.Context, address string, req UserRequest) (UserObject, error) {
	if req.Password == "" || req.QuotaBytes < 0 || !strings.Contains(address, "@") {
		return UserObject{}, errkind.With(errkind.Invalid, errors.New("bad user"))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	u := UserObject{Address: address, QuotaBytes: req.QuotaBytes}
	b.users[address] = u
	b.passwords[address] = req.Password
	return u, nil
}

func (b *memBackend) DeleteUser(_ context.Context, address string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.users[address]; !ok {
		return errkind.With(errkind.NotFound, fmt.Errorf("user %q does not exist", address))
	}
	delete(b.users, address)
	return nil
}

// FuzzHandler sends the control API arbitrary JSON bodies on every route
// that takes one. Whatever the body, the answer is a 2xx or a 4xx with a
// JSON error (never a 5xx or a panic), and an object the API accepted
// reads back as it was stored.
func FuzzHandler(f *testing.F) {
	for _, seed := range []struct {
		route uint8
		body  string
	}{
		{0, `{"protocol":"smtp","address":"127.0.0.1","port":2525,"tls":{"mode":"none"}}`},
		{0, `{"protocol":"imap","address":"::1","port":993,"tls":{"mode":"implicit","keystore_path":"/k.jks","keystore_password":"p","min_version":"1.3","cipher_suites":["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],"client_auth":"require"}}`},
		{1, `{"hostname":"mail.example.com","domains":["example.com"],"max_message_bytes":1024,"max_connections":5,"max_connections_per_ip":2,"metrics_address":"127.0.0.1:9154"}`},
		{2, `{"password":"secret","quota_bytes":10}`},
		{3, `{"password":"secret"}`},
		{4, `{"keystore_path":"/k.p12","keystore_password":"p","alias":"a","domains":["mail.example.com"],"email":"a@example.com","challenge":"http-01","challenge_address":"127.0.0.1:8080"}`},
		{0, `{"protocol":"smtp"} {"trailing":1}`},
		{1, `{"hostname":"x","unknown":true}`},
		{0, `[]`},
		{2, `{"password":"\u0000","quota_bytes":-1}`},
	} {
		f.Add(seed.route, []byte(seed.body))
	}
	h := Handler(newMemBackend(), slog.New(slog.DiscardHandler))
	routes := []struct{ method, path, read string }{
		{http.MethodPut, "/v1/listeners/l1", "/v1/listeners/l1"},
		{http.MethodPut, "/v1/server", "/v1/server"},
		{http.MethodPut, "/v1/users/alice@example.com", "/v1/users/alice@example.com"},
		{http.MethodPost, "/v1/users/alice@example.com/password-check", ""},
		{http.MethodPut, "/v1/acme/a1", "/v1/acme/a1"},
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		r := routes[int(route)%len(routes)]
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(r.method, r.path, bytes.NewReader(body)))
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", r.method, r.path, body, rec.Code, rec.Body)
		}
		var answer map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); rec.Body.Len() > 0 && err != nil {
			t.Fatalf("%s %s: answer is not JSON: %q", r.method, r.path, rec.Body)
		}
		if rec.Code >= 300 {
			if _, ok := answer["error"].(string); !ok {
				t.Fatalf("%s %s: %d without an error message: %q", r.method, r.path, rec.Code, rec.Body)
			}
			return
		}
		if r.read == "" || r.method != http.MethodPut {
			return
		}
		get := httptest.NewRecorder()
		h.ServeHTTP(get, httptest.NewRequest(http.MethodGet, r.read, nil))
		if get.Code != http.StatusOK {
			t.Fatalf("GET %s after a PUT it accepted: %d %s", r.read, get.Code, get.Body)
		}
		if !reflect.DeepEqual(normalize(t, rec.Body.Bytes()), normalize(t, get.Body.Bytes())) {
			t.Fatalf("PUT answered %s, GET %s", rec.Body, get.Body)
		}
	})
}

// normalize decodes a JSON answer, without its status (which may move).
func normalize(t *testing.T, b []byte) any {
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(fmt.Errorf("%q: %w", b, err))
	}
	delete(v, "status")
	return v
}
