package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/internal/probe"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

func TestCertPool(t *testing.T) {
	key, err := keystore.GenerateKey(keystore.KeySpec{Algorithm: "ECDSA", ECDSACurve: "P256"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := keystore.SelfSign(key, keystore.CertificateRequest{
		Subject: keystore.Subject{CommonName: "ca.test"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	keyPEM := "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
	cases := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"one certificate", certPEM, ""},
		{"other blocks are skipped", keyPEM + certPEM, ""},
		{"no certificate", keyPEM, "no PEM CERTIFICATE block"},
		{"not PEM", "hello", "no PEM CERTIFICATE block"},
		{"broken certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "certificate 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pool, err := certPool(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: pool}); err != nil {
				t.Errorf("the pool does not hold the certificate: %v", err)
			}
		})
	}
}

// TestAccTLSProbe_errors: a port that does not answer is an error (a
// warning inside a check block); bad input is caught before connecting.
func TestAccTLSProbe_errors(t *testing.T) {
	e := newAccEnv(t)
	closed := e.FreePort()
	probe := func(body string) string {
		return e.ProviderBlock() + fmt.Sprintf("data \"mailstack_tls_probe\" \"p\" {\n%s\n}\n", body)
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{
			{
				Config:      probe(fmt.Sprintf(`address = "127.0.0.1:%d"`+"\n"+`protocol = "smtp"`+"\n"+`mode = "starttls"`, closed)),
				ExpectError: regexp.MustCompile(`Unable to Probe 127\.0\.0\.1:` + fmt.Sprint(closed) + `(.|\n)*dial`),
			},
			{
				Config:      probe(`address = "127.0.0.1:1"` + "\n" + `protocol = "http"` + "\n" + `mode = "implicit"`),
				ExpectError: regexp.MustCompile(`protocol(.|\n)*value must be one of`),
			},
			{
				Config: probe(`address = "127.0.0.1:1"` + "\n" + `protocol = "smtp"` + "\n" + `mode = "implicit"` +
					"\n" + `ca_certificates_pem = "not a certificate"`),
				ExpectError: regexp.MustCompile(`Invalid CA Certificates`),
			},
		},
	})
}

// A probe in the wrong mode says which one the port speaks: a STARTTLS
// server greets an implicit probe in plain text; an implicit-TLS server
// stays silent for a STARTTLS probe but completes a handshake.
func TestModeHint(t *testing.T) {
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	go func() {
		for {
			c, err := plain.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("220 mail.example.test ESMTP ready\r\n"))
			time.Sleep(200 * time.Millisecond)
			c.Close()
		}
	}()
	implicit, err := tls.Listen("tcp", "127.0.0.1:0", testutil.SelfSigned(t, "mail.example.test").ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer implicit.Close()
	go func() {
		for {
			c, err := implicit.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if c.(*tls.Conn).Handshake() == nil {
					c.Write([]byte("220 mail.example.test ESMTP ready\r\n"))
				}
			}()
		}
	}()
	ctx := context.Background()
	for _, tc := range []struct {
		name, addr, mode, want string
	}{
		{"implicit probe of a STARTTLS port", plain.Addr().String(), probe.Implicit, `Try mode = "starttls"`},
		{"STARTTLS probe of an implicit port", implicit.Addr().String(), probe.StartTLS, `Try mode = "implicit"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := probe.Options{Address: tc.addr, Protocol: probe.SMTP, Mode: tc.mode, Timeout: 2 * time.Second}
			_, err := probe.Probe(ctx, o)
			if err == nil {
				t.Fatal("probe in the wrong mode succeeded")
			}
			if hint := modeHint(ctx, o, err); !strings.Contains(hint, tc.want) {
				t.Errorf("hint %q for %v, want %q", hint, err, tc.want)
			}
		})
	}
	// A port that is closed gets no hint about modes.
	closed := plain.Addr().String()
	plain.Close()
	o := probe.Options{Address: closed, Protocol: probe.SMTP, Mode: probe.StartTLS, Timeout: time.Second}
	if _, err := probe.Probe(ctx, o); err == nil || modeHint(ctx, o, err) != "" {
		t.Errorf("closed port: err %v, hint %q", err, modeHint(ctx, o, err))
	}
}
