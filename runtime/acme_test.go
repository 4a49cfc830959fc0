package runtime_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/acme"
	"github.com/mailstack/terraform-provider-mailstack/runtime/acme/pebbletest"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
)

// An ACME keystore through the control API, as the provider drives it: PUT
// returns once Pebble's certificate is in the keystore, the implicit-TLS
// listener on that keystore serves it without being touched, status shows
// it, a refused order is a 502 carrying the problem document, the object
// survives a restart, and DELETE forgets it.
func TestACMEKeystoreOverControlAPI(t *testing.T) {
	t.Parallel()
	p := pebbletest.Start(t, pebbletest.Options{Blocklist: []string{"blocked.example.test"}})
	dir := t.TempDir()
	ks := newKeystore(t, dir)
	h := start(t, dir, 2*time.Second)
	ctx := context.Background()

	port := testutil.FreePort(t)
	h.putListener("smtps", config.Listener{Protocol: config.ProtocolSMTP, Address: "127.0.0.1", Port: port, TLS: ks.tls(config.TLSImplicit)})
	if fp := h.status().Listeners["smtps"].CertificateFingerprint; fp != ks.fingerprint {
		t.Fatalf("listener serves %s before ACME, want the self-signed %s", fp, ks.fingerprint)
	}

	cfg := acme.Config{
		KeystorePath: ks.path, KeystorePassword: keystorePassword, Alias: "james",
		Domains: []string{"mail.example.test"}, DirectoryURL: p.DirectoryURL, CACertificatesPEM: p.HTTPSRootPEM,
		ChallengeAddress: pebbletest.Addr(p.HTTPPort),
	}
	obj, err := h.client.PutACME(ctx, "mx", cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	if obj.ID != "mx" || obj.Config.KeystorePassword != "" || obj.Config.Challenge != acme.ChallengeHTTP01 ||
		obj.Status.Fingerprint == "" || obj.Status.Fingerprint == ks.fingerprint || obj.Status.NotAfter.IsZero() {
		t.Fatalf("PUT answer %+v", obj)
	}
	deadline := time.Now().Add(testutil.HangGuard)
	for h.status().Listeners["smtps"].CertificateFingerprint != obj.Status.Fingerprint {
		if time.Now().After(deadline) {
			t.Fatalf("listener still serves %s, want the ACME certificate %s", h.status().Listeners["smtps"].CertificateFingerprint, obj.Status.Fingerprint)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st := h.status().ACME["mx"]; st.Fingerprint != obj.Status.Fingerprint || st.NextRenewal.IsZero() || st.LastError != "" {
		t.Errorf("status ACME %+v", st)
	}

	bad := cfg
	bad.Alias, bad.Domains = "blocked", []string{"blocked.example.test"}
	_, err = h.client.PutACME(ctx, "blocked", bad, "")
	var apiErr *control.Error
	if !errors.As(err, &apiErr) || apiErr.Code != http.StatusBadGateway || !strings.Contains(apiErr.Message, "urn:ietf:params:acme:error:rejectedIdentifier") {
		t.Errorf("refused order: %v", err)
	}
	bad.Domains = nil
	if _, err = h.client.PutACME(ctx, "blocked", bad, ""); !errors.As(err, &apiErr) || apiErr.Code != http.StatusBadRequest {
		t.Errorf("invalid config: %v", err)
	}

	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	h = start(t, dir, 2*time.Second)
	got, err := h.client.ACME(ctx, "mx")
	if err != nil || got.Status.Fingerprint != obj.Status.Fingerprint || !got.Status.LastIssued.Equal(obj.Status.LastIssued) {
		t.Errorf("after a restart: %+v, %v", got, err)
	}

	if err := h.client.DeleteACME(ctx, "mx"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.ACME(ctx, "mx"); !control.IsNotFound(err) {
		t.Errorf("GET after DELETE: %v", err)
	}
	if _, ok := h.status().ACME["mx"]; ok {
		t.Error("status still lists the deleted ACME keystore")
	}
}
