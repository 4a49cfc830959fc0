package provider

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
)

// What the listener resource checks on the host beyond the control API's
// answer: that a port serves the certificate it should, why a port is
// refused, and the secrets an import cannot get from the API.

func settingsEqual(a, b config.Listener) bool { return reflect.DeepEqual(a, b) }

// certificateWait bounds how long apply waits for a port to serve the
// right certificate; the runtime checks keystores every second.
const certificateWait = 10 * time.Second

// awaitCertificate waits until listener id serves what its certificate
// sources hold now - every one of them, each read from its files on the
// host - and, for the default, want when it is not empty.
func (r *listenerResource) awaitCertificate(ctx context.Context, client *control.Client, id string, t config.TLS, want string, obj control.ListenerObject) (control.ListenerObject, error) {
	sources := t.Sources()
	held := make([]string, len(sources))
	for i, src := range sources {
		fp, err := r.sourceFingerprint(ctx, src)
		if err != nil {
			return obj, fmt.Errorf("reading the certificate listener %s should serve: %w", id, err)
		}
		held[i] = fp
	}
	if want == "" {
		want = held[0]
	}
	deadline := time.Now().Add(certificateWait)
	for {
		wrong := servingWrong(obj.Status, sources, held, want)
		if wrong == "" {
			return obj, nil
		}
		if time.Now().After(deadline) {
			return obj, fmt.Errorf("after %s, %s %s%s", certificateWait, obj.Status.Address, wrong, lastError(obj.Status))
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
}

// servingWrong says what a listener's status shows it does not serve
// yet: "" when the default is want and every source serves held.
func servingWrong(st control.ListenerStatus, sources []config.Certificate, held []string, want string) string {
	if st.CertificateFingerprint != want {
		return fmt.Sprintf("serves the certificate with SHA-256 fingerprint %s, not %s (%s)",
			st.CertificateFingerprint, want, sourceName(sources[0]))
	}
	if len(sources) == 1 {
		return ""
	}
	if len(st.Certificates) != len(sources) {
		return fmt.Sprintf("reports %d certificates, not %d", len(st.Certificates), len(sources))
	}
	for i, c := range st.Certificates {
		if c.Fingerprint != held[i] || !c.Served {
			return fmt.Sprintf("does not serve %s (SHA-256 %s) for %s yet", sourceName(sources[i]), held[i], strings.Join(c.Names, ", "))
		}
	}
	return ""
}

func sourceName(c config.Certificate) string {
	if c.KeystorePath != "" {
		return "keystore " + c.KeystorePath
	}
	return "certificate " + c.CertificateFile
}

// sourceFingerprint reads the certificate a source holds on the host.
func (r *listenerResource) sourceFingerprint(ctx context.Context, c config.Certificate) (string, error) {
	if c.KeystorePath != "" {
		cert, err := keystore.LoadCertificate(ctx, r.data.file(c.KeystorePath), []byte(c.KeystorePassword), []byte(c.KeyPassword), c.Alias)
		if err != nil {
			return "", err
		}
		return keystore.Fingerprint(cert.Leaf), nil
	}
	cert, err := keystore.LoadPEMPair(ctx, r.data.file(c.CertificateFile), r.data.file(c.PrivateKeyFile))
	if err != nil {
		return "", err
	}
	return keystore.Fingerprint(cert.Leaf), nil
}

func lastError(s control.ListenerStatus) string {
	if s.LastError == "" {
		return ""
	}
	return "; the runtime reports: " + s.LastError
}

// clash explains a refused listener that wants an address another
// listener of the same server holds, naming both; "" if that is not why.
// A listener for which skip (if not nil) reports true is not counted.
func (r *listenerResource) clash(ctx context.Context, client *control.Client, serverID, id string, l config.Listener,
	skip func(serverID, id, address string, port int) bool) string {
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
		if err != nil || obj.Config.Port != l.Port || !addressesOverlap(obj.Config.Address, l.Address) ||
			(skip != nil && skip(serverID, other, l.Address, l.Port)) {
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
	m := &tlsModel{
		KeystorePath:              types.StringNull(),
		KeystorePassword:          optionalString(l.TLS.KeystorePassword),
		KeystorePasswordWOVersion: types.Int64Null(),
		KeyPassword:               optionalString(l.TLS.KeyPassword),
		Expected:                  types.StringNull(),
	}
	for _, c := range l.TLS.Certificates {
		m.Certificates = append(m.Certificates, certificateModel{
			KeystorePath: types.StringNull(), CertificateFile: types.StringNull(), PrivateKeyFile: types.StringNull(),
			KeystorePassword: optionalString(c.KeystorePassword), KeyPassword: optionalString(c.KeyPassword),
			KeystorePasswordWOVersion: types.Int64Null(),
		})
	}
	return m
}
