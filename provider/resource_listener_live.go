package provider

import (
	"context"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
)

// What the listener resource checks on the host beyond the control API's
// answer: that a port serves the certificate it should, why a port is
// refused, and the secrets an import cannot get from the API.

func settingsEqual(a, b config.Listener) bool {
	return a.Protocol == b.Protocol && a.Address == b.Address && a.Port == b.Port &&
		a.TLS.Mode == b.TLS.Mode && a.TLS.KeystorePath == b.TLS.KeystorePath &&
		a.TLS.KeystorePassword == b.TLS.KeystorePassword && a.TLS.KeyPassword == b.TLS.KeyPassword &&
		a.TLS.Alias == b.TLS.Alias && a.TLS.MinVersion == b.TLS.MinVersion &&
		slices.Equal(a.TLS.CipherSuites, b.TLS.CipherSuites) && a.TLS.ClientAuth == b.TLS.ClientAuth
}

// certificateWait bounds how long apply waits for a port to serve the
// right certificate; the runtime checks keystores every second.
const certificateWait = 10 * time.Second

// awaitCertificate waits until listener id serves want, or the keystore's
// own certificate when want is empty.
func (r *listenerResource) awaitCertificate(ctx context.Context, client *control.Client, id string, t config.TLS, want string, obj control.ListenerObject) (control.ListenerObject, error) {
	if want == "" {
		cert, err := keystore.LoadCertificate(ctx, r.data.file(t.KeystorePath), []byte(t.KeystorePassword), []byte(t.KeyPassword), t.Alias)
		if err != nil {
			return obj, fmt.Errorf("reading the certificate listener %s should serve: %w", id, err)
		}
		want = keystore.Fingerprint(cert.Leaf)
	}
	deadline := time.Now().Add(certificateWait)
	for obj.Status.CertificateFingerprint != want {
		if time.Now().After(deadline) {
			return obj, fmt.Errorf("after %s, %s serves the certificate with SHA-256 fingerprint %s, not %s (keystore %s%s)",
				certificateWait, obj.Status.Address, obj.Status.CertificateFingerprint, want, t.KeystorePath, lastError(obj.Status))
		}
		select {
		case <-ctx.Done():
			return obj, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		var err error
		if obj, err = client.Listener(ctx, id); err != nil {
			return obj, err
		}
	}
	return obj, nil
}

func lastError(s control.ListenerStatus) string {
	if s.LastError == "" {
		return ""
	}
	return "; the runtime reports: " + s.LastError
}

// clash explains a refused listener that wants an address another
// listener of the same server holds, naming both; "" if that is not why.
func (r *listenerResource) clash(ctx context.Context, client *control.Client, serverID, id string, l config.Listener) string {
	st, err := client.Status(ctx)
	if err != nil {
		return ""
	}
	others := make([]string, 0, len(st.Listeners))
	for other := range st.Listeners {
		if other != id {
			others = append(others, other)
		}
	}
	slices.Sort(others)
	for _, other := range others {
		obj, err := client.Listener(ctx, other)
		if err != nil || obj.Config.Port != l.Port || !addressesOverlap(obj.Config.Address, l.Address) {
			continue
		}
		return fmt.Sprintf("This listener (%s, TLS %s) cannot use %s: listener %q of server %q (%s, TLS %s) already "+
			"uses %s. Two listeners of one server need different ports, or distinct addresses that do not overlap "+
			"(0.0.0.0 and :: overlap every address). `terraform state list -id=%s/%s` names the resource that manages "+
			"the other listener.", l.Protocol, l.TLS.Mode, l.Addr(), serverID+"/"+other, serverID, obj.Config.Protocol,
			obj.Config.TLS.Mode, obj.Config.Addr(), serverID, other)
	}
	return ""
}

// addressesOverlap reports whether binding both addresses on one port
// would clash: equal, or either is a wildcard.
func addressesOverlap(a, b string) bool {
	ia, ib := net.ParseIP(a), net.ParseIP(b)
	if ia == nil || ib == nil {
		return a == b
	}
	return ia.Equal(ib) || ia.IsUnspecified() || ib.IsUnspecified()
}

// storedSecrets reads an imported listener's passwords from the server's
// config.json (mode 0600, on the host the provider manages): the control
// API never returns them, and without them the plan after an import would
// not be empty. nil if they cannot be read.
func (r *listenerResource) storedSecrets(ctx context.Context, serverID, id string) *tlsModel {
	doc, err := r.data.server(serverID).LoadConfig(ctx)
	if err != nil {
		return nil
	}
	l, ok := doc.Listeners[id]
	if !ok {
		return nil
	}
	return &tlsModel{
		KeystorePath:     types.StringNull(),
		KeystorePassword: optionalString(l.TLS.KeystorePassword),
		KeyPassword:      optionalString(l.TLS.KeyPassword),
		Expected:         types.StringNull(),
	}
}
