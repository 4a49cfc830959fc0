package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/errkind"
	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/runtime/acme"
)

// fakeACME is a Backend with ACME keystores; the rest of Backend is not
// called by these tests.
type fakeACME struct {
	Backend
	objs map[string]ACMEObject
	fail error  // returned by PutACME when set
	kept string // the keep of the last PutACME
}

func (f *fakeACME) ACME(id string) (ACMEObject, error) {
	obj, ok := f.objs[id]
	if !ok {
		return ACMEObject{}, errkind.With(errkind.NotFound, fmt.Errorf("ACME keystore %q does not exist", id))
	}
	return obj, nil
}

func (f *fakeACME) PutACME(_ context.Context, id string, cfg acme.Config, keep string) (ACMEObject, error) {
	f.kept = keep
	if f.fail != nil {
		return ACMEObject{}, f.fail
	}
	obj := ACMEObject{ID: id, Config: cfg, Status: acme.Status{Fingerprint: "AB:CD", NotAfter: time.Unix(1e9, 0).UTC()}}
	f.objs[id] = obj
	return obj, nil
}

func (f *fakeACME) DeleteACME(_ context.Context, id string) error {
	if _, ok := f.objs[id]; !ok {
		return errkind.With(errkind.NotFound, fmt.Errorf("ACME keystore %q does not exist", id))
	}
	delete(f.objs, id)
	return nil
}

func TestACMEEndpoints(t *testing.T) {
	dir := t.TempDir()
	socket := filepath.Join(dir, "control.sock")
	ln, err := Listen(socket)
	if err != nil {
		t.Fatal(err)
	}
	b := &fakeACME{objs: map[string]ACMEObject{}}
	srv := &http.Server{Handler: Handler(b, slog.New(slog.DiscardHandler))}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c := NewClient(socket, func(ctx context.Context) (net.Conn, error) { return host.Local{}.DialUnix(ctx, socket) })
	ctx := context.Background()

	cfg := acme.Config{KeystorePath: "/ks.jks", KeystorePassword: "secret", Alias: "a", Domains: []string{"mail.example.com"}, EABKeyID: "k", EABHMACKey: "mac"}
	obj, err := c.PutACME(ctx, "mx", cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	if obj.ID != "mx" || obj.Config.KeystorePassword != "" || obj.Config.EABHMACKey != "" || obj.Config.Alias != "a" || obj.Status.Fingerprint != "AB:CD" {
		t.Errorf("PUT answer %+v", obj)
	}
	if b.objs["mx"].Config.KeystorePassword != "secret" || b.kept != "" {
		t.Errorf("the backend got password %q and keep %q", b.objs["mx"].Config.KeystorePassword, b.kept)
	}
	// A certificate to keep reaches the backend as the caller gave it.
	const fp = "AB:CD:EF:01"
	if _, err := c.PutACME(ctx, "mx", cfg, fp); err != nil || b.kept != fp {
		t.Errorf("PUT keeping %s: the backend got keep %q (%v)", fp, b.kept, err)
	}
	got, err := c.ACME(ctx, "mx")
	if err != nil || got.Config.KeystorePassword != "" || !got.Status.NotAfter.Equal(obj.Status.NotAfter) {
		t.Errorf("GET %+v, %v", got, err)
	}

	for _, tc := range []struct {
		err  error
		code int
	}{
		{errkind.With(errkind.Invalid, errors.New("domains: at least one domain is required")), http.StatusBadRequest},
		{errkind.With(errkind.Conflict, errors.New("cannot bind challenge_address :80")), http.StatusConflict},
		{errkind.With(errkind.Upstream, errors.New("ACME CA refused the order: urn:ietf:params:acme:error:rejectedIdentifier")), http.StatusBadGateway},
	} {
		b.fail = tc.err
		_, err := c.PutACME(ctx, "x", cfg, "")
		var apiErr *Error
		if !errors.As(err, &apiErr) || apiErr.Code != tc.code || apiErr.Message != tc.err.Error() {
			t.Errorf("PUT failing with %v: got %v, want %d with the same text", tc.err, err, tc.code)
		}
	}
	b.fail = nil

	// Unknown fields are refused, as everywhere in the API.
	req, _ := http.NewRequest(http.MethodPut, "http://runtime/v1/acme/mx", strings.NewReader(`{"keystore_path":"/ks","bogus":1}`))
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown field: %s", resp.Status)
	}

	if err := c.DeleteACME(ctx, "mx"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ACME(ctx, "mx"); !IsNotFound(err) {
		t.Errorf("GET after DELETE: %v", err)
	}
	if err := c.DeleteACME(ctx, "mx"); !IsNotFound(err) {
		t.Errorf("second DELETE: %v", err)
	}
}
